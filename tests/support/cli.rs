//! Running the real `cachedeck` binary the way a user or a script would, with
//! its own config dir so the developer's profiles are never read or touched.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Environment variables of the user's shell that must not leak into a test.
const SCRUBBED: [&str; 7] = [
    "CACHEDECK_PROFILE",
    "CACHEDECK_REDIS_URL",
    "CACHEDECK_DATABASE_URL",
    "CACHEDECK_WARM_RATE_LIMIT",
    "CACHEDECK_INVALIDATE_RATE_LIMIT",
    "CACHEDECK_DATA_DIR",
    "RUST_LOG",
];

/// How long one CLI run may take before the test fails.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// The path of the binary under test.
pub fn cachedeck_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cachedeck")
}

/// A configured `cachedeck` command line: fresh `CACHEDECK_CONFIG_DIR`
/// (and data dir inside it), optional `--database-url` / `--redis-url`.
///
/// ```ignore
/// let cli = CliRunner::new().database(db.url()).redis(&srv.url());
/// let out = cli.run(&["datasource", "list", "--json"]).success();
/// let list = out.json();
/// ```
pub struct CliRunner {
    config: TempDir,
    globals: Vec<String>,
    envs: Vec<(String, String)>,
    /// Variables of the test's own environment removed from every run.
    removed: Vec<String>,
    timeout: Duration,
}

impl Default for CliRunner {
    fn default() -> Self {
        Self::new()
    }
}

impl CliRunner {
    pub fn new() -> CliRunner {
        let config = tempfile::Builder::new()
            .prefix("cachedeck-config-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp config dir: {e}"));
        CliRunner {
            config,
            globals: Vec::new(),
            envs: Vec::new(),
            removed: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds `--database-url URL` to every run.
    pub fn database(mut self, url: impl Into<String>) -> Self {
        self.globals.push("--database-url".into());
        self.globals.push(url.into());
        self
    }

    /// Adds `--redis-url URLS` (comma-separated for a cluster) to every run.
    pub fn redis(mut self, urls: impl Into<String>) -> Self {
        self.globals.push("--redis-url".into());
        self.globals.push(urls.into());
        self
    }

    /// Sets an environment variable for every run.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Removes an environment variable of the test's own environment from
    /// every run.
    pub fn without_env(mut self, key: impl Into<String>) -> Self {
        self.removed.push(key.into());
        self
    }

    /// Fails a run that takes longer than this (default 180 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// `CACHEDECK_CONFIG_DIR` of the runs (profiles.toml goes here).
    pub fn config_dir(&self) -> &Path {
        self.config.path()
    }

    /// `CACHEDECK_DATA_DIR` of the runs.
    pub fn data_dir(&self) -> PathBuf {
        self.config.path().join("data")
    }

    /// Writes `profiles.toml` in the config dir.
    pub fn write_profiles(&self, toml: &str) -> PathBuf {
        let path = self.config_dir().join("profiles.toml");
        std::fs::write(&path, toml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    fn full_args(&self, args: &[&str]) -> Vec<String> {
        self.globals
            .iter()
            .cloned()
            .chain(args.iter().map(|s| s.to_string()))
            .collect()
    }

    /// The configured command, for tests that need to drive it themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(cachedeck_bin());
        cmd.args(self.full_args(args));
        for k in SCRUBBED {
            cmd.env_remove(k);
        }
        cmd.env("CACHEDECK_CONFIG_DIR", self.config_dir())
            .env("CACHEDECK_DATA_DIR", self.data_dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for k in &self.removed {
            cmd.env_remove(k);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// The same, for `tokio::process`.
    pub fn tokio_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::from(self.command(args));
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs `cachedeck ARGS…` to the end (blocking) and returns what it did.
    pub fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with_stdin(args, None)
    }

    /// The same, with `input` on its standard input (a pipe).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> CliOutput {
        self.run_with_stdin(args, Some(input))
    }

    fn run_with_stdin(&self, args: &[&str], input: Option<&str>) -> CliOutput {
        let started = Instant::now();
        let mut cmd = self.command(args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cachedeck_bin()));
        if let Some(text) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("piped stdin");
            let _ = stdin.write_all(text.as_bytes());
        }
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for cachedeck") {
                break status;
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`cachedeck {}` did not finish within {:?}",
                    self.full_args(args).join(" "),
                    self.timeout
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        CliOutput {
            args: self.full_args(args),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
            stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Runs `cachedeck ARGS…` without blocking the async test's thread.
    pub async fn run_async(&self, args: &[&str]) -> CliOutput {
        let started = Instant::now();
        let mut cmd = self.tokio_command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", cachedeck_bin()));
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "`cachedeck {}` did not finish within {:?}",
                    self.full_args(args).join(" "),
                    self.timeout
                )
            })
            .expect("waiting for cachedeck");
        CliOutput {
            args: self.full_args(args),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

/// What one CLI run did.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// Arguments after the binary name (globals included).
    pub args: Vec<String>,
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`cachedeck {}` exited {} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

impl CliOutput {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// Asserts this exit code.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit code {code}:\n{self}");
        self
    }

    /// Asserts a non-zero exit and exactly one non-empty line on stderr.
    #[track_caller]
    pub fn failure_one_line(self) -> Self {
        assert_ne!(self.code, 0, "expected a failure:\n{self}");
        assert_eq!(
            self.stderr_lines().len(),
            1,
            "expected exactly one line on stderr:\n{self}"
        );
        self
    }

    /// Non-empty stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// stdout parsed as JSON (panics with the whole output when it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}
