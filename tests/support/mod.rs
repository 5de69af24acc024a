//! The integration-test harness: real servers, no mocks.
//!
//! - [`RedisServer`]: one `redis-server` on a free loopback port (nothing
//!   persisted), with `stop`/`restart`/`freeze`/`thaw` for failure tests.
//! - [`RedisCluster`]: a real 3-master Redis Cluster (no replicas).
//! - [`AnyRedis`] + [`each_topology`]: one test body, both topologies.
//! - [`TestDb`]: a fresh Postgres database per test (admin URL from
//!   `CACHEDECK_TEST_DATABASE_URL`, default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
//! - [`SqliteFile`], [`AnyDb`]: a SQLite file; either store backend.
//! - [`CliRunner`]: the real `cachedeck` binary with its own config dir.
//! - [`KeyringSession`]: a real Secret Service (gnome-keyring) in a
//!   private D-Bus session.
//! - [`WarmFixture`]: Redis + a fresh database + the job context that warms.
//! - [`SeedCache`]: a cache written in the seed application's format.
//!
//! When a server cannot be had, the test panics saying what to install or
//! start (`scripts/test.sh` installs and starts everything); nothing is
//! skipped silently.
//!
//! Used by `tests/it/main.rs` as `#[path = "../support/mod.rs"] mod support;`.

// Not every test binary uses every helper.
#![allow(dead_code, unused_imports)]

/// `both!(name, body)`: a module `name` with two tests running the async
/// `body(&AnyRedis)` on a standalone server and on a 3-master cluster.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn standalone() {
                $body(&$crate::support::AnyRedis::standalone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                $body(&$crate::support::AnyRedis::cluster()).await;
            }
        }
    };
}

mod cli;
mod cluster;
mod keyring;
mod ports;
mod postgres;
mod redis_server;
mod seed_cache;
mod sqlite;
mod tls_files;
mod topology;
mod warm_fixture;

pub use cli::{CliOutput, CliRunner, cachedeck_bin};
pub use cluster::RedisCluster;
pub use keyring::KeyringSession;
pub use ports::{free_cluster_port, free_port};
pub use postgres::{DEFAULT_ADMIN_URL, TestDb, admin_url, block_on};
pub use redis_server::RedisServer;
pub use seed_cache::{
    SEED_ENTRIES, SEED_FREQUENCIES, SEED_INDEXES, SEED_MEASURES, SEED_PRACTICES, SEED_PROVIDERS,
    SeedCache,
};
pub use sqlite::{AnyDb, SqliteFile};
pub use tls_files::TlsFiles;
pub use topology::{AnyRedis, each_topology};
pub use warm_fixture::WarmFixture;

/// A command as text, for failure messages.
pub fn describe(cmd: &redis::Cmd) -> String {
    cmd.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
