//! Caches cachedeck did not write (issue 15 §1): when a datasource has live
//! entries (a non-empty master set `idx:{ds:N}:master`) but no meta hash of a
//! cachedeck swap, its figures are observed from Redis instead of read from
//! the meta hash, and each says how it was obtained ([`Source`]).
//!
//! - warm: the master set exists and is not empty;
//! - last warmed: `cache:meta:{ds:N}:last_warm` in any form an application
//!   writes ([`parse_last_warm`]); without it (or unreadable), estimated from
//!   the sampled entries' largest remaining PTTL and the datasource's TTL;
//! - entries: SCARD of the master set;
//! - index count and coverage: from the entry names, read with SSCAN in
//!   paced batches ([`coverage`]); exact up to a bound, estimated beyond;
//! - memory: MEMORY USAGE of 200 sampled entries and 50 implied index sets,
//!   scaled by the entry and index counts, plus the master set.
//!
//! Nothing is written to Redis. Observations are kept per datasource in an
//! [`Observations`] cache and renewed at most every [`MAX_AGE_MS`] (sooner
//! when the entry count or the last_warm value changed): the window's
//! backend holds one that refreshes in background tasks; a one-shot CLI
//! process observes inline with a smaller bound.

pub mod coverage;
mod last_warm;
pub mod sample;
pub mod usage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use super::types::Source;
pub use coverage::Coverage;
pub use last_warm::parse_last_warm;
pub use sample::EntrySample;
pub use usage::ReadUsage;

use crate::error::Result;
use crate::keys::DsId;
use crate::redis_conn::Redis;
use crate::store::Datasource;

/// An observation is renewed after this long (ms).
pub const MAX_AGE_MS: i64 = 60_000;
/// Master members read exactly by the window's background walk.
pub const BACKGROUND_BOUND: u64 = 2_000_000;
/// Master members read exactly by a one-shot CLI process (about a second
/// of SSCAN on a local server); beyond, the figures are estimated.
pub const INLINE_BOUND: u64 = 200_000;
/// Pause between SSCAN calls, so a walk never crowds out the application.
pub const PACE: Duration = Duration::from_millis(1);

/// Everything observed about one datasource's cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// Server time of the observation (ms).
    pub observed_at_ms: i64,
    /// SCARD of the master set the figures belong to; a different count
    /// renews the observation.
    pub entries: u64,
    /// The raw `last_warm` value read, to notice a new warm.
    pub last_warm_raw: Option<String>,
    /// When the cache was warmed (ms), from last_warm or estimated.
    pub warmed_at_ms: Option<i64>,
    /// `observed` from last_warm, `estimated` from TTLs.
    pub last_warm_source: Source,
    /// Memory and TTL sample.
    pub sample: EntrySample,
    /// Index count and coverage from the names.
    pub coverage: Coverage,
    /// Shadow keys the application's warmer left (its form, without
    /// cachedeck's fencing number), by SCAN; only a cachedeck warm removes
    /// them.
    pub app_shadow_keys: u64,
}

impl Observed {
    /// Estimated bytes of entries, implied index sets and the master set.
    pub fn memory_bytes(&self) -> u64 {
        let entries = self.entries as f64 * self.sample.entry_bytes;
        let indexes = self.coverage.index_count as f64 * self.sample.index_bytes;
        (entries + indexes).round() as u64 + self.sample.master_bytes
    }

    /// Re-derives the cheap figures (entry count, last warm) for a newer
    /// read without repeating the sample or the walk.
    fn rebased(&self, entries: u64, raw: Option<String>, ttl_secs: i64, now_ms: i64) -> Observed {
        let (warmed_at_ms, last_warm_source) =
            warm_time(raw.as_deref(), &self.sample, ttl_secs, now_ms);
        Observed {
            entries,
            last_warm_raw: raw,
            warmed_at_ms,
            last_warm_source,
            ..self.clone()
        }
    }
}

/// The warm time: from last_warm when it parses, else `now − (TTL − the
/// largest remaining PTTL)`, at most now.
pub fn warm_time(
    raw: Option<&str>,
    sample: &EntrySample,
    ttl_secs: i64,
    now_ms: i64,
) -> (Option<i64>, Source) {
    if let Some(ms) = raw.and_then(parse_last_warm) {
        return (Some(ms), Source::Observed);
    }
    let est = sample
        .max_pttl_ms
        .filter(|_| ttl_secs > 0)
        .map(|pttl| now_ms - (ttl_secs * 1000 - pttl).max(0));
    (est, Source::Estimated)
}

/// Samples and walks one datasource (`bound` members exactly).
pub async fn observe(
    redis: &Redis,
    ds: &Datasource,
    entries: u64,
    raw: Option<String>,
    now_ms: i64,
    bound: u64,
) -> Result<Observed> {
    let sample = sample::sample(redis, ds.id).await?;
    let coverage = coverage::walk(redis, ds.id, entries, bound, PACE).await?;
    // A count that cannot be had (a busy server, a SCAN not permitted) is
    // a missing figure, not a failed observation.
    let app_shadow_keys = match crate::cache::adopt::count_app_shadow(redis, ds.id).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(
                "datasource {}: could not count leftover shadow keys: {e}",
                ds.id
            );
            0
        }
    };
    let (warmed_at_ms, last_warm_source) = warm_time(raw.as_deref(), &sample, ds.ttl_secs, now_ms);
    Ok(Observed {
        observed_at_ms: now_ms,
        entries,
        last_warm_raw: raw,
        warmed_at_ms,
        last_warm_source,
        sample,
        coverage,
        app_shadow_keys,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Observe in the caller's task, bounded by [`INLINE_BOUND`].
    Inline,
    /// Sample in the caller's task the first time, walk in background tasks.
    Background,
}

/// One datasource's slot in the cache.
#[derive(Default)]
struct Slot {
    /// The latest observation.
    value: Option<Arc<Observed>>,
    /// A background task is renewing it.
    refreshing: bool,
}

/// Observations per (Redis, datasource), shared by clones.
#[derive(Clone)]
pub struct Observations {
    /// Keyed by the Redis handle's label and the datasource id, so a switch
    /// of profile never shows another deployment's figures.
    slots: Arc<Mutex<HashMap<(String, DsId), Slot>>>,
    /// Sampled reads per (Redis, datasource), of every cache (cachedeck's
    /// own too), renewed like the observations.
    usage: Arc<Mutex<HashMap<(String, DsId), UsageSlot>>>,
    /// Inline (one-shot process) or background (the window).
    mode: Mode,
}

/// One datasource's sampled reads.
#[derive(Default)]
struct UsageSlot {
    /// The latest sample.
    value: Option<Arc<ReadUsage>>,
    /// A background task is renewing it.
    refreshing: bool,
    /// When the last sample failed (ms), so a failing sample (an ACL
    /// without OBJECT, say) is retried after [`MAX_AGE_MS`], not every
    /// refresh.
    failed_at_ms: Option<i64>,
}

impl Observations {
    /// For a one-shot process: everything inline, bounded.
    pub fn inline() -> Observations {
        Observations {
            slots: Arc::default(),
            usage: Arc::default(),
            mode: Mode::Inline,
        }
    }

    /// For the window's backend: walks run in background tasks (needs a
    /// tokio runtime).
    pub fn background() -> Observations {
        Observations {
            slots: Arc::default(),
            usage: Arc::default(),
            mode: Mode::Background,
        }
    }

    /// Drops every observation (a refresh on demand: the next read observes
    /// again).
    pub fn forget_all(&self) {
        if let Ok(mut s) = self.slots.lock() {
            s.clear();
        }
        if let Ok(mut s) = self.usage.lock() {
            s.clear();
        }
    }

    /// The sampled reads of `ds` (whose master set holds `entries`
    /// members): cached for [`MAX_AGE_MS`]; renewed inline by a one-shot
    /// process, in a background task by the window (which gets `None` until
    /// the first sample is in). A failed sample is logged and reads as
    /// `None`: it never fails stats.
    pub async fn usage(
        &self,
        redis: &Redis,
        ds: &Datasource,
        entries: u64,
        now_ms: i64,
    ) -> Option<Arc<ReadUsage>> {
        let key = (redis.label().to_string(), ds.id);
        let (previous, failed_at) = {
            let slots = self.usage.lock().ok()?;
            let slot = slots.get(&key);
            (
                slot.and_then(|s| s.value.clone()),
                slot.and_then(|s| s.failed_at_ms),
            )
        };
        if failed_at.is_some_and(|t| now_ms - t < MAX_AGE_MS) {
            return previous;
        }
        if let Some(p) = &previous
            && now_ms - p.sampled_at_ms < MAX_AGE_MS
        {
            return previous;
        }
        match self.mode {
            Mode::Inline => {
                match usage::sample_usage(redis, ds.id, ds.ttl_secs, entries, now_ms).await {
                    Ok(u) => {
                        let u = u.map(Arc::new);
                        let mut slots = self.usage.lock().ok()?;
                        let slot = slots.entry(key).or_default();
                        slot.value = u.clone();
                        slot.failed_at_ms = None;
                        u
                    }
                    Err(e) => {
                        tracing::warn!("sampling the reads of datasource {}: {e}", ds.id);
                        if let Ok(mut slots) = self.usage.lock() {
                            slots.entry(key).or_default().failed_at_ms = Some(now_ms);
                        }
                        None
                    }
                }
            }
            Mode::Background => {
                let start = {
                    let mut slots = self.usage.lock().ok()?;
                    let slot = slots.entry(key.clone()).or_default();
                    !std::mem::replace(&mut slot.refreshing, true)
                };
                if start {
                    let (this, redis, ds) = (self.clone(), redis.clone(), ds.clone());
                    tokio::spawn(async move {
                        let r =
                            usage::sample_usage(&redis, ds.id, ds.ttl_secs, entries, now_ms).await;
                        let Ok(mut slots) = this.usage.lock() else {
                            return;
                        };
                        let slot = slots.entry(key).or_default();
                        slot.refreshing = false;
                        match r {
                            Ok(u) => {
                                slot.value = u.map(Arc::new);
                                slot.failed_at_ms = None;
                            }
                            Err(e) => {
                                slot.failed_at_ms = Some(now_ms);
                                tracing::warn!("sampling the reads of datasource {}: {e}", ds.id)
                            }
                        }
                    });
                }
                previous
            }
        }
    }

    /// The observation of `ds` whose master set holds `entries` members and
    /// whose last_warm reads `raw`: cached when fresh, else renewed (inline,
    /// or in the background while the previous one is returned).
    pub async fn get(
        &self,
        redis: &Redis,
        ds: &Datasource,
        entries: u64,
        raw: Option<String>,
        now_ms: i64,
    ) -> Result<Arc<Observed>> {
        let key = (redis.label().to_string(), ds.id);
        let previous = {
            let slots = self.slots.lock().map_err(poisoned)?;
            slots.get(&key).and_then(|s| s.value.clone())
        };
        if let Some(p) = &previous
            && now_ms - p.observed_at_ms < MAX_AGE_MS
            && p.entries == entries
            && p.last_warm_raw == raw
        {
            return Ok(p.clone());
        }
        match self.mode {
            Mode::Inline => {
                let o = Arc::new(observe(redis, ds, entries, raw, now_ms, INLINE_BOUND).await?);
                self.store(&key, o.clone(), false)?;
                Ok(o)
            }
            Mode::Background => {
                let first = match previous {
                    Some(p) => Arc::new(p.rebased(entries, raw.clone(), ds.ttl_secs, now_ms)),
                    None => {
                        // First sight: the quick sample now, the walk later.
                        let sample = sample::sample(redis, ds.id).await?;
                        let coverage = coverage::of_sample(ds.id, &sample.names, entries);
                        let (warmed_at_ms, last_warm_source) =
                            warm_time(raw.as_deref(), &sample, ds.ttl_secs, now_ms);
                        Arc::new(Observed {
                            observed_at_ms: now_ms - MAX_AGE_MS,
                            entries,
                            last_warm_raw: raw.clone(),
                            warmed_at_ms,
                            last_warm_source,
                            sample,
                            coverage,
                            // Counted by the background walk.
                            app_shadow_keys: 0,
                        })
                    }
                };
                let start = {
                    let mut slots = self.slots.lock().map_err(poisoned)?;
                    let slot = slots.entry(key.clone()).or_default();
                    slot.value = Some(first.clone());
                    !std::mem::replace(&mut slot.refreshing, true)
                };
                if start {
                    self.spawn_refresh(redis.clone(), ds.clone(), entries, raw, now_ms, key);
                }
                Ok(first)
            }
        }
    }

    fn store(&self, key: &(String, DsId), o: Arc<Observed>, refreshing: bool) -> Result<()> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        let slot = slots.entry(key.clone()).or_default();
        slot.value = Some(o);
        slot.refreshing = refreshing;
        Ok(())
    }

    fn spawn_refresh(
        &self,
        redis: Redis,
        ds: Datasource,
        entries: u64,
        raw: Option<String>,
        now_ms: i64,
        key: (String, DsId),
    ) {
        let this = self.clone();
        tokio::spawn(async move {
            let r = observe(&redis, &ds, entries, raw, now_ms, BACKGROUND_BOUND).await;
            let mut slots = match this.slots.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            let slot = slots.entry(key).or_default();
            slot.refreshing = false;
            match r {
                Ok(o) => slot.value = Some(Arc::new(o)),
                Err(e) => tracing::warn!("observing the cache of datasource {}: {e}", ds.id),
            }
        });
    }
}

fn poisoned<T>(_: T) -> crate::error::Error {
    crate::error::Error::Invalid("the observation cache was poisoned by a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_time_prefers_last_warm_then_estimates_from_ttl() {
        let s = EntrySample {
            max_pttl_ms: Some(3_600_000),
            ..Default::default()
        };
        let now = 10_000_000_000;
        assert_eq!(
            warm_time(Some("1000"), &s, 4 * 3600, now),
            (Some(1_000_000), Source::Observed)
        );
        // 4 h TTL, 1 h left: warmed 3 h ago.
        assert_eq!(
            warm_time(None, &s, 4 * 3600, now),
            (Some(now - 3 * 3_600_000), Source::Estimated)
        );
        assert_eq!(
            warm_time(Some("garbage"), &s, 4 * 3600, now).1,
            Source::Estimated
        );
        // More left than the registered TTL: at most now.
        assert_eq!(warm_time(None, &s, 60, now), (Some(now), Source::Estimated));
        let no_ttl = EntrySample::default();
        assert_eq!(warm_time(None, &no_ttl, 60, now), (None, Source::Estimated));
    }
}
