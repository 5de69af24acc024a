//! One Redis handle for the whole core, standalone or cluster.
//!
//! A profile names one URL (standalone unless the server reports
//! `cluster_enabled:1`) or several (cluster seed nodes). Commands that address
//! keys go through [`Redis`] and are routed by the driver; commands that must
//! visit every node (SCAN, INFO, DBSIZE) use [`Redis::masters`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture,
    TlsCertificates, Value,
};
use tokio::sync::Mutex;

use crate::cluster_tls::NodeNames;
use crate::error::{Error, Result};

/// How to reach Redis: what a profile (or `--redis-url`) says. `Debug`
/// hides the password (and any in the URLs).
#[derive(Clone, Default)]
pub struct RedisTarget {
    /// `redis://` or `rediss://` URLs; several mean cluster seed nodes.
    pub urls: Vec<String>,
    /// ACL user, when not in the URL.
    pub username: Option<String>,
    /// Password resolved from the keyring or an environment variable.
    pub password: Option<String>,
    /// PEM file of a private CA for `rediss://`.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| crate::redact::url(u)).collect();
        f.debug_struct("RedisTarget")
            .field("urls", &urls)
            .field("username", &self.username)
            .field(
                "password",
                &self.password.as_ref().map(|_| crate::redact::MASK),
            )
            .field("tls_ca_file", &self.tls_ca_file)
            .finish()
    }
}

/// Standalone or cluster, as the server reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Topology {
    Standalone,
    Cluster,
}

/// The routed connection: reconnecting manager for standalone, cluster
/// connection for cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A cheap-to-clone handle on one Redis deployment.
#[derive(Clone)]
pub struct Redis {
    /// Routed connection every key command goes through.
    conn: Conn,
    /// What the server said it is.
    topology: Topology,
    /// Connection details of the first URL, reused (with another address) to
    /// reach each cluster node directly.
    base_info: ConnectionInfo,
    /// Private CA, also needed for direct node connections.
    certs: Option<TlsCertificates>,
    /// Direct connections to master nodes, opened on first use.
    node_conns: Arc<Mutex<HashMap<String, MultiplexedConnection>>>,
    /// Names under which cluster nodes announced by IP are reached over TLS,
    /// so their certificate is checked against the configured host name.
    node_names: NodeNames,
    /// URL shown to people: never carries the password.
    label: String,
}

/// A direct connection to one master node.
pub struct NodeConn {
    /// `host:port` of the node.
    pub addr: String,
    /// Connection to that node only.
    pub conn: MultiplexedConnection,
}

/// Long enough for a swap script over hundreds of thousands of keys.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// True when Redis refused a command for the user's ACL.
pub fn is_noperm(e: &redis::RedisError) -> bool {
    e.code() == Some("NOPERM")
}

/// Whether the server runs in cluster mode: `INFO cluster`, or for a user
/// whose ACL forbids INFO, `HELLO` (its `mode`), or `CLUSTER SHARDS`
/// (refused on a standalone server).
async fn is_cluster(conn: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
    match redis::cmd("INFO")
        .arg("cluster")
        .query_async::<String>(conn)
        .await
    {
        Ok(info) => return Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1")),
        Err(e) if is_noperm(&e) => {}
        Err(e) => return Err(e),
    }
    match redis::cmd("HELLO").query_async::<Value>(conn).await {
        Ok(v) => {
            let mode = match &v {
                Value::Map(m) => m.iter().find_map(|(k, v)| {
                    (<String as redis::FromRedisValue>::from_redis_value_ref(k).ok()? == "mode")
                        .then(|| <String as redis::FromRedisValue>::from_redis_value_ref(v).ok())
                        .flatten()
                }),
                Value::Array(a) => a.chunks_exact(2).find_map(|p| {
                    (<String as redis::FromRedisValue>::from_redis_value_ref(&p[0]).ok()? == "mode")
                        .then(|| {
                            <String as redis::FromRedisValue>::from_redis_value_ref(&p[1]).ok()
                        })
                        .flatten()
                }),
                _ => None,
            };
            if let Some(mode) = mode {
                return Ok(mode == "cluster");
            }
        }
        Err(e) if is_noperm(&e) => {}
        Err(e) => return Err(e),
    }
    match redis::cmd("CLUSTER")
        .arg("SHARDS")
        .query_async::<Value>(conn)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_noperm(&e) => Err(e),
        // "This instance has cluster support disabled"
        Err(_) => Ok(false),
    }
}

/// True when a URL of `target` turns TLS certificate checks off
/// (`rediss://…/#insecure`).
pub fn insecure_tls(target: &RedisTarget) -> bool {
    target.urls.iter().any(|u| {
        matches!(
            u.as_str().into_connection_info().map(|i| i.addr().clone()),
            Ok(ConnectionAddr::TcpTls { insecure: true, .. })
        )
    })
}

/// What a person must be told about the security of `target`: the window
/// shows these in its top bar, the CLI prints them on standard error.
pub fn security_warnings(target: &RedisTarget) -> Vec<String> {
    let mut out = Vec::new();
    if insecure_tls(target) {
        out.push(
            "Redis TLS certificate checks are off (#insecure in the URL): anyone on the network path can read and change the traffic"
                .to_string(),
        );
    }
    out
}

fn connect_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::RedisConnect {
        url: crate::redact::url(url),
        reason: e.to_string(),
    }
}

fn load_certs(target: &RedisTarget) -> Result<Option<TlsCertificates>> {
    let Some(path) = &target.tls_ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path)
        .map_err(|e| Error::io(format!("reading the TLS CA file {}", path.display()), e))?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

fn connection_info(url: &str, target: &RedisTarget) -> Result<ConnectionInfo> {
    let mut info = url
        .into_connection_info()
        .map_err(|e| connect_err(url, e))?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &target.username {
        settings = settings.set_username(user);
    }
    if let Some(pw) = &target.password {
        settings = settings.set_password(pw);
    }
    info = info.set_redis_settings(settings);
    Ok(info)
}

fn client_for(info: ConnectionInfo, certs: &Option<TlsCertificates>) -> redis::RedisResult<Client> {
    match certs {
        Some(c) => Client::build_with_tls(info, c.clone()),
        None => Client::open(info),
    }
}

fn async_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
}

impl Redis {
    /// Connects, detecting standalone or cluster from the server.
    pub async fn connect(target: &RedisTarget) -> Result<Redis> {
        let first = target
            .urls
            .first()
            .ok_or_else(|| Error::Config("no Redis URL configured".into()))?;
        let certs = load_certs(target)?;
        let base_info = connection_info(first, target)?;
        let label = target
            .urls
            .iter()
            .map(|u| crate::redact::redact(u))
            .collect::<Vec<_>>()
            .join(",");

        // Ask the first node what it is.
        let probe_client =
            client_for(base_info.clone(), &certs).map_err(|e| connect_err(first, e))?;
        let mut probe = probe_client
            .get_multiplexed_async_connection_with_config(&async_config())
            .await
            .map_err(|e| connect_err(first, e))?;
        let clustered = is_cluster(&mut probe).await.map_err(|e| {
            Error::redis(
                format!("asking {} what it is", crate::redact::redact(first)),
                e,
            )
        })?;

        let mut node_names = NodeNames::default();
        let (conn, topology) = if clustered || target.urls.len() > 1 {
            let infos = target
                .urls
                .iter()
                .map(|u| connection_info(u, target))
                .collect::<Result<Vec<_>>>()?;
            let mut builder = ClusterClientBuilder::new(infos)
                .response_timeout(RESPONSE_TIMEOUT)
                .connection_timeout(CONNECT_TIMEOUT);
            if let Some(c) = &certs {
                builder = builder.certs(c.clone());
            }
            if let Some(host) = verified_host(base_info.addr()) {
                // Without the node list (an ACL without CLUSTER), nodes are
                // reached and checked as announced.
                if let Ok(text) = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async::<String>(&mut probe)
                    .await
                {
                    node_names = NodeNames::plan(host, &text);
                }
            }
            if !node_names.is_empty() {
                builder = builder
                    .node_address_map(node_names.address_map())
                    .async_dns_resolver(node_names.resolver());
            }
            let client = builder.build().map_err(|e| connect_err(first, e))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| connect_err(&label, e))?;
            (Conn::Cluster(conn), Topology::Cluster)
        } else {
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(2);
            let conn = probe_client
                .get_connection_manager_with_config(config)
                .await
                .map_err(|e| connect_err(first, e))?;
            (Conn::Single(conn), Topology::Standalone)
        };
        Ok(Redis {
            conn,
            topology,
            base_info,
            certs,
            node_conns: Arc::new(Mutex::new(HashMap::new())),
            node_names,
            label,
        })
    }

    /// Standalone or cluster.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// The URL(s) without password, for messages and the status bar.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A connection that routes key commands (clone it freely).
    pub fn conn(&self) -> impl ConnectionLike + Clone + Send + Sync + 'static {
        self.conn.clone()
    }

    /// Runs one command, mapping errors with `context`.
    pub async fn query<T: redis::FromRedisValue>(&self, context: &str, cmd: &Cmd) -> Result<T> {
        let mut c = self.conn.clone();
        cmd.query_async(&mut c)
            .await
            .map_err(|e| Error::redis(context, e))
    }

    /// Runs a pipeline, mapping errors with `context`.
    pub async fn pipe<T: redis::FromRedisValue>(
        &self,
        context: &str,
        pipe: &Pipeline,
    ) -> Result<T> {
        let mut c = self.conn.clone();
        pipe.query_async(&mut c)
            .await
            .map_err(|e| Error::redis(context, e))
    }

    /// Server time in milliseconds since the epoch (`TIME`), so that several
    /// machines agree on leases, ticks and ages.
    pub async fn time_ms(&self) -> Result<i64> {
        let (secs, micros): (i64, i64) = self.query("TIME", &redis::cmd("TIME")).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Direct connections to every master: one for standalone, each master
    /// of a cluster.
    pub async fn masters(&self) -> Result<Vec<NodeConn>> {
        let addrs = match self.topology {
            Topology::Standalone => vec![addr_of(self.base_info.addr())],
            Topology::Cluster => {
                let nodes: String = self
                    .query("CLUSTER NODES", redis::cmd("CLUSTER").arg("NODES"))
                    .await?;
                parse_masters(&nodes)
            }
        };
        let mut out = Vec::with_capacity(addrs.len());
        let mut cache = self.node_conns.lock().await;
        for addr in addrs {
            if let Some(c) = cache.get(&addr) {
                out.push(NodeConn {
                    addr,
                    conn: c.clone(),
                });
                continue;
            }
            let conn = self.open_node(&addr).await?;
            cache.insert(addr.clone(), conn.clone());
            out.push(NodeConn { addr, conn });
        }
        Ok(out)
    }
}

impl Redis {
    /// `host:port` of the master serving `key` (the only master on a
    /// standalone server; on a cluster, the owner of its hash slot).
    async fn owner_of(&self, key: &str) -> Result<String> {
        match self.topology {
            Topology::Standalone => Ok(addr_of(self.base_info.addr())),
            Topology::Cluster => {
                let slot: i64 = self
                    .query(
                        "CLUSTER KEYSLOT",
                        redis::cmd("CLUSTER").arg("KEYSLOT").arg(key),
                    )
                    .await?;
                let nodes: String = self
                    .query("CLUSTER NODES", redis::cmd("CLUSTER").arg("NODES"))
                    .await?;
                slot_owner(&nodes, slot).ok_or_else(|| {
                    Error::Invalid(format!("no master of the cluster serves slot {slot}"))
                })
            }
        }
    }

    /// The shared direct connection to the master serving `key`.
    pub async fn master_of(&self, key: &str) -> Result<NodeConn> {
        let owner = self.owner_of(key).await?;
        let mut masters = self.masters().await?;
        match masters.iter().position(|m| m.addr == owner) {
            Some(i) => Ok(masters.swap_remove(i)),
            None => Err(Error::Invalid(format!(
                "the master {owner} is not among the cluster's masters"
            ))),
        }
    }

    /// A new connection of its own to the master serving `key`, for
    /// connection state no one else may share (WATCH before MULTI/EXEC).
    pub async fn dedicated_master_of(&self, key: &str) -> Result<NodeConn> {
        let addr = self.owner_of(key).await?;
        let conn = self.open_node(&addr).await?;
        Ok(NodeConn { addr, conn })
    }

    /// A new direct connection to the master at `addr` (the server itself
    /// on a standalone deployment), with the profile's TLS and ACL user.
    async fn open_node(&self, addr: &str) -> Result<MultiplexedConnection> {
        let mut config = async_config();
        let info = match self.topology {
            Topology::Standalone => self.base_info.clone(),
            Topology::Cluster => {
                // A node announced by IP, reached under the configured
                // host name that its certificate carries.
                let named = match (self.node_names.name_of(addr), addr.rsplit_once(':')) {
                    (Some(name), Some((_, port))) => {
                        config = config.set_dns_resolver(self.node_names.resolver());
                        format!("{name}:{port}")
                    }
                    _ => addr.to_string(),
                };
                self.base_info
                    .clone()
                    .set_addr(with_addr(self.base_info.addr(), &named))
            }
        };
        let client = client_for(info, &self.certs).map_err(|e| connect_err(addr, e))?;
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| connect_err(addr, e))
    }
}

/// Memory and eviction settings of one master, from `INFO memory`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMemory {
    /// `host:port` of the master.
    pub addr: String,
    /// `used_memory` in bytes.
    pub used: u64,
    /// `maxmemory` in bytes; 0 means no limit.
    pub max: u64,
    /// `maxmemory_policy` (`unknown` when INFO does not say).
    pub policy: String,
}

/// Reads the memory figures of `INFO memory` text from the master `addr`.
pub fn parse_info_memory(addr: &str, info: &str) -> NodeMemory {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let num = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    NodeMemory {
        addr: addr.to_string(),
        used: num("used_memory"),
        max: num("maxmemory"),
        policy: field("maxmemory_policy").unwrap_or_else(|| "unknown".into()),
    }
}

impl NodeConn {
    /// This master's memory figures (`INFO memory`).
    pub async fn memory(&mut self) -> Result<NodeMemory> {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn)
            .await
            .map_err(|e| Error::redis(format!("INFO memory on {}", self.addr), e))?;
        Ok(parse_info_memory(&self.addr, &info))
    }
}

impl Redis {
    /// The memory figures of every master.
    pub async fn masters_memory(&self) -> Result<Vec<NodeMemory>> {
        let mut out = Vec::new();
        for mut node in self.masters().await? {
            out.push(node.memory().await?);
        }
        Ok(out)
    }
}

/// The `host:port` of the master whose slot ranges (in `CLUSTER NODES`
/// text) include `slot`.
fn slot_owner(nodes: &str, slot: i64) -> Option<String> {
    nodes.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 9 || !f[2].split(',').any(|x| x == "master") {
            return None;
        }
        let owns = f[8..].iter().any(|range| {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&slot),
                _ => false,
            }
        });
        owns.then(|| f[1].split('@').next().unwrap_or("").to_string())
    })
}

fn addr_of(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(h, p) => format!("{h}:{p}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port}"),
        ConnectionAddr::Unix(p) => p.display().to_string(),
        _ => "unknown".to_string(),
    }
}

/// The host name whose certificate a verified TLS address checks (`None`
/// for plain TCP, or TLS with checks off).
fn verified_host(addr: &ConnectionAddr) -> Option<&str> {
    match addr {
        ConnectionAddr::TcpTls {
            host,
            insecure: false,
            ..
        } => Some(host),
        _ => None,
    }
}

fn with_addr(base: &ConnectionAddr, hostport: &str) -> ConnectionAddr {
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(6379)),
        None => (hostport.to_string(), 6379),
    };
    match base {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    }
}

/// Master addresses from `CLUSTER NODES` (healthy masters only).
fn parse_masters(nodes: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in nodes.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let flags = f[2];
        if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
            continue;
        }
        // ip:port@cport[,hostname]
        let addr = f[1].split('@').next().unwrap_or("");
        if !addr.is_empty() && !addr.starts_with(':') {
            out.push(addr.to_string());
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_slot_is_found_in_cluster_nodes() {
        let text = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
                    b 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922 12000\n\
                    c 127.0.0.1:7004@17004 slave a 0 0 1 connected\n";
        assert_eq!(slot_owner(text, 0).as_deref(), Some("127.0.0.1:7001"));
        assert_eq!(slot_owner(text, 6000).as_deref(), Some("127.0.0.1:7002"));
        assert_eq!(slot_owner(text, 12000).as_deref(), Some("127.0.0.1:7002"));
        assert_eq!(slot_owner(text, 11000), None);
    }

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let text = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
                    b 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922\n\
                    c 127.0.0.1:7004@17004 slave a 0 0 1 connected\n\
                    d 127.0.0.1:7003@17003 master,fail - 0 0 3 connected\n";
        assert_eq!(
            parse_masters(text),
            vec!["127.0.0.1:7001", "127.0.0.1:7002"]
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            crate::redact::redact("redis://admin:secret@host:6379"),
            "redis://admin:***@host:6379"
        );
    }
}
