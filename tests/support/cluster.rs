//! A real 3-master Redis Cluster (no replicas) per test, on free loopback ports.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachedeck::redis_conn::{Redis, RedisTarget};
use redis::FromRedisValue;
use redis::cluster::{ClusterClient, ClusterConnection};

use super::ports;
use super::redis_server::{RedisServer, require_tool};
use super::tls_files::TlsFiles;

/// How long the cluster gets to reach `cluster_state:ok` on every node.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Three cluster-enabled `redis-server`s joined into one cluster; all killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// Each node's TLS port, in the order of `nodes` (empty without TLS).
    tls_ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts 3 masters, runs `redis-cli --cluster create` and waits until every
    /// node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        Self::start_inner(None)
    }

    /// Like [`RedisCluster::start`], and every node also speaks TLS, to
    /// clients and on the cluster bus, on a port of its own with the
    /// certificate of `files` (plain ports stay for setup and checks).
    pub fn start_tls(files: &TlsFiles) -> RedisCluster {
        Self::start_inner(Some(files))
    }

    /// Each node's TLS port (after [`RedisCluster::start_tls`]).
    pub fn tls_ports(&self) -> &[u16] {
        &self.tls_ports
    }

    fn start_inner(tls: Option<&TlsFiles>) -> RedisCluster {
        require_tool("redis-server");
        require_tool("redis-cli");
        let mut last_error = String::new();
        for _ in 0..3 {
            let mut tls_ports = Vec::new();
            let nodes: Vec<RedisServer> = (0..3)
                .map(|_| {
                    let mut args: Vec<String> = [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ]
                    .map(String::from)
                    .to_vec();
                    if let Some(files) = tls {
                        let port = ports::free_cluster_port();
                        tls_ports.push(port);
                        args.extend(files.server_args(port));
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    RedisServer::launch(&args, ports::free_cluster_port)
                })
                .collect();
            match create(&nodes) {
                Ok(()) => {
                    let cluster = RedisCluster { nodes, tls_ports };
                    cluster.wait_ready();
                    return cluster;
                }
                // A bus port taken by another process makes the join fail: retry
                // on fresh ports.
                Err(e) => last_error = e,
            }
        }
        panic!("could not create a 3-master Redis Cluster in 3 tries; last error:\n{last_error}")
    }

    /// `redis://127.0.0.1:PORT` of each master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The URLs joined by commas, as `--redis-url` takes them.
    pub fn url_arg(&self) -> String {
        self.urls().join(",")
    }

    /// `127.0.0.1:PORT` of each master, sorted like `Redis::masters()`.
    pub fn addrs(&self) -> Vec<String> {
        let mut a: Vec<String> = self.nodes.iter().map(RedisServer::addr).collect();
        a.sort();
        a
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The node servers, e.g. to `stop()` or `freeze()` one of them.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// All node URLs as seed nodes.
    pub fn target(&self) -> RedisTarget {
        RedisTarget {
            urls: self.urls(),
            ..RedisTarget::default()
        }
    }

    /// Connects cachedeck's handle (panics on failure).
    pub async fn connect(&self) -> Redis {
        Redis::connect(&self.target())
            .await
            .unwrap_or_else(|e| panic!("connecting to the test cluster {}: {e}", self.url_arg()))
    }

    /// A plain cluster client for setup and checks (routes by key).
    pub fn client(&self) -> ClusterClient {
        ClusterClient::builder(self.urls())
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(Duration::from_secs(10))
            .build()
            .expect("valid cluster URLs")
    }

    /// A sync cluster connection.
    pub fn sync_conn(&self) -> ClusterConnection {
        self.client()
            .get_connection()
            .unwrap_or_else(|e| panic!("connecting to the test cluster {}: {e}", self.url_arg()))
    }

    /// An async cluster connection.
    pub async fn async_conn(&self) -> redis::cluster_async::ClusterConnection {
        self.client()
            .get_async_connection()
            .await
            .unwrap_or_else(|e| panic!("connecting to the test cluster {}: {e}", self.url_arg()))
    }

    /// Runs one command synchronously (routed by its key), returning the error.
    pub fn try_query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        cmd.query(&mut self.sync_conn())
    }

    /// Runs one command synchronously (routed by its key); panics on error.
    pub fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        self.try_query(cmd).unwrap_or_else(|e| {
            panic!(
                "`{}` on cluster {}: {e}",
                super::describe(cmd),
                self.url_arg()
            )
        })
    }

    /// Runs one command given as words (routed by its key); panics on error.
    pub fn cmd<T: FromRedisValue>(&self, words: &[&str]) -> T {
        let mut c = redis::cmd(words[0]);
        for w in &words[1..] {
            c.arg(*w);
        }
        self.query(&c)
    }

    /// Waits until every running node says `cluster_state:ok`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                let info: String = node
                    .try_query(redis::cmd("CLUSTER").arg("INFO"))
                    .unwrap_or_default();
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "the test cluster did not reach cluster_state:ok within {READY_TIMEOUT:?}; \
                         node {} says:\n{info}\nits log:\n{}",
                        node.addr(),
                        node.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// How long `redis-cli --cluster create` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

/// `redis-cli --cluster create` over the nodes.
fn create(nodes: &[RedisServer]) -> Result<(), String> {
    let log_path = nodes[0].dir().join("cluster-create.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .map_err(|e| format!("cloning a file handle: {e}"))?;
    let mut child = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(nodes.iter().map(RedisServer::addr))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run redis-cli: {e}: install it with `apt-get install redis-server` \
                 (or run scripts/test.sh, which installs it)"
            )
        })?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > CREATE_TIMEOUT {
            let _ = child.kill();
            break child.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.success() && output.contains("All 16384 slots covered") {
        Ok(())
    } else {
        Err(format!(
            "redis-cli --cluster create {} ({status}, {:?}):\n{output}",
            if started.elapsed() > CREATE_TIMEOUT {
                "timed out"
            } else {
                "failed"
            },
            started.elapsed()
        ))
    }
}
