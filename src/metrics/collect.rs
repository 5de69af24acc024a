//! Reading what stats and health need about every datasource: one pipeline
//! (one round trip) per datasource, all in its `{ds:N}` slot so it also works
//! on a Redis Cluster, with many datasources in flight at once. Nothing here
//! counts keys: sizes come from the meta hash the swap wrote, cross-checked
//! with one SCARD.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use super::observe::{Observations, Observed, ReadUsage};
use crate::cache::meta::Meta;
use crate::cache::stats::Counters;
use crate::error::Result;
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;
use crate::store::{Datasource, Store};

/// Datasource pipelines in flight at once: enough to hide the round-trip
/// time behind each other, few enough not to flood a small server.
const IN_FLIGHT: usize = 64;

/// Everything one pipeline read about a datasource.
#[derive(Debug, Clone)]
pub(crate) struct DsSnapshot {
    /// The registry row (name, stale-after, TTL, enabled).
    pub ds: Datasource,
    /// The meta hash written at the last swap; `None` when never warmed (or
    /// fully invalidated since).
    pub meta: Option<Meta>,
    /// SCARD of the live master index: the entries that really exist now.
    pub live_entries: u64,
    /// Reader counters since the last swap.
    pub counters: Counters,
    /// Job id holding the warm lock, if any.
    pub lock_holder: Option<String>,
    /// Whether a shadow generation that has not expired is registered.
    pub shadow_exists: bool,
    /// The seed application's own warm lock, when held (its warmer runs).
    pub app_lock: Option<crate::cache::lock::AppLock>,
    /// Entries a selective invalidation deleted while keeping them listed:
    /// queries touching them miss until the next warm.
    pub invalidated: u64,
    /// The invalidation epoch when read, to detect changes during sampling.
    pub epoch: i64,
    /// Sampled live entry keys and index names (health only; never for a
    /// cache written elsewhere, whose indexes cachedeck does not list).
    pub sample: Option<Sample>,
    /// What was observed of a cache another tool wrote (live entries but no
    /// meta hash of a cachedeck swap); `None` for cachedeck's own caches.
    pub observed: Option<Arc<Observed>>,
    /// Sampled reads of the live entries (OBJECT IDLETIME/FREQ), when
    /// observed; `None` when not sampled (yet) or the cache is empty.
    pub usage: Option<Arc<ReadUsage>>,
}

/// Random members read for the integrity check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// Up to N random members of the live master index.
    pub entries: Vec<String>,
    /// Up to M random members of the live index list.
    pub indexes: Vec<String>,
    /// Sampled members of the master index / index list that are not UTF-8
    /// (written by something else; never names of this datasource), as
    /// raw bytes.
    pub foreign_entries: Vec<Vec<u8>>,
    pub foreign_indexes: Vec<Vec<u8>>,
}

/// Splits raw set members into UTF-8 names and the rest.
fn names(raw: Vec<Vec<u8>>) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut ok = Vec::with_capacity(raw.len());
    let mut foreign = Vec::new();
    for m in raw {
        match String::from_utf8(m) {
            Ok(n) => ok.push(n),
            Err(e) => foreign.push(e.into_bytes()),
        }
    }
    (ok, foreign)
}

impl DsSnapshot {
    /// The generation of the live cache (0 when never warmed).
    pub fn generation(&self) -> u64 {
        self.meta.as_ref().map(|m| m.generation).unwrap_or(0)
    }

    /// A live generation exists: meta present and a non-empty master index,
    /// or a non-empty master index written by another tool.
    pub fn is_warm(&self) -> bool {
        self.live_entries > 0 && (self.meta.is_some() || self.observed.is_some())
    }

    /// Minutes since the last swap (or the observed warm) at server time `now_ms`.
    pub fn age_minutes(&self, now_ms: i64) -> Option<f64> {
        if let Some(o) = &self.observed {
            return o
                .warmed_at_ms
                .map(|w| (now_ms - w).max(0) as f64 / 60_000.0);
        }
        self.meta
            .as_ref()
            .filter(|m| m.warmed_at_ms > 0)
            .map(|m| (now_ms - m.warmed_at_ms).max(0) as f64 / 60_000.0)
    }

    /// The datasource's stale-after in minutes.
    pub fn stale_after_minutes(&self) -> f64 {
        self.ds.stale_after_secs as f64 / 60.0
    }
}

fn counters(h: &HashMap<String, String>) -> Counters {
    let n = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Counters {
        hits: n("hits"),
        misses: n("misses"),
        query_us: n("queryUs"),
    }
}

/// The per-datasource pipeline; `sample` adds SRANDMEMBER of the master index
/// and of the index list.
fn pipeline(id: DsId, sample: Option<(usize, usize)>) -> redis::Pipeline {
    let mut p = redis::pipe();
    p.cmd("HGETALL").arg(keys::meta(id));
    p.cmd("SCARD").arg(keys::master_index(id, Gen::Live));
    p.cmd("HGETALL").arg(keys::stats_since_warm(id));
    p.cmd("GET").arg(keys::warm_lock(id));
    // Registered shadow generations not yet expired, by this machine's clock
    // (a skew only shifts when an expired leftover stops being reported).
    p.add_command(crate::cache::shadow::count_cmd(
        id,
        chrono::Utc::now().timestamp_millis(),
    ));
    p.cmd("GET").arg(keys::epoch(id));
    p.cmd("SCARD").arg(keys::invalidated(id));
    p.cmd("GET").arg(keys::last_warm(id));
    if let Some((entries, indexes)) = sample {
        p.cmd("SRANDMEMBER")
            .arg(keys::master_index(id, Gen::Live))
            .arg(entries);
        p.cmd("SRANDMEMBER")
            .arg(keys::index_list(id, Gen::Live))
            .arg(indexes);
    }
    p
}

type Base = (
    HashMap<String, String>,
    u64,
    HashMap<String, String>,
    Option<String>,
    u64,
    Option<i64>,
    u64,
    Option<String>,
);

type Sampled = (
    HashMap<String, String>,
    u64,
    HashMap<String, String>,
    Option<String>,
    u64,
    Option<i64>,
    u64,
    Option<String>,
    Vec<Vec<u8>>,
    Vec<Vec<u8>>,
);

/// Reads one datasource in one round trip; a cache written by another tool
/// also gets its observation (cached in `obs`).
pub(crate) async fn snapshot(
    redis: &Redis,
    ds: Datasource,
    sample: Option<(usize, usize)>,
    obs: Option<&Observations>,
    now_ms: i64,
) -> Result<DsSnapshot> {
    let p = pipeline(ds.id, sample);
    let context = format!("reading the cache state of datasource {}", ds.id);
    let (meta, scard, stats, lock, shadow, epoch, invalidated, last_warm, sample) = match sample {
        None => {
            let (m, c, s, l, sh, e, inv, lw): Base = redis.pipe(&context, &p).await?;
            (m, c, s, l, sh, e, inv, lw, None)
        }
        Some(_) => {
            let (m, c, s, l, sh, e, inv, lw, entries, indexes): Sampled =
                redis.pipe(&context, &p).await?;
            let (entries, foreign_entries) = names(entries);
            let (indexes, foreign_indexes) = names(indexes);
            let sample = Sample {
                entries,
                indexes,
                foreign_entries,
                foreign_indexes,
            };
            (m, c, s, l, sh, e, inv, lw, Some(sample))
        }
    };
    // No meta hash of a cachedeck swap (none, or one without a generation)
    // but live entries: another tool wrote this cache.
    let meta = Meta::from_hash(&meta).filter(|m| m.generation > 0);
    let (observed, sample) = match obs {
        Some(obs) if meta.is_none() && scard > 0 => {
            let o = obs.get(redis, &ds, scard, last_warm, now_ms).await?;
            (Some(o), None)
        }
        _ => (None, sample),
    };
    let usage = match obs {
        Some(obs) if scard > 0 => obs.usage(redis, &ds, scard, now_ms).await,
        _ => None,
    };
    // A command of its own: the application's lock has no hash tag.
    let app_lock = crate::cache::lock::app_lock(redis, ds.id).await?;
    Ok(DsSnapshot {
        ds,
        app_lock,
        meta,
        live_entries: scard,
        counters: counters(&stats),
        lock_holder: lock,
        shadow_exists: shadow > 0,
        invalidated,
        epoch: epoch.unwrap_or(0),
        sample,
        observed,
        usage,
    })
}

/// Reads every registered datasource, in registry order; `sample` adds
/// SRANDMEMBER of that many master members and index names (health); `obs`
/// observes caches written by another tool (`None`: they read as cold).
pub(crate) async fn snapshots(
    redis: &Redis,
    datasources: Vec<Datasource>,
    sample: Option<(usize, usize)>,
    obs: Option<&Observations>,
    now_ms: i64,
) -> Result<Vec<DsSnapshot>> {
    let results: Vec<Result<DsSnapshot>> = futures::stream::iter(datasources)
        .map(|ds| snapshot(redis, ds, sample, obs, now_ms))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The registry plus the Redis server time everything is aged against.
pub(crate) async fn registry_and_time(
    redis: &Redis,
    store: &Store,
) -> Result<(Vec<Datasource>, i64)> {
    let datasources = store.datasources().await?;
    let now = redis.time_ms().await?;
    Ok((datasources, now))
}
