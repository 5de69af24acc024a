//! Trends of one datasource over a time range: reader statistics per minute
//! or hour bucket, memory and entry samples, and the warms that happened.
//! They feed the window's plots and the efficiency reports.

use futures::StreamExt;
use serde::Serialize;

use super::collect;
use crate::actor::Actor;
use crate::cache::stats::{self, Counters};
use crate::cache::trend::{self, TrendSample};
use crate::error::{Error, Result};
use crate::keys::DsId;
use crate::redis_conn::Redis;
use crate::store::{JobRecord, Store};

/// One minute in ms (minute buckets).
pub const MINUTE_MS: i64 = 60_000;
/// One hour in ms (hour buckets).
pub const HOUR_MS: i64 = 3_600_000;
/// Longest range read in minute buckets: they are kept this long.
pub const MAX_MINUTE_RANGE_MS: i64 = stats::MINUTE_TTL_SECS * 1000;
/// Longest range read in hour buckets: they are kept this long.
pub const MAX_HOUR_RANGE_MS: i64 = stats::HOUR_TTL_SECS * 1000;

/// Reader statistics of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendPoint {
    /// Start of the bucket, ms since the epoch (plot x axis).
    pub time_ms: i64,
    /// Queries the cache answered.
    pub hits: u64,
    /// Queries it could not answer (cold, or an indexed entry gone).
    pub misses: u64,
    /// Percent 0–100; `None` in a bucket without queries (a gap, not 0 %).
    pub hit_rate: Option<f64>,
    /// hits + misses: the load on the cache.
    pub queries: u64,
    /// Average query time in ms; `None` without queries.
    pub avg_query_ms: Option<f64>,
}

impl TrendPoint {
    fn new(time_ms: i64, c: &Counters) -> Self {
        TrendPoint {
            time_ms,
            hits: c.hits,
            misses: c.misses,
            hit_rate: c.hit_rate(),
            queries: c.queries(),
            avg_query_ms: c.avg_query_ms(),
        }
    }
}

/// Totals over the whole range (the headline numbers of a report).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendTotals {
    /// Hits over the range.
    pub hits: u64,
    /// Misses over the range.
    pub misses: u64,
    /// hits + misses over the range.
    pub queries: u64,
    /// Percent 0–100 over the range; `None` without queries.
    pub hit_rate: Option<f64>,
    /// Average query time over the range in ms; `None` without queries.
    pub avg_query_ms: Option<f64>,
}

/// One memory / entry-count sample (written at every swap and by the sampler).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPoint {
    /// When it was taken, ms since the epoch (Redis TIME).
    pub time_ms: i64,
    /// Estimated memory of entries and indexes in MB (seed unit).
    #[serde(rename = "memoryMB")]
    pub memory_mb: f64,
    /// The same in bytes, for exact sums.
    pub memory_bytes: u64,
    /// Live entries at that time.
    pub entries: u64,
}

/// One warm of the datasource in the range (markers on the plots).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmEvent {
    /// The job, to look it up in `cachedeck status`.
    pub job_id: String,
    /// queued, running, succeeded, failed, cancelled, skipped.
    pub state: String,
    /// When it was queued, ms since the epoch.
    pub queued_at_ms: i64,
    /// When it started, if it did.
    pub started_at_ms: Option<i64>,
    /// When it ended, if it did.
    pub completed_at_ms: Option<i64>,
    /// How long it ran.
    pub duration_ms: Option<i64>,
    /// Source rows read.
    pub rows_processed: i64,
    /// Entries written.
    pub entries_cached: i64,
    /// True for succeeded (and skipped: the cache was fresh).
    pub success: bool,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Who started it.
    pub actor: String,
}

impl From<&JobRecord> for WarmEvent {
    fn from(j: &JobRecord) -> Self {
        WarmEvent {
            job_id: j.job_id.clone(),
            state: j.state.clone(),
            queued_at_ms: j.queued_at_ms,
            started_at_ms: j.started_at_ms,
            completed_at_ms: j.completed_at_ms,
            duration_ms: j.duration_ms,
            rows_processed: j.rows_processed,
            entries_cached: j.entries_cached,
            success: j.state == "succeeded" || j.state == "skipped",
            error: j.error.clone(),
            actor: j.actor.clone(),
        }
    }
}

/// Everything plotted for one datasource over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trends {
    /// The datasource.
    pub datasource_id: DsId,
    /// Its name, for plot titles.
    pub datasource_name: String,
    /// Start of the range, ms since the epoch (inclusive).
    pub from_ms: i64,
    /// End of the range, ms since the epoch (inclusive).
    pub to_ms: i64,
    /// Hour buckets (true) or minute buckets.
    pub hourly: bool,
    /// Width of one bucket in ms.
    pub bucket_ms: i64,
    /// One point per bucket, oldest first, gaps included (queries 0).
    pub points: Vec<TrendPoint>,
    /// Totals over the range.
    pub totals: TrendTotals,
    /// Memory and entry samples in the range, oldest first.
    pub memory: Vec<MemoryPoint>,
    /// Warms queued in the range, oldest first.
    pub warms: Vec<WarmEvent>,
}

/// The bucket size a plot of `[from_ms, to_ms]` should use: minutes up to
/// two days (as long as minute buckets are kept), hours beyond.
pub fn hourly_for(from_ms: i64, to_ms: i64) -> bool {
    to_ms - from_ms > MAX_MINUTE_RANGE_MS
}

/// Trends of `ds` over `[from_ms, to_ms]` in minute or hour buckets. Minute
/// ranges are limited to 2 days and hour ranges to 90 days (how long the
/// buckets are kept).
pub async fn trends(
    redis: &Redis,
    store: &Store,
    ds: DsId,
    from_ms: i64,
    to_ms: i64,
    hourly: bool,
) -> Result<Trends> {
    if to_ms < from_ms {
        return Err(Error::Invalid(format!(
            "the trend range ends ({to_ms}) before it starts ({from_ms})"
        )));
    }
    let (bucket_ms, max_range, what) = if hourly {
        (HOUR_MS, MAX_HOUR_RANGE_MS, "hour buckets are kept 90 days")
    } else {
        (
            MINUTE_MS,
            MAX_MINUTE_RANGE_MS,
            "minute buckets are kept 2 days; use hour buckets for longer ranges",
        )
    };
    if to_ms - from_ms > max_range {
        return Err(Error::Invalid(format!(
            "the trend range is {} days long but {what}",
            (to_ms - from_ms) / 86_400_000
        )));
    }
    let datasource = store.datasource(ds).await?;
    let first = from_ms.div_euclid(bucket_ms);
    let last = to_ms.div_euclid(bucket_ms);
    let buckets = stats::buckets(redis, ds, hourly, first, last).await?;
    let mut total = Counters::default();
    let points = buckets
        .iter()
        .map(|(b, c)| {
            total.add(c);
            TrendPoint::new(b * bucket_ms, c)
        })
        .collect();
    let memory = trend::read(redis, ds, from_ms, to_ms)
        .await?
        .into_iter()
        .map(|s| MemoryPoint {
            time_ms: s.t,
            memory_mb: (s.memory_bytes as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0,
            memory_bytes: s.memory_bytes,
            entries: s.entries,
        })
        .collect();
    // The history's range is half-open; the trend range is inclusive.
    let warms = store
        .jobs_between(from_ms, to_ms.saturating_add(1))
        .await?
        .iter()
        .filter(|j| j.datasource_id == ds)
        .map(WarmEvent::from)
        .collect();
    Ok(Trends {
        datasource_id: ds,
        datasource_name: datasource.name,
        from_ms,
        to_ms,
        hourly,
        bucket_ms,
        points,
        totals: TrendTotals {
            hits: total.hits,
            misses: total.misses,
            queries: total.queries(),
            hit_rate: total.hit_rate(),
            avg_query_ms: total.avg_query_ms(),
        },
        memory,
        warms,
    })
}

/// Writes one memory/entries sample per warm datasource, from its meta and
/// SCARD (memory scaled when entries were removed since the warm). The
/// window or the agent calls it periodically; a read-only actor writes
/// nothing. Returns the number of samples written.
pub async fn trend_sampler(redis: &Redis, store: &Store, actor: &Actor) -> Result<usize> {
    if !actor.can_write {
        return Ok(0);
    }
    let (datasources, now) = collect::registry_and_time(redis, store).await?;
    // Caches written elsewhere are not sampled: nothing is written for them.
    let snaps = collect::snapshots(redis, datasources, None, None, now).await?;
    let samples: Vec<(DsId, TrendSample)> = snaps
        .iter()
        .filter(|s| s.is_warm())
        .filter_map(|s| {
            let m = s.meta.as_ref()?;
            let memory_bytes = if m.entries > 0 && m.entries != s.live_entries {
                (m.memory_bytes as f64 * s.live_entries as f64 / m.entries as f64).round() as u64
            } else {
                m.memory_bytes
            };
            Some((
                s.ds.id,
                TrendSample {
                    t: now,
                    memory_bytes,
                    entries: s.live_entries,
                },
            ))
        })
        .collect();
    let written = samples.len();
    let results: Vec<Result<()>> = futures::stream::iter(samples)
        .map(|(ds, sample)| trend::record(redis, ds, sample))
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(written)
}
