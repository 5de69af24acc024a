//! TLS material for one test, made with `openssl`: a CA and a server
//! certificate it signed that names only `DNS:localhost` (no IP address), as
//! certificates issued for a host name are.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

/// A CA and a `localhost` server certificate in a temp dir (removed on drop).
pub struct TlsFiles {
    /// Holds `ca.pem`, `server.pem` and `server.key`.
    dir: TempDir,
}

impl TlsFiles {
    /// Makes the CA and the server certificate, or panics saying what to
    /// install.
    pub fn create() -> TlsFiles {
        let dir = tempfile::Builder::new()
            .prefix("cachedeck-tls-")
            .tempdir()
            .expect("a temp dir for TLS files");
        let d = dir.path();
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\n").expect("ext.cnf");
        let p = |name: &str| d.join(name).to_string_lossy().into_owned();
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cachedeck test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]);
        run(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &p("ext.cnf"),
            "-out",
            &p("server.pem"),
        ]);
        TlsFiles { dir }
    }

    /// The CA's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `redis-server` arguments for TLS on `port`, clients and cluster bus,
    /// without client certificates.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let p = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            p("server.pem"),
            "--tls-key-file".into(),
            p("server.key"),
            "--tls-ca-cert-file".into(),
            p("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
            "--tls-cluster".into(),
            "yes".into(),
            "--tls-replication".into(),
            "yes".into(),
        ]
    }
}

/// Runs `openssl ARGS`, panicking with its output when it fails.
fn run(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it with `apt-get install openssl`")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
