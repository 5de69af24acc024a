//! The key-browser benchmark behind BENCHMARKS.md: fills N keys with
//! pipelined SET, then measures the latency another client sees (GET of a
//! small key in a loop on its own connection, p50 / p99 / max) with no
//! browser running, while the window's "load all" runs (the same
//! `ScanCursor::load_all` with the window's pace, holding the keys as the
//! window does) and, for comparison, while an unpaced load runs. Ratios are
//! against the no-browser figures of the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::backend::{BROWSE_PACE, BrowsedKey};
use crate::error::{Error, Result};
use crate::redis_admin::{ScanCursor, ScanQuery, dbsize_total};
use crate::redis_conn::Redis;

/// Prefix of the keys the benchmark writes (and removes afterwards).
pub const PREFIX: &str = "cachedeck:bench:browse:";
/// SETs per pipeline while filling.
const FILL_BATCH: u64 = 10_000;
/// How long the no-browser latency is measured.
const BASELINE: Duration = Duration::from_secs(5);

/// Latency figures of the probe client over one phase.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// GETs sent.
    pub samples: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Worst, ms.
    pub max_ms: f64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowseBench {
    /// Keys written and browsed.
    pub keys: u64,
    /// Keys in the keyspace when browsing (DBSIZE over every master).
    pub keyspace: u64,
    /// Time to fill them with pipelined SET.
    pub fill_ms: f64,
    /// The window's sleep between SCAN calls.
    pub pace_ms: f64,
    /// The probe with no browser running.
    pub baseline: Latency,
    /// The window's paced "load all" of every key.
    pub paced_ms: f64,
    /// Keys per second of the paced load.
    pub paced_keys_per_sec: f64,
    /// The probe during the paced load.
    pub during_paced: Latency,
    /// p99 during the paced load / p99 with no browser.
    pub paced_p99_ratio: f64,
    /// Worst during the paced load / worst with no browser.
    pub paced_max_ratio: f64,
    /// An unpaced load of every key (for comparison).
    pub unpaced_ms: f64,
    /// The probe during the unpaced load.
    pub during_unpaced: Latency,
    /// p99 during the unpaced load / p99 with no browser.
    pub unpaced_p99_ratio: f64,
    /// Keys the paced load returned (equal to `keys` when complete).
    pub loaded: u64,
    /// Bytes the window would hold for them (rows + names), MB.
    #[serde(rename = "windowHeldMB")]
    pub window_held_mb: f64,
    /// The same per key, bytes.
    pub window_bytes_per_key: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A GET loop on a connection of its own, on a thread of its own (plain
/// blocking client), so the loader's work in this process cannot delay it:
/// it sees what another client of the server sees.
struct Probe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl Probe {
    fn start(url: &str, key: String) -> Result<Probe> {
        let client = redis::Client::open(url).map_err(|e| Error::redis("probe client", e))?;
        let mut conn = client
            .get_connection()
            .map_err(|e| Error::redis("probe connection", e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut ms = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(&key).query(&mut conn);
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_micros(200));
            }
            ms
        });
        Ok(Probe { stop, thread })
    }

    fn finish(self) -> Latency {
        self.stop.store(true, Ordering::Relaxed);
        let mut ms = self.thread.join().unwrap_or_default();
        ms.sort_by(f64::total_cmp);
        Latency {
            samples: ms.len(),
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Loads every bench key the way the window does; returns (ms, keys, bytes held).
async fn load(redis: &Redis, cap: usize, pace: Duration) -> Result<(f64, u64, usize)> {
    let t = Instant::now();
    let mut cursor = ScanCursor::new(redis, ScanQuery::new(format!("{PREFIX}*"))).await?;
    let mut held: Vec<BrowsedKey> = Vec::new();
    let mut names = 0usize;
    {
        let pages = cursor.load_all(cap, pace);
        futures::pin_mut!(pages);
        while let Some(page) = pages.next().await {
            for k in page?.keys {
                let row = BrowsedKey::new(k.key);
                names += row.heap_bytes();
                held.push(row);
            }
        }
    }
    let bytes = names + held.capacity() * BrowsedKey::ROW_BYTES;
    Ok((t.elapsed().as_secs_f64() * 1000.0, held.len() as u64, bytes))
}

/// Removes the bench keys (SCAN + UNLINK, one pipeline per page).
async fn cleanup(redis: &Redis) -> Result<()> {
    let mut cursor = ScanCursor::new(redis, ScanQuery::new(format!("{PREFIX}*"))).await?;
    while !cursor.is_done() {
        let page = cursor.next_page().await?;
        if page.keys.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for k in &page.keys {
            pipe.cmd("UNLINK").arg(k.key.as_slice()).ignore();
        }
        redis.pipe::<()>("UNLINK", &pipe).await?;
    }
    Ok(())
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Runs the benchmark with `keys` keys on `redis`; the "other client"
/// connects to `probe_url` (the first node of the target).
pub async fn run(redis: &Redis, probe_url: &str, keys: u64) -> Result<BrowseBench> {
    if keys == 0 {
        return Err(Error::Invalid("--keys must be at least 1".into()));
    }
    eprintln!("filling {keys} keys with pipelined SET…");
    let t = Instant::now();
    let mut i = 0u64;
    while i < keys {
        let end = (i + FILL_BATCH).min(keys);
        let mut pipe = redis::pipe();
        for n in i..end {
            pipe.cmd("SET")
                .arg(format!("{PREFIX}{n:08}"))
                .arg("v")
                .ignore();
        }
        redis.pipe::<()>("SET (fill)", &pipe).await?;
        i = end;
    }
    let fill_ms = t.elapsed().as_secs_f64() * 1000.0;
    let probe_key = format!("{PREFIX}{:08}", keys / 2);
    let keyspace = dbsize_total(redis).await?;

    eprintln!("latency with no browser ({} s)…", BASELINE.as_secs());
    let p = Probe::start(probe_url, probe_key.clone())?;
    tokio::time::sleep(BASELINE).await;
    let baseline = p.finish();

    eprintln!("latency during the window's load all (pace {BROWSE_PACE:?})…");
    let p = Probe::start(probe_url, probe_key.clone())?;
    let (paced_ms, loaded, held) = load(redis, keys as usize, BROWSE_PACE).await?;
    let during_paced = p.finish();

    eprintln!("latency during an unpaced load (comparison)…");
    let p = Probe::start(probe_url, probe_key)?;
    let (unpaced_ms, _, _) = load(redis, keys as usize, Duration::ZERO).await?;
    let during_unpaced = p.finish();

    eprintln!("removing the bench keys…");
    cleanup(redis).await?;

    Ok(BrowseBench {
        keys,
        keyspace,
        fill_ms,
        pace_ms: BROWSE_PACE.as_secs_f64() * 1000.0,
        paced_keys_per_sec: loaded as f64 / (paced_ms / 1000.0).max(1e-9),
        paced_p99_ratio: ratio(during_paced.p99_ms, baseline.p99_ms),
        paced_max_ratio: ratio(during_paced.max_ms, baseline.max_ms),
        unpaced_p99_ratio: ratio(during_unpaced.p99_ms, baseline.p99_ms),
        baseline,
        paced_ms,
        during_paced,
        unpaced_ms,
        during_unpaced,
        loaded,
        window_held_mb: held as f64 / (1024.0 * 1024.0),
        window_bytes_per_key: held as f64 / loaded.max(1) as f64,
    })
}
