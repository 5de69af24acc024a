//! `cachedeck demo`: a ready local environment on a machine with nothing
//! configured.
//!
//! - its own `redis-server` on a free loopback port (`--save ""`, nothing
//!   persisted, 512 MB `maxmemory` with `noeviction`, working dir
//!   `<data dir>/demo/redis`), killed when the demo ends; it never writes into a Redis it did not start (the server must
//!   report the process id it was started with);
//! - a SQLite file of demo analytics rows (`<data dir>/demo/data.db`, made
//!   once; 60,000 rows unless `CACHEDECK_DEMO_ROWS` asks for another number) and a SQLite store (`<data dir>/demo/store.db`) with four
//!   datasources over it, one of them left cold;
//! - simulated application reads, so hit rates and query times have
//!   something to show: 24 hours of history written into the stats buckets
//!   at start, then a few live queries a second through the real reader.
//!
//! No profile file is written. Nothing here depends on the window. The
//! server is stopped when the demo ends, when the process gets SIGTERM,
//! SIGINT or SIGHUP, and (through a pid file) at the next start after a
//! crash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;

use crate::cache::query::{self, QueryRequest};
use crate::cache::stats::{HOUR_TTL_SECS, MINUTE_TTL_SECS};
use crate::config::{Defaults, Resolved, data_dir};
use crate::error::{Error, Result};
use crate::keys::{self, Bucket, DsId};
use crate::redis_conn::{Redis, RedisTarget};
use crate::source::demo;
use crate::store::{DatasourceInput, Store};

/// What to do when `redis-server` is missing (shown in the window and on stderr).
pub const INSTALL_HINT: &str = "redis-server is not installed: install it with `sudo apt-get install redis-server` (or run scripts/demo.sh, which installs it), then start `cachedeck demo` again";

/// Name of the demo analytics table.
pub const TABLE: &str = "analytics_demo";
/// Rows of demo data generated on first start.
pub const ROWS: u64 = 60_000;
/// Environment variable that asks for another number of demo rows (the
/// data is made again when it changes), e.g. to watch a longer warm.
pub const ROWS_ENV: &str = "CACHEDECK_DEMO_ROWS";
/// The demo redis-server's memory limit, set as the health check recommends
/// (with `noeviction`, so a full cache fails writes instead of losing entries).
const MAXMEMORY: &str = "512mb";

/// Demo rows to generate: [`ROWS`], or [`ROWS_ENV`] when set to a number.
pub fn demo_rows() -> Result<u64> {
    match std::env::var(ROWS_ENV) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                Error::Invalid(format!("{ROWS_ENV}=`{v}` is not a positive number of rows"))
            }),
        Err(_) => Ok(ROWS),
    }
}
/// Name of the demo profile.
pub const PROFILE: &str = "demo";
/// Pid file of the running demo redis-server, in its working directory.
const PID_FILE: &str = "cachedeck-demo.pid";

/// One demo datasource.
pub struct DemoDatasource {
    /// Registry id.
    pub id: DsId,
    /// Display name.
    pub name: &'static str,
    /// The measures it reads (`None`: every measure).
    pub measures: Option<&'static [&'static str]>,
    /// Warmed when the demo starts (the others stay cold).
    pub warm_at_start: bool,
    /// Simulated reads per second and the share of them that miss.
    pub traffic: (f64, f64),
}

/// The demo's datasources: different measure subsets, one left cold.
pub const DATASOURCES: [DemoDatasource; 4] = [
    DemoDatasource {
        id: 1,
        name: "Revenue Analytics",
        measures: Some(&[
            "Charges",
            "Payments",
            "Adjustments",
            "Refunds",
            "Write-offs",
        ]),
        warm_at_start: true,
        traffic: (2.0, 0.02),
    },
    DemoDatasource {
        id: 2,
        name: "Operational Metrics",
        measures: Some(&["Visits", "No-shows", "New Patients"]),
        warm_at_start: true,
        traffic: (1.2, 0.09),
    },
    DemoDatasource {
        id: 3,
        name: "Clinical Data",
        measures: None,
        warm_at_start: true,
        traffic: (0.8, 0.05),
    },
    DemoDatasource {
        id: 4,
        name: "Provider Productivity",
        measures: Some(&["Visits", "Charges", "New Patients"]),
        warm_at_start: false,
        traffic: (0.0, 0.0),
    },
];

/// Every measure of the demo table (for datasources reading all of them).
const ALL_MEASURES: [&str; 8] = [
    "Charges",
    "Payments",
    "Adjustments",
    "Refunds",
    "Write-offs",
    "Visits",
    "New Patients",
    "No-shows",
];

/// A running demo environment. Dropping it stops its redis-server.
pub struct DemoEnv {
    /// The profile to connect with (built here, never written to disk).
    pub resolved: Resolved,
    /// Every demo datasource id.
    pub datasource_ids: Vec<DsId>,
    /// The ones to warm when the window opens.
    pub warm_at_start: Vec<DsId>,
    /// The demo's own redis-server, killed on stop.
    server: ServerHandle,
    /// `<data dir>/demo`.
    dir: PathBuf,
}

/// The demo's redis-server process, shared so a signal handler can stop it
/// too (a terminated window must not leave it running).
#[derive(Clone, Default)]
pub struct ServerHandle {
    /// The child process while it runs, and where its pid file is.
    inner: Arc<Mutex<Option<(Child, PathBuf)>>>,
}

impl ServerHandle {
    fn new(child: Child, pid_file: PathBuf) -> ServerHandle {
        ServerHandle {
            inner: Arc::new(Mutex::new(Some((child, pid_file)))),
        }
    }

    /// Kills the server (once) and removes its pid file.
    pub fn stop(&self) {
        let taken = match self.inner.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((mut child, pid_file)) = taken {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

/// Stops the demo's redis-server when the process is told to end (SIGTERM,
/// SIGINT, SIGHUP), then exits: the window cannot clean up after those.
#[cfg(unix)]
pub async fn stop_on_signal(server: ServerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::terminate(), 143),
        (SignalKind::interrupt(), 130),
        (SignalKind::hangup(), 129),
    ];
    let mut streams = Vec::new();
    for (kind, code) in kinds {
        match signal(kind) {
            Ok(s) => streams.push((s, code)),
            Err(e) => tracing::warn!("cannot watch a signal: {e}"),
        }
    }
    if streams.is_empty() {
        return;
    }
    let waits = streams.iter_mut().map(|(s, code)| {
        let code = *code;
        Box::pin(async move {
            s.recv().await;
            code
        })
    });
    let (code, _, _) = futures::future::select_all(waits).await;
    server.stop();
    std::process::exit(code);
}

/// Kills a demo redis-server left running by an earlier demo that could not
/// clean up (killed with SIGKILL, power loss): the pid file names it, and it
/// is only killed when it is a redis-server working in this demo's directory.
fn reap_leftover(redis_dir: &Path) {
    let pid_file = redis_dir.join(PID_FILE);
    let Ok(text) = std::fs::read_to_string(&pid_file) else {
        return;
    };
    let _ = std::fs::remove_file(&pid_file);
    let Ok(pid) = text.trim().parse::<u32>() else {
        return;
    };
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let is_redis = String::from_utf8_lossy(&cmdline).contains("redis-server");
    let cwd = std::fs::read_link(proc_dir.join("cwd")).ok();
    let ours = match (cwd, std::fs::canonicalize(redis_dir)) {
        (Some(cwd), Ok(dir)) => cwd == dir,
        _ => false,
    };
    if is_redis && ours {
        tracing::info!("stopping the demo redis-server {pid} left by an earlier run");
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
}

/// The full path of an executable on PATH.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// `sqlite://<path>?mode=rwc`
fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

impl DemoEnv {
    /// Starts redis-server, makes the demo data if it is not there yet and
    /// registers the datasources. `progress` hears each step.
    pub async fn start(progress: impl Fn(&str) + Send + Sync) -> Result<DemoEnv> {
        let Some(redis_server) = find_on_path("redis-server") else {
            return Err(Error::Invalid(INSTALL_HINT.into()));
        };
        let dir = data_dir()?.join("demo");
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir)
            .map_err(|e| Error::io(format!("creating {}", redis_dir.display()), e))?;

        reap_leftover(&redis_dir);
        progress("Starting a private redis-server…");
        let (child, url) = spawn_redis(&redis_server, &redis_dir).await?;
        let pid_file = redis_dir.join(PID_FILE);
        if let Err(e) = std::fs::write(&pid_file, format!("{}\n", child.id())) {
            tracing::warn!("cannot write {}: {e}", pid_file.display());
        }
        let server = ServerHandle::new(child, pid_file);
        let env = DemoEnv {
            resolved: Resolved {
                name: PROFILE.into(),
                production: false,
                redis: RedisTarget {
                    urls: vec![url],
                    ..RedisTarget::default()
                },
                database_url: sqlite_url(&dir.join("store.db")),
                defaults: Defaults::default(),
            },
            datasource_ids: DATASOURCES.iter().map(|d| d.id).collect(),
            warm_at_start: DATASOURCES
                .iter()
                .filter(|d| d.warm_at_start)
                .map(|d| d.id)
                .collect(),
            server,
            dir,
        };
        // On any failure below, `env` is dropped and the server killed.
        env.prepare_data(&progress).await?;
        progress("Writing 24 hours of simulated reads…");
        let redis = Redis::connect(&env.resolved.redis).await?;
        backfill_traffic(&redis, 24 * 60).await?;
        Ok(env)
    }

    /// Makes the demo table once, and registers any missing datasource.
    async fn prepare_data(&self, progress: &(impl Fn(&str) + Send + Sync)) -> Result<()> {
        let data = self.dir.join("data.db");
        let ready = self.dir.join("data.ready");
        let source_url = sqlite_url(&data);
        let rows = demo_rows()?;
        let marker = format!("{TABLE} {rows}\n");
        if std::fs::read_to_string(&ready).ok().as_deref() != Some(marker.as_str()) {
            progress(&format!("Generating {rows} rows of demo analytics data…"));
            let _ = std::fs::remove_file(&ready);
            demo::create(&source_url, TABLE, rows, true).await?;
            std::fs::write(&ready, marker)
                .map_err(|e| Error::io(format!("writing {}", ready.display()), e))?;
        }
        progress("Registering the demo datasources…");
        let store = Store::connect(&self.resolved.database_url).await?;
        for d in &DATASOURCES {
            match store.datasource(d.id).await {
                Ok(_) => continue,
                Err(Error::NoSuchDatasource(_)) => {}
                Err(e) => return Err(e),
            }
            store
                .add_datasource(&DatasourceInput {
                    id: d.id,
                    name: d.name.into(),
                    source_url: Some(source_url.clone()),
                    source_password: None,
                    sql: demo::datasource_sql(TABLE, d.measures),
                    stale_after_secs: 4 * 3600,
                    ttl_secs: 48 * 3600,
                    enabled: true,
                    statement_timeout_secs: crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
                })
                .await?;
        }
        Ok(())
    }

    /// Kills the demo's redis-server (nothing was persisted).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// A handle that can stop the server from elsewhere (a signal handler).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.clone()
    }
}

impl Drop for DemoEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts redis-server on a free loopback port and waits until it answers as
/// the process we started. Retries another port when one is taken meanwhile.
async fn spawn_redis(binary: &Path, dir: &Path) -> Result<(Child, String)> {
    let log = dir.join("redis.log");
    let mut last = String::new();
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| Error::io("finding a free loopback port", e))?;
        let out = std::fs::File::create(&log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicating a file handle", e))?;
        let mut child = Command::new(binary)
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .args(["--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::Invalid(INSTALL_HINT.into()),
                _ => Error::io("starting redis-server", e),
            })?;
        let url = format!("redis://127.0.0.1:{port}");
        let target = RedisTarget {
            urls: vec![url.clone()],
            ..RedisTarget::default()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last = std::fs::read_to_string(&log).unwrap_or_default();
                if last.contains("already in use") {
                    break;
                }
                return Err(Error::Invalid(format!(
                    "the demo redis-server exited at start ({status}): {}",
                    last.lines().last().unwrap_or("no output")
                )));
            }
            if let Ok(redis) = Redis::connect(&target).await
                && let Ok(info) = redis
                    .query::<String>("INFO server", redis::cmd("INFO").arg("server"))
                    .await
            {
                if info
                    .lines()
                    .any(|l| l.trim() == format!("process_id:{}", child.id()))
                {
                    return Ok((child, url));
                }
                // Someone else answers on this port: never touch it.
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            if tokio::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Invalid(format!(
                    "the demo redis-server on port {port} did not answer within 10 s (log: {})",
                    log.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Err(Error::Invalid(format!(
        "the demo redis-server could not bind a free loopback port: {}",
        last.lines().last().unwrap_or("")
    )))
}

/// Daily rhythm of the simulated reads: quiet at night, busy mid-day.
fn diurnal(unix_minute: i64) -> f64 {
    let hour = (unix_minute.rem_euclid(24 * 60)) as f64 / 60.0;
    0.35 + 0.65 * (((hour - 8.0) / 24.0 * std::f64::consts::TAU).sin() * 0.5 + 0.5)
}

/// Writes `minutes` of simulated read statistics (minute and hour buckets)
/// for the datasources warmed at start, ending now.
pub async fn backfill_traffic(redis: &Redis, minutes: i64) -> Result<()> {
    let now_minute = redis.time_ms().await? / 60_000;
    let mut rng = StdRng::from_os_rng();
    for d in DATASOURCES.iter().filter(|d| d.warm_at_start) {
        let (per_second, miss_share) = d.traffic;
        let base_us = 600.0 + 250.0 * d.id as f64;
        let mut p = redis::pipe();
        for m in (now_minute - minutes)..now_minute {
            let queries =
                (per_second * 60.0 * diurnal(m) * rng.random_range(0.8..1.2)).round() as u64;
            let misses =
                ((queries as f64) * miss_share * rng.random_range(0.5..1.5)).round() as u64;
            let misses = misses.min(queries);
            let query_us =
                (queries as f64 * base_us * rng.random_range(0.85..1.3) * (0.7 + 0.6 * diurnal(m)))
                    as u64;
            for (bucket, ttl) in [
                (Bucket::Minute(m), MINUTE_TTL_SECS),
                (Bucket::Hour(m.div_euclid(60)), HOUR_TTL_SECS),
            ] {
                let key = keys::stats_bucket(d.id, bucket);
                p.cmd("HINCRBY")
                    .arg(&key)
                    .arg("hits")
                    .arg(queries - misses)
                    .ignore();
                p.cmd("HINCRBY")
                    .arg(&key)
                    .arg("misses")
                    .arg(misses)
                    .ignore();
                p.cmd("HINCRBY")
                    .arg(&key)
                    .arg("queryUs")
                    .arg(query_us)
                    .ignore();
                p.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
            }
            if m % 200 == 0 {
                redis.pipe::<()>("writing simulated statistics", &p).await?;
                p = redis::pipe();
            }
        }
        redis.pipe::<()>("writing simulated statistics", &p).await?;
    }
    Ok(())
}

/// Reads the demo cache the way an application would (through the real
/// reader, which records hits, misses and time) until `cancel`.
pub async fn simulate_traffic(redis: Redis, ids: Vec<DsId>, cancel: CancellationToken) {
    let active: Vec<&DemoDatasource> = DATASOURCES
        .iter()
        .filter(|d| ids.contains(&d.id) && d.traffic.0 > 0.0)
        .collect();
    let total: f64 = active.iter().map(|d| d.traffic.0).sum();
    if active.is_empty() || total <= 0.0 {
        return;
    }
    let pause = Duration::from_secs_f64(1.0 / total);
    loop {
        let req = {
            let mut rng = rand::rng();
            let mut pick = rng.random_range(0.0..total);
            let d = active
                .iter()
                .find(|d| {
                    pick -= d.traffic.0;
                    pick < 0.0
                })
                .unwrap_or(&active[0]);
            let measures: &[&str] = d.measures.unwrap_or(&ALL_MEASURES);
            let frequency = ["Monthly", "Weekly", "Quarterly"][rng.random_range(0..3)];
            QueryRequest {
                datasource: d.id,
                measure: measures[rng.random_range(0..measures.len())].to_string(),
                frequency: frequency.to_string(),
                practices: vec![(101 + rng.random_range(0..15)).to_string()],
                providers: Vec::new(),
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = query::query_recorded(&redis, &req) => {
                if let Err(e) = r {
                    tracing::debug!("simulated read failed: {e}");
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_demo_datasource_stays_cold_and_ids_are_unique() {
        assert!(DATASOURCES.iter().any(|d| !d.warm_at_start));
        let mut ids: Vec<DsId> = DATASOURCES.iter().map(|d| d.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), DATASOURCES.len());
    }

    #[test]
    fn daily_rhythm_stays_positive() {
        for m in 0..(24 * 60) {
            let v = diurnal(m);
            assert!((0.3..=1.01).contains(&v), "{v}");
        }
    }
}
