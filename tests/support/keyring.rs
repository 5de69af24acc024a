//! A real Secret Service for the keyring tests: `gnome-keyring-daemon`
//! (unlocked with a known password, in the foreground) inside a private
//! D-Bus session started by `dbus-run-session`, in a temporary home, so the
//! developer's own keyring is never read or written. Processes that should
//! use it get [`KeyringSession::env`]; the session ends when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// Starts the keyring, waits until it owns its bus name, prints the bus.
const SESSION_SCRIPT: &str = r#"
echo -n "$1" | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
i=0
while [ $i -lt 100 ]; do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; then
        break
    fi
    i=$((i + 1))
    sleep 0.1
done
echo "$DBUS_SESSION_BUS_ADDRESS"
exec cat >/dev/null
"#;

/// Panics naming the Debian package when a program is missing.
fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: install the Debian package `{package}` \
         (apt-get install {package}; scripts/ensure-services.sh does it) — the keyring tests \
         need a real Secret Service"
    );
}

/// A private D-Bus session with an unlocked gnome-keyring.
pub struct KeyringSession {
    child: Child,
    /// The session bus (`DBUS_SESSION_BUS_ADDRESS`).
    address: String,
    /// HOME, XDG dirs and the keyring files.
    home: TempDir,
}

impl KeyringSession {
    pub fn start() -> KeyringSession {
        require("gnome-keyring-daemon", "gnome-keyring");
        require("dbus-run-session", "dbus");
        require("dbus-send", "dbus");
        let home = tempfile::Builder::new()
            .prefix("cachedeck-keyring-")
            .tempdir()
            .expect("a temp home for the keyring");
        let run = home.path().join("run");
        std::fs::create_dir_all(&run).expect("runtime dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))
                .expect("runtime dir mode");
        }
        let mut cmd = Command::new("dbus-run-session");
        cmd.args([
            "--",
            "sh",
            "-c",
            SESSION_SCRIPT,
            "sh",
            "keyring-test-unlock",
        ])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &run)
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run dbus-run-session: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default()
            .trim()
            .to_string();
        let mut session = KeyringSession {
            child,
            address,
            home,
        };
        if session.address.is_empty() {
            session.stop();
            panic!("the private D-Bus session with gnome-keyring did not start within 30 s");
        }
        session
    }

    /// The environment a process needs to use this keyring.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.address.clone()),
            (
                "XDG_RUNTIME_DIR".into(),
                self.home.path().join("run").display().to_string(),
            ),
        ]
    }

    fn stop(&mut self) {
        // Closing stdin ends the session script; the group kill makes sure
        // the bus and the keyring daemon go too.
        drop(self.child.stdin.take());
        let _ = Command::new("kill")
            .args(["-TERM", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        self.stop();
    }
}
