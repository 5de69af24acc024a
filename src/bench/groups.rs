//! The size benchmark behind BENCHMARKS.md: a datasource of many distinct
//! groups (1,200,000 by default, one or two rows each; as in the demo data,
//! each provider belongs to one practice, so there are about as many
//! provider indexes as groups). It warms the datasource cold, then refreshes
//! it (unforced, same data), timing each end to end, with a PING loop on a
//! connection of its own whose worst latency over each whole warm is kept.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::probe::{PingLoop, RssPeak};
use super::warm::warm_once;
use crate::cache::shadow;
use crate::error::{Error, Result};
use crate::keys::{self, Gen};
use crate::redis_conn::Redis;
use crate::source::demo;
use crate::store::{DatasourceInput, Store};

/// Datasource id the benchmark registers (kept apart from real ones).
pub const GROUPS_DS: i64 = 990_002;
/// The benchmark's table.
const TABLE: &str = "cachedeck_bench_groups";

/// One timed warm.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimedWarm {
    /// End to end, as `cachedeck warm` would take.
    pub ms: f64,
    /// The swap (checks, comparison, index sets, estimate, MULTI/EXEC).
    pub swap_ms: f64,
    /// Worst PING latency another client saw during the whole warm.
    pub ping_worst_ms: f64,
    /// Peak RSS of this process during the warm.
    pub rss_peak_mb: f64,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupsBench {
    pub groups: u64,
    pub rows: u64,
    pub entries: u64,
    pub indexes: u64,
    pub table_ms: f64,
    pub cold: TimedWarm,
    pub refresh: TimedWarm,
}

/// Creates `TABLE` with `groups` distinct groups: 4 measures × 3
/// frequencies × practices of 100 providers each, provider ids unique;
/// every other group has two rows.
async fn create_table(db_url: &str, groups: u64) -> Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db_url)
        .await
        .map_err(|e| Error::db("connecting to create the bench table", e))?;
    let ctx = |e| Error::db("creating the bench table", e);
    for sql in [
        format!("DROP TABLE IF EXISTS {TABLE}"),
        format!(
            "CREATE TABLE {TABLE} AS \
             SELECT (ARRAY['Charges','Payments','Visits','Refunds'])[g % 4 + 1] AS measure, \
                    ((g / 12) / 100 + 1)::int AS practice_uid, \
                    (g / 12)::int AS provider_uid, \
                    (ARRAY['Monthly','Weekly','Quarterly'])[(g % 12) / 4 + 1] AS frequency, \
                    (DATE '2024-01-01' + r * 7) AS period_start, \
                    ((g % 997) * 1.25 + r)::numeric(14,2) AS amount, \
                    (g % 50 + r)::int AS visit_count, \
                    now() AS updated_at \
             FROM generate_series(0::bigint, {last}) g, LATERAL generate_series(0, (g % 2)::int) r",
            last = groups.saturating_sub(1)
        ),
        format!("VACUUM ANALYZE {TABLE}"),
    ] {
        sqlx::raw_sql(&sql).execute(&pool).await.map_err(ctx)?;
    }
    pool.close().await;
    Ok(())
}

/// Deletes a live generation of the datasource left by an earlier run, so
/// the first warm is cold.
async fn clear(redis: &Redis) -> Result<()> {
    let ds = GROUPS_DS;
    shadow::remove(redis, ds).await?;
    for set in [
        keys::master_index(ds, Gen::Live),
        keys::index_list(ds, Gen::Live),
    ] {
        shadow::unlink_members(redis, &set, |k| Some(k.to_string())).await?;
    }
    let _: u64 = redis
        .query(
            "clearing the bench datasource",
            redis::cmd("UNLINK")
                .arg(keys::meta(ds))
                .arg(keys::last_warm(ds)),
        )
        .await?;
    Ok(())
}

/// Warms once with a PING loop and RSS sampling beside it.
async fn timed(
    redis: &Redis,
    ds: &crate::store::Datasource,
    db_url: &str,
    job_id: &str,
) -> Result<(TimedWarm, crate::cache::warm::WarmResult)> {
    let peak = RssPeak::start(Duration::from_millis(50));
    let ping = PingLoop::start(redis).await?;
    let t = Instant::now();
    let warmed = warm_once(redis, ds, db_url, job_id).await;
    let window = (t, Instant::now());
    let rss_peak_mb = peak.finish().await;
    let ping_worst_ms = ping.finish(window).await;
    let warmed = warmed?;
    let swap = warmed.swap_window.unwrap_or(window);
    Ok((
        TimedWarm {
            ms: (window.1 - window.0).as_secs_f64() * 1000.0,
            swap_ms: (swap.1 - swap.0).as_secs_f64() * 1000.0,
            ping_worst_ms,
            rss_peak_mb,
        },
        warmed,
    ))
}

/// Runs the benchmark on `groups` groups in the Postgres database `db_url`
/// (a table `cachedeck_bench_groups` is created there) and the Redis `redis`.
pub async fn run(redis: &Redis, store: &Store, db_url: &str, groups: u64) -> Result<GroupsBench> {
    if !db_url.starts_with("postgres") {
        return Err(Error::Invalid(
            "the groups benchmark needs a Postgres database".into(),
        ));
    }
    eprintln!("creating a table of {groups} groups…");
    let t = Instant::now();
    create_table(db_url, groups).await?;
    let table_ms = t.elapsed().as_secs_f64() * 1000.0;
    let input = DatasourceInput {
        id: GROUPS_DS,
        name: "Benchmark (groups)".into(),
        source_url: Some(db_url.to_string()),
        source_password: None,
        sql: demo::datasource_sql(TABLE, None),
        stale_after_secs: 4 * 3600,
        ttl_secs: 3600,
        enabled: false,
        statement_timeout_secs: crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    };
    match store.datasource(GROUPS_DS).await {
        Ok(_) => store.update_datasource(&input).await?,
        Err(Error::NoSuchDatasource(_)) => store.add_datasource(&input).await?,
        Err(e) => return Err(e),
    };
    let ds = store.datasource(GROUPS_DS).await?;
    clear(redis).await?;
    eprintln!("cold warm…");
    let (cold, warmed) = timed(redis, &ds, db_url, "bench-groups-cold").await?;
    eprintln!("refresh…");
    let (refresh, _) = timed(redis, &ds, db_url, "bench-groups-refresh").await?;
    Ok(GroupsBench {
        groups,
        rows: warmed.meta.rows,
        entries: warmed.meta.entries,
        indexes: warmed.meta.indexes,
        table_ms,
        cold,
        refresh,
    })
}
