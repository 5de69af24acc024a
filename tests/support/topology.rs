//! Running one test body against a standalone server and against a cluster.

use cachedeck::redis_conn::{Redis, RedisTarget, Topology};
use redis::FromRedisValue;

use super::cluster::RedisCluster;
use super::redis_server::RedisServer;

/// A test Redis of either topology.
pub enum AnyRedis {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

impl AnyRedis {
    pub fn standalone() -> AnyRedis {
        AnyRedis::Standalone(RedisServer::start())
    }

    pub fn cluster() -> AnyRedis {
        AnyRedis::Cluster(RedisCluster::start())
    }

    /// What cachedeck should detect.
    pub fn topology(&self) -> Topology {
        match self {
            AnyRedis::Standalone(_) => Topology::Standalone,
            AnyRedis::Cluster(_) => Topology::Cluster,
        }
    }

    pub fn urls(&self) -> Vec<String> {
        match self {
            AnyRedis::Standalone(s) => vec![s.url()],
            AnyRedis::Cluster(c) => c.urls(),
        }
    }

    /// The URLs joined by commas, as `--redis-url` / `CACHEDECK_REDIS_URL` take them.
    pub fn url_arg(&self) -> String {
        self.urls().join(",")
    }

    pub fn target(&self) -> RedisTarget {
        match self {
            AnyRedis::Standalone(s) => s.target(),
            AnyRedis::Cluster(c) => c.target(),
        }
    }

    /// Connects cachedeck's handle (panics on failure).
    pub async fn connect(&self) -> Redis {
        match self {
            AnyRedis::Standalone(s) => s.connect().await,
            AnyRedis::Cluster(c) => c.connect().await,
        }
    }

    /// Runs one command synchronously (routed by key on a cluster), returning the error.
    pub fn try_query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            AnyRedis::Standalone(s) => s.try_query(cmd),
            AnyRedis::Cluster(c) => c.try_query(cmd),
        }
    }

    /// Runs one command synchronously (routed by key on a cluster); panics on error.
    pub fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        match self {
            AnyRedis::Standalone(s) => s.query(cmd),
            AnyRedis::Cluster(c) => c.query(cmd),
        }
    }

    /// Runs one command given as words; panics on error.
    pub fn cmd<T: FromRedisValue>(&self, words: &[&str]) -> T {
        match self {
            AnyRedis::Standalone(s) => s.cmd(words),
            AnyRedis::Cluster(c) => c.cmd(words),
        }
    }

    /// Total number of keys over every master (DBSIZE summed).
    pub fn dbsize(&self) -> i64 {
        match self {
            AnyRedis::Standalone(s) => s.cmd(&["DBSIZE"]),
            AnyRedis::Cluster(c) => c.nodes().iter().map(|n| n.cmd::<i64>(&["DBSIZE"])).sum(),
        }
    }
}

/// Runs `body` against a fresh standalone server, then against a fresh
/// 3-master cluster. Each server lives until its run of `body` ends.
///
/// ```ignore
/// each_topology(async |r| {
///     let redis = r.connect().await;
///     // ...
/// })
/// .await;
/// ```
pub async fn each_topology(body: impl AsyncFn(&AnyRedis)) {
    for make in [AnyRedis::standalone as fn() -> AnyRedis, AnyRedis::cluster] {
        let redis = make();
        eprintln!(
            "--- each_topology: {:?} at {}",
            redis.topology(),
            redis.url_arg()
        );
        body(&redis).await;
    }
}
