//! A real `redis-server` per test, on a free loopback port, persisting nothing.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cachedeck::redis_conn::{Redis, RedisTarget};
use redis::FromRedisValue;
use tempfile::TempDir;

use super::ports;

/// How long a server gets to answer PING after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Panics with install instructions when `tool` is not on PATH.
pub(crate) fn require_tool(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        panic!(
            "{tool} not found on PATH: install it with `apt-get install redis-server` \
             (or run scripts/test.sh, which installs it). Tests never skip for a missing server."
        );
    }
}

/// Why one launch attempt failed.
enum LaunchError {
    /// The port was taken by someone else: try another.
    PortBusy,
    /// Anything else: give up with this message.
    Failed(String),
}

/// One `redis-server` process (`--save "" --appendonly no`), killed on drop.
pub struct RedisServer {
    port: u16,
    dir: TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server on a free loopback port.
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments, e.g.
    /// `&["--requirepass", "secret"]` or `&["--maxmemory", "10mb"]`.
    pub fn start_with(args: &[&str]) -> RedisServer {
        Self::launch(args, ports::free_port)
    }

    /// Starts a server on a port chosen by `pick`, retrying on another port
    /// when the chosen one turns out to be taken.
    pub(crate) fn launch(args: &[&str], pick: fn() -> u16) -> RedisServer {
        require_tool("redis-server");
        let dir = tempfile::Builder::new()
            .prefix("cachedeck-redis-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for redis-server: {e}"));
        let extra: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        for _ in 0..8 {
            let port = pick();
            match spawn_ready(port, dir.path(), &extra) {
                Ok(child) => {
                    return RedisServer {
                        port,
                        dir,
                        extra,
                        child: Some(child),
                    };
                }
                Err(LaunchError::PortBusy) => continue,
                Err(LaunchError::Failed(msg)) => panic!("{msg}"),
            }
        }
        panic!("redis-server could not bind a free loopback port in 8 tries")
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (logs in `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process id of the running server; panics when it was stopped.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("redis-server is stopped; restart() it first")
    }

    /// True between start/restart and stop.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// What a profile or `--redis-url` would say.
    pub fn target(&self) -> RedisTarget {
        RedisTarget {
            urls: vec![self.url()],
            ..RedisTarget::default()
        }
    }

    /// Connects cachedeck's handle (panics on failure).
    pub async fn connect(&self) -> Redis {
        Redis::connect(&self.target())
            .await
            .unwrap_or_else(|e| panic!("connecting to the test redis-server {}: {e}", self.url()))
    }

    /// A plain `redis` client for setup and checks (with the
    /// `--requirepass` password, when the server has one).
    pub fn client(&self) -> redis::Client {
        redis::Client::open(url_with(self.port, requirepass(&self.extra))).expect("valid redis URL")
    }

    /// A sync connection (5 s timeouts).
    pub fn sync_conn(&self) -> redis::Connection {
        let c = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()));
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
        c
    }

    /// An async multiplexed connection.
    pub async fn async_conn(&self) -> redis::aio::MultiplexedConnection {
        self.client()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url()))
    }

    /// Runs one command synchronously, returning the error.
    pub fn try_query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        cmd.query(&mut self.sync_conn())
    }

    /// Runs one command synchronously; panics on error.
    /// `srv.query::<()>(redis::cmd("SET").arg("k").arg("v"))`
    pub fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        self.try_query(cmd)
            .unwrap_or_else(|e| panic!("`{}` on {}: {e}", super::describe(cmd), self.url()))
    }

    /// Runs one command given as words; panics on error.
    /// `srv.cmd::<String>(&["SET", "k", "v"])`
    pub fn cmd<T: FromRedisValue>(&self, words: &[&str]) -> T {
        let mut c = redis::cmd(words[0]);
        for w in &words[1..] {
            c.arg(*w);
        }
        self.try_query(&c)
            .unwrap_or_else(|e| panic!("{} on {}: {e}", words.join(" "), self.url()))
    }

    /// Kills the server (SIGKILL: as abrupt as a crash) and waits for it.
    /// The port stays reserved for [`RedisServer::restart`]. Data is gone:
    /// nothing is persisted.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if needed)
    /// and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match spawn_ready(self.port, self.dir.path(), &self.extra) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                Err(LaunchError::PortBusy) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(LaunchError::PortBusy) => {
                    panic!(
                        "redis-server cannot restart: port {} stays taken",
                        self.port
                    )
                }
                Err(LaunchError::Failed(msg)) => panic!("{msg}"),
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing
    /// answers, like a hung or overloaded Redis. Undo with [`RedisServer::thaw`].
    pub fn freeze(&self) {
        signal(self.pid(), "-STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        signal(self.pid(), "-CONT");
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("running `kill {sig} {pid}`: {e}"));
    assert!(status.success(), "`kill {sig} {pid}` failed");
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("redis.log")
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Spawns `redis-server` on `port` and waits until it (and not some other
/// process on that port) answers PING.
fn spawn_ready(port: u16, dir: &Path, extra: &[String]) -> Result<Child, LaunchError> {
    let log = log_path(dir);
    let out = File::create(&log)
        .map_err(|e| LaunchError::Failed(format!("creating {}: {e}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| LaunchError::Failed(format!("cloning a file handle: {e}")))?;
    let mut child = Command::new("redis-server")
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--protected-mode", "yes"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LaunchError::Failed(
                    "redis-server not found: install it with `apt-get install redis-server` \
                     (or run scripts/test.sh, which installs it)"
                        .into(),
                )
            } else {
                LaunchError::Failed(format!("cannot spawn redis-server: {e}"))
            }
        })?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Address already in use") || text.contains("already in use") {
                return Err(LaunchError::PortBusy);
            }
            return Err(LaunchError::Failed(format!(
                "redis-server on port {port} exited at start ({status}); its log:\n{}",
                tail(&text, 30)
            )));
        }
        if answers_as(port, pid, requirepass(extra)) {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(LaunchError::Failed(format!(
                "redis-server on port {port} did not answer PING within {START_TIMEOUT:?}; its log:\n{}",
                tail(&text, 30)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when the server on `port` answers PING and is process `pid`.
/// The password of `--requirepass PW` among the extra arguments.
fn requirepass(extra: &[String]) -> Option<&str> {
    extra
        .iter()
        .position(|a| a == "--requirepass")
        .and_then(|i| extra.get(i + 1))
        .map(String::as_str)
}

/// `redis://[:PW@]127.0.0.1:PORT`
fn url_with(port: u16, password: Option<&str>) -> String {
    match password {
        Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

fn answers_as(port: u16, pid: u32, password: Option<&str>) -> bool {
    let Ok(client) = redis::Client::open(url_with(port, password)) else {
        return false;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(300)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let Ok(info) = redis::cmd("INFO").arg("server").query::<String>(&mut conn) else {
        return false;
    };
    let same = info
        .lines()
        .any(|l| l.trim() == format!("process_id:{pid}"));
    same && matches!(redis::cmd("PING").query::<String>(&mut conn), Ok(p) if p == "PONG")
}
