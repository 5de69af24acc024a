//! The warm benchmark behind BENCHMARKS.md: on one demo datasource, in one
//! run, the row rate of `COPY (<the datasource's SQL>) TO STDOUT` beside
//! cachedeck's end-to-end warm rate — a refresh of a warmed cache after 1 %
//! of the practices left and as many new ones came; peak RSS during the warm; the worst
//! latency a concurrent PING loop sees during the swap beside the worst it
//! sees during one MULTI/EXEC of the same RENAMEs over existing keys; reader
//! query latency p50/p99.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use sqlx::postgres::PgPoolCopyExt;
use tokio_util::sync::CancellationToken;

use super::probe::{PingLoop, RssPeak, rss_mb};
use crate::cache::query::{self, QueryRequest};
use crate::cache::set_scan::SetScan;
use crate::cache::warm::{self, Control, Progress, WarmHandles, WarmOptions};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;
use crate::source::demo;
use crate::store::{DatasourceInput, Store};

/// Datasource id the benchmark registers (kept apart from real ones).
pub const BENCH_DS: i64 = 990_001;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmBench {
    pub rows: u64,
    pub entries: u64,
    pub indexes: u64,
    /// Groups of the live generation the source no longer has, and groups
    /// new in the source, when the measured refresh ran.
    pub groups_removed: u64,
    pub groups_added: u64,
    pub copy_ms: f64,
    pub copy_rows_per_sec: f64,
    pub warm_ms: f64,
    pub warm_rows_per_sec: f64,
    /// warm rate / COPY rate (target ≥ 0.5).
    pub warm_to_copy_ratio: f64,
    pub rss_before_mb: f64,
    pub rss_peak_mb: f64,
    pub swap_ms: f64,
    pub ping_worst_during_swap_ms: f64,
    pub renames: u64,
    pub ping_worst_during_multi_exec_ms: f64,
    /// swap worst / MULTI/EXEC worst (target ≤ 1.3).
    pub swap_to_multi_ratio: f64,
    pub queries: u64,
    pub query_p50_ms: f64,
    pub query_p99_ms: f64,
}

/// One warm of `ds` with default options, never paused or cancelled.
pub(crate) async fn warm_once(
    redis: &Redis,
    ds: &crate::store::Datasource,
    db_url: &str,
    job_id: &str,
) -> Result<warm::WarmResult> {
    // The senders live until the warm ends (a closed control channel would
    // read as a change).
    let (_control, control) = tokio::sync::watch::channel(Control::Run);
    let (progress, _progress) = tokio::sync::watch::channel(Progress::default());
    let handles = WarmHandles {
        control,
        cancel: CancellationToken::new(),
        progress,
    };
    warm::run(redis, ds, db_url, job_id, &WarmOptions::default(), handles).await
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark on `rows` demo rows in the Postgres database `db_url`
/// (a table `cachedeck_bench` is created there) and the Redis `redis`.
pub async fn run(redis: &Redis, store: &Store, db_url: &str, rows: u64) -> Result<WarmBench> {
    if !db_url.starts_with("postgres") {
        return Err(Error::Invalid(
            "the warm benchmark needs a Postgres database (COPY)".into(),
        ));
    }
    eprintln!("creating {rows} demo rows…");
    demo::create(db_url, "cachedeck_bench", rows, true).await?;
    let input = DatasourceInput {
        id: BENCH_DS,
        name: "Benchmark".into(),
        source_url: Some(db_url.to_string()),
        source_password: None,
        sql: demo::datasource_sql("cachedeck_bench", None),
        stale_after_secs: 4 * 3600,
        ttl_secs: 3600,
        enabled: false,
        statement_timeout_secs: crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    };
    match store.datasource(BENCH_DS).await {
        Ok(_) => store.update_datasource(&input).await?,
        Err(Error::NoSuchDatasource(_)) => store.add_datasource(&input).await?,
        Err(e) => return Err(e),
    };

    // What is measured is a refresh: the swap replaces a live generation
    // whose groups partly changed.
    let ds = store.datasource(BENCH_DS).await?;
    eprintln!("first warm (a live generation for the measured refresh to replace)…");
    warm_once(redis, &ds, db_url, "bench-first").await?;
    let (groups_removed, groups_added) = change_groups(db_url).await?;

    // COPY rate, the machine's own limit for reading these rows.
    eprintln!("COPY…");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await
        .map_err(|e| Error::db("connecting for COPY", e))?;
    let t = Instant::now();
    let mut out = pool
        .copy_out_raw(&format!("COPY ({}) TO STDOUT", input.sql))
        .await
        .map_err(|e| Error::db("COPY", e))?;
    let mut copied = 0u64;
    while let Some(chunk) = out.next().await {
        let chunk = chunk.map_err(|e| Error::db("COPY", e))?;
        copied += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let copy_ms = t.elapsed().as_secs_f64() * 1000.0;
    pool.close().await;

    // Warm, with RSS sampled and a PING loop beside it.
    let rss_before = rss_mb();
    let peak = RssPeak::start(Duration::from_millis(20));
    let ping = PingLoop::start(redis).await?;
    eprintln!("warming…");
    let t = Instant::now();
    let warmed = warm_once(redis, &ds, db_url, "bench").await;
    let warm_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss_peak_mb = peak.finish().await;
    let warmed = warmed?;
    let window = warmed.swap_window.unwrap_or((t, t));
    let ping_swap = ping.finish(window).await;
    let swap_ms = (window.1 - window.0).as_secs_f64() * 1000.0;
    let renames = warmed.meta.entries + warmed.meta.indexes + 2;

    // The same RENAMEs in one MULTI/EXEC, over existing keys.
    eprintln!("MULTI/EXEC of {renames} RENAMEs…");
    let ping_multi = multi_exec_renames(redis, BENCH_DS).await?;

    // Readers.
    eprintln!("queries…");
    let mut lat = Vec::new();
    let measures = ["Charges", "Payments", "Visits", "Refunds"];
    let freqs = ["Monthly", "Weekly", "Quarterly"];
    for i in 0..2000u64 {
        let req = QueryRequest {
            datasource: BENCH_DS,
            measure: measures[(i % 4) as usize].into(),
            frequency: freqs[(i % 3) as usize].into(),
            practices: vec![(101 + i % 50).to_string()],
            providers: vec![],
        };
        let r = query::query(redis, &req).await?;
        lat.push(r.duration_ms);
    }
    lat.sort_by(|a, b| a.total_cmp(b));

    let copy_rate = copied as f64 / (copy_ms / 1000.0);
    let warm_rate = warmed.meta.rows as f64 / (warm_ms / 1000.0);
    Ok(WarmBench {
        rows: warmed.meta.rows,
        entries: warmed.meta.entries,
        indexes: warmed.meta.indexes,
        groups_removed,
        groups_added,
        copy_ms,
        copy_rows_per_sec: copy_rate.round(),
        warm_ms,
        warm_rows_per_sec: warm_rate.round(),
        warm_to_copy_ratio: (warm_rate / copy_rate * 100.0).round() / 100.0,
        rss_before_mb: rss_before,
        rss_peak_mb,
        swap_ms,
        ping_worst_during_swap_ms: ping_swap,
        renames,
        ping_worst_during_multi_exec_ms: ping_multi,
        swap_to_multi_ratio: if ping_multi > 0.0 {
            (ping_swap / ping_multi * 100.0).round() / 100.0
        } else {
            0.0
        },
        queries: lat.len() as u64,
        query_p50_ms: percentile(&lat, 0.5),
        query_p99_ms: percentile(&lat, 0.99),
    })
}

/// Changes the demo table as a day of real data might: the practices whose
/// number ends in 00 leave, and as many new practices (with new providers)
/// arrive with the rows of those ending in 01. The table is vacuumed so the
/// COPY baseline and the warm read the same, compact table. Returns the
/// groups removed and added.
async fn change_groups(db_url: &str) -> Result<(u64, u64)> {
    eprintln!("changing 1 % of the practices…");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await
        .map_err(|e| Error::db("connecting to change the bench table", e))?;
    let groups = |filter: &str| {
        format!(
            "SELECT count(*) FROM (SELECT DISTINCT measure, practice_uid, provider_uid, frequency \
             FROM cachedeck_bench WHERE {filter}) g"
        )
    };
    let ctx = |e| Error::db("changing the bench table", e);
    let removed: i64 = sqlx::query_scalar(&groups("practice_uid % 100 = 0"))
        .fetch_one(&pool)
        .await
        .map_err(ctx)?;
    let added: i64 = sqlx::query_scalar(&groups("practice_uid % 100 = 1"))
        .fetch_one(&pool)
        .await
        .map_err(ctx)?;
    for sql in [
        "DELETE FROM cachedeck_bench WHERE practice_uid % 100 = 0",
        "INSERT INTO cachedeck_bench (measure, practice_uid, provider_uid, frequency, period_start, amount, visit_count, updated_at) \
         SELECT measure, practice_uid + 1000000, provider_uid + 1000000, frequency, period_start, amount, visit_count, updated_at \
         FROM cachedeck_bench WHERE practice_uid % 100 = 1",
        "VACUUM ANALYZE cachedeck_bench",
    ] {
        sqlx::raw_sql(sql).execute(&pool).await.map_err(ctx)?;
    }
    pool.close().await;
    Ok((removed as u64, added as u64))
}

/// The swap's own RENAMEs without the swap: copies every live key of the
/// datasource (entries, indexes, both sets) to its shadow name with `COPY`
/// (same value, same expiry), then renames every copy back over its live key
/// in one MULTI/EXEC while a PING loop runs. Returns the PING loop's worst
/// latency (ms). The live generation is the same afterwards.
async fn multi_exec_renames(redis: &Redis, ds: DsId) -> Result<f64> {
    let mut live = vec![
        keys::master_index(ds, Gen::Live),
        keys::index_list(ds, Gen::Live),
    ];
    let mut pairs = Vec::new();
    // Fencing number 0 is never a warm's (acquisitions count from 1).
    for (set, shadow_of) in [
        (
            keys::master_index(ds, Gen::Live),
            keys::shadow_of_entry as fn(DsId, keys::Fence, &str) -> Option<String>,
        ),
        (keys::index_list(ds, Gen::Live), keys::shadow_of_index),
    ] {
        let mut scan = SetScan::new(redis, set, "reading the live generation");
        while let Some(batch) = scan.next().await? {
            for k in batch {
                if let Some(shadow) = shadow_of(ds, 0, &k) {
                    pairs.push((shadow, k));
                }
            }
        }
    }
    pairs.sort();
    pairs.dedup();
    pairs.push((keys::master_index(ds, Gen::Shadow(0)), live.remove(0)));
    pairs.push((keys::index_list(ds, Gen::Shadow(0)), live.remove(0)));
    let mut node = redis.master_of(&keys::warm_lock(ds)).await?;
    for batch in pairs.chunks(1000) {
        let mut p = redis::pipe();
        for (shadow, live) in batch {
            p.cmd("COPY").arg(live).arg(shadow).arg("REPLACE").ignore();
        }
        let _: () = p
            .query_async(&mut node.conn)
            .await
            .map_err(|e| Error::redis("copying the live generation", e))?;
    }
    let ping = PingLoop::start(redis).await?;
    let mut p = redis::pipe();
    p.atomic();
    for (shadow, live) in &pairs {
        p.cmd("RENAME").arg(shadow).arg(live).ignore();
    }
    let start = Instant::now();
    let r: redis::RedisResult<()> = p.query_async(&mut node.conn).await;
    let window = (start, Instant::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    let worst = ping.finish(window).await;
    r.map_err(|e| Error::redis("MULTI/EXEC of RENAMEs", e))?;
    Ok(worst)
}
