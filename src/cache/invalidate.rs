//! Invalidation: a whole datasource, or the entries matching a selection of
//! measure / practices / providers / frequency.
//!
//! An invalidation holds the warm lock `lock:shadow:warm:{ds:N}` (holder
//! `invalidate:<uuid>`) from start to end, so it never overlaps a warm of
//! the same datasource: whichever comes second is refused as busy.
//!
//! A full invalidation moves the master index and index list aside in one
//! script (every query misses from then on) and deletes their members in
//! batches. A selective one deletes the matching entries but keeps them
//! listed in the master and secondary index sets, and records them in
//! `cache:meta:{ds:N}:invalidated`: any query touching them misses (a reader
//! of the raw index → MGET path sees a missing member, never a shorter list)
//! until the next swap puts them back and deletes that set. Both bump the
//! epoch. Sets are read with SSCAN, keys deleted with UNLINK, never KEYS;
//! members that are not names of this datasource are skipped.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::set_scan::SetScan;
use super::{lock, scripts};
use crate::actor::Actor;
use crate::error::{Error, INVALIDATION_HOLDER_PREFIX, Result};
use crate::keys::{self, DsId, Fence, Gen, ParsedKey, SecondaryIndex};
use crate::redis_conn::Redis;

/// Environment variable of a test hook: milliseconds an invalidation waits
/// after taking the lock and bumping the epoch (the moment a warm starting
/// meanwhile must be refused). Unset in normal use.
pub const TEST_PAUSE_ENV: &str = "CACHEDECK_TEST_INVALIDATION_PAUSE_MS";

/// Which entries to invalidate; all `None`/empty means the whole datasource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub measure: Option<String>,
    pub practices: Vec<String>,
    /// `None` in the list selects the NULL provider.
    pub providers: Vec<Option<String>>,
    pub frequency: Option<String>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.measure.is_none()
            && self.practices.is_empty()
            && self.providers.is_empty()
            && self.frequency.is_none()
    }

    fn matches(&self, g: &keys::GroupKey) -> bool {
        self.measure.as_ref().is_none_or(|m| *m == g.measure)
            && self.frequency.as_ref().is_none_or(|f| *f == g.frequency)
            && (self.practices.is_empty() || self.practices.contains(&g.practice))
            && (self.providers.is_empty() || self.providers.contains(&g.provider))
    }

    /// Whether a secondary index can hold matching entries (to pick which
    /// index sets to scan).
    fn index_may_match(&self, idx: &SecondaryIndex) -> bool {
        match idx {
            SecondaryIndex::MeasureFreq { measure, frequency } => {
                self.practices.is_empty()
                    && self.providers.is_empty()
                    && self.measure.as_ref().is_none_or(|m| m == measure)
                    && self.frequency.as_ref().is_none_or(|f| f == frequency)
            }
            SecondaryIndex::Practice {
                measure,
                practice,
                frequency,
            } => {
                !self.practices.is_empty()
                    && self.practices.contains(practice)
                    && self.measure.as_ref().is_none_or(|m| m == measure)
                    && self.frequency.as_ref().is_none_or(|f| f == frequency)
            }
            SecondaryIndex::Provider {
                measure,
                provider,
                frequency,
            } => {
                self.practices.is_empty()
                    && !self.providers.is_empty()
                    && self.providers.contains(provider)
                    && self.measure.as_ref().is_none_or(|m| m == measure)
                    && self.frequency.as_ref().is_none_or(|f| f == frequency)
            }
        }
    }
}

/// The seed's invalidate response.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidateResult {
    pub keys_deleted: u64,
    /// Index sets deleted (a selective invalidation keeps them: 0).
    pub indexes_deleted: u64,
    #[serde(rename = "memoryFreedMB")]
    pub memory_freed_mb: f64,
}

fn mb(bytes: f64) -> f64 {
    (bytes / (1024.0 * 1024.0) * 100.0).round() / 100.0
}

/// Invalidates `ds` (all of it, or the selection). Refused for a reader,
/// counted against the actor's invalidate rate limit, audited
/// (`cache_invalidated`).
pub async fn invalidate(
    redis: &Redis,
    actor: &Actor,
    ds: DsId,
    sel: &Selection,
) -> Result<InvalidateResult> {
    use crate::governance::{self, audit};
    let mut params = serde_json::json!({
        "all": sel.is_all(),
        "measure": sel.measure,
        "practices": sel.practices,
        "providers": sel.providers,
        "frequency": sel.frequency,
    });
    governance::require_write(actor, "invalidate the cache", Some(ds), params.clone()).await?;
    // Busy costs nothing: a datasource a warm or another invalidation holds
    // is refused before the rate limit counts the attempt (the lock itself
    // still decides below).
    if let Some(holder) = super::lock::holder(redis, ds).await? {
        return Err(Error::AlreadyWarming { ds, holder });
    }
    governance::ratelimit::consume(
        redis,
        actor,
        governance::RateAction::Invalidate,
        1,
        Some(ds),
    )
    .await?;
    // Fail closed: no audit row, no invalidation.
    let intent = audit::begin(
        actor,
        audit::actions::CACHE_INVALIDATED,
        "invalidate the cache",
        Some(ds),
        &params,
    )
    .await?;
    let r = holding_lock(redis, ds, |fence| async move {
        if sel.is_all() {
            invalidate_all(redis, ds, fence).await
        } else {
            invalidate_some(redis, ds, fence, sel).await
        }
    })
    .await;
    if let Ok(x) = &r {
        params["keysDeleted"] = x.keys_deleted.into();
        params["indexesDeleted"] = x.indexes_deleted.into();
    }
    intent.finish(actor, params, &r).await;
    r
}

/// Releases the warm lock if the invalidation's future is dropped before it
/// could (a cancelled task); otherwise the lease frees it.
struct Held {
    redis: Redis,
    ds: DsId,
    holder: String,
    /// False once released normally.
    armed: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (redis, ds, holder) = (self.redis.clone(), self.ds, self.holder.clone());
            rt.spawn(async move {
                let _ = lock::release(&redis, ds, &holder).await;
            });
        }
    }
}

/// Runs `work` while holding the warm lock of `ds`, renewing its lease every
/// third of it; refused as busy when a warm (or another invalidation) holds
/// it. The lock is released at the end, also on error.
async fn holding_lock<T, F, Fut>(redis: &Redis, ds: DsId, work: F) -> Result<T>
where
    F: FnOnce(Fence) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let holder = format!(
        "{INVALIDATION_HOLDER_PREFIX}{}",
        uuid::Uuid::new_v4().simple()
    );
    let lease = lock::LEASE;
    let fence = lock::acquire_fenced(redis, ds, &holder, lease).await?;
    let mut held = Held {
        redis: redis.clone(),
        ds,
        holder: holder.clone(),
        armed: true,
    };
    let renew = async {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            match lock::renew(redis, ds, &holder, lease).await {
                Ok(true) => last_ok = Instant::now(),
                Ok(false) => {
                    return Error::InvalidationStopped {
                        ds,
                        reason: "it lost the warm lock (its lease expired)".into(),
                    };
                }
                Err(e) if last_ok.elapsed() >= lease => return e,
                Err(_) => {}
            }
        }
    };
    let r = tokio::select! {
        r = work(fence) => r,
        e = renew => Err(e),
    };
    held.armed = false;
    if let Err(e) = lock::release(redis, ds, &holder).await {
        tracing::warn!("could not release the warm lock of datasource {ds}: {e}");
    }
    r
}

/// The test hook of [`TEST_PAUSE_ENV`].
async fn test_pause() {
    if let Some(ms) = std::env::var(TEST_PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Whether `name` is a live entry key of `ds`.
fn is_own_entry(ds: DsId, name: &str) -> bool {
    matches!(
        keys::parse(name),
        Some(ParsedKey::Entry { ds: d, generation: Gen::Live, .. }) if d == ds
    )
}

/// Whether `name` is a live secondary index key of `ds`.
fn is_own_index(ds: DsId, name: &str) -> bool {
    matches!(
        keys::parse(name),
        Some(ParsedKey::Secondary { ds: d, generation: Gen::Live, .. }) if d == ds
    )
}

/// Keys per UNLINK when emptying a moved-aside set.
const UNLINK_BATCH: usize = 500;

/// The error of an invalidation whose lock another holder has taken since
/// (its lease lapsed: the process was paused or Redis unreachable).
fn fenced_off(ds: DsId) -> Error {
    Error::InvalidationStopped {
        ds,
        reason: "it lost the warm lock (its lease lapsed and another holder took it)".into(),
    }
}

/// UNLINKs `batch` only while the fencing counter of `ds` is still `fence`.
/// Returns how many keys existed.
async fn unlink_fenced(redis: &Redis, ds: DsId, fence: Fence, batch: &[String]) -> Result<u64> {
    let mut inv = scripts::UNLINK_FENCED.prepare_invoke();
    inv.key(keys::warm_fence(ds)).arg(fence);
    for k in batch {
        inv.key(k);
    }
    let mut conn = redis.conn();
    let n: i64 = inv
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("deleting keys", e))?;
    u64::try_from(n).map_err(|_| fenced_off(ds))
}

/// UNLINKs every member of `set` that `own` accepts (members written by
/// something else are skipped, and left alone), then the set, each batch
/// only while this invalidation's fencing number is current (the members
/// are live names: a later warm may have written them again). Returns how
/// many keys existed.
async fn unlink_members(
    redis: &Redis,
    ds: DsId,
    fence: Fence,
    set: &str,
    own: impl Fn(&str) -> bool + Send + Sync,
) -> Result<u64> {
    let mut removed = 0u64;
    let mut scan = SetScan::new(redis, set, "scanning an index set").only(own);
    while let Some(members) = scan.next().await? {
        for batch in members.chunks(UNLINK_BATCH) {
            removed += unlink_fenced(redis, ds, fence, batch).await?;
        }
    }
    if scan.skipped() > 0 {
        tracing::info!(
            "{set}: {} members that are not names of this datasource were skipped",
            scan.skipped()
        );
    }
    let _: u64 = redis
        .query("deleting an index set", redis::cmd("UNLINK").arg(set))
        .await?;
    Ok(removed)
}

async fn invalidate_all(redis: &Redis, ds: DsId, fence: Fence) -> Result<InvalidateResult> {
    // The trash names carry the epoch the script's INCR will give: no other
    // invalidation can run meanwhile (it would need the lock).
    let next_epoch = super::meta::epoch(redis, ds).await? + 1;
    let trash_master = keys::trash(ds, next_epoch, "master");
    let trash_list = keys::trash(ds, next_epoch, "indexes");
    let mut conn = redis.conn();
    let (epoch, memory, _entries): (i64, String, String) = scripts::INVALIDATE_BEGIN
        .key(keys::epoch(ds))
        .key(keys::master_index(ds, Gen::Live))
        .key(keys::index_list(ds, Gen::Live))
        .key(keys::meta(ds))
        .key(keys::last_warm(ds))
        .key(keys::invalidated(ds))
        .key(&trash_master)
        .key(&trash_list)
        .key(keys::warm_fence(ds))
        .arg(fence)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("starting the invalidation", e))?;
    if epoch < 0 {
        return Err(fenced_off(ds));
    }
    test_pause().await;
    let keys_deleted =
        unlink_members(redis, ds, fence, &trash_master, |k| is_own_entry(ds, k)).await?;
    let indexes_deleted =
        unlink_members(redis, ds, fence, &trash_list, |k| is_own_index(ds, k)).await?;
    Ok(InvalidateResult {
        keys_deleted,
        indexes_deleted,
        memory_freed_mb: mb(memory.parse::<f64>().unwrap_or(0.0)),
    })
}

/// Entries per invalidation script call.
const BATCH: usize = 200;

async fn invalidate_some(
    redis: &Redis,
    ds: DsId,
    fence: Fence,
    sel: &Selection,
) -> Result<InvalidateResult> {
    let _: i64 = redis
        .query("bumping the epoch", redis::cmd("INCR").arg(keys::epoch(ds)))
        .await?;
    test_pause().await;
    // Which index sets can hold matching entries.
    let mut scan_sets = Vec::new();
    let mut list = SetScan::new(
        redis,
        keys::index_list(ds, Gen::Live),
        "scanning the index list",
    )
    .only(move |n| is_own_index(ds, n));
    while let Some(names) = list.next().await? {
        for n in names {
            if let Some(ParsedKey::Secondary { index, .. }) = keys::parse(&n)
                && sel.index_may_match(&index)
            {
                scan_sets.push(n);
            }
        }
    }
    // Collect matching entry keys (bounded by the selection's size).
    let mut targets: HashSet<String> = HashSet::new();
    for set in &scan_sets {
        let mut members = SetScan::new(redis, set.as_str(), "scanning an index")
            .only(move |m| is_own_entry(ds, m));
        while let Some(batch) = members.next().await? {
            for m in batch {
                if let Some(ParsedKey::Entry { group, .. }) = keys::parse(&m)
                    && sel.matches(&group)
                {
                    targets.insert(m);
                }
            }
        }
    }
    let mut targets: Vec<String> = targets.into_iter().collect();
    targets.sort();
    let mut result = InvalidateResult::default();
    let mut freed = 0f64;
    for chunk in targets.chunks(BATCH) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("MEMORY").arg("USAGE").arg(k);
        }
        let sizes: Vec<Option<u64>> = redis.pipe("measuring entries", &p).await?;
        freed += sizes.iter().flatten().sum::<u64>() as f64;
        let mut inv = scripts::INVALIDATE_ENTRIES.prepare_invoke();
        inv.key(keys::master_index(ds, Gen::Live))
            .key(keys::invalidated(ds))
            .key(keys::epoch(ds))
            .key(keys::warm_fence(ds))
            .arg(fence);
        for k in chunk {
            inv.arg(k);
        }
        let mut conn = redis.conn();
        let deleted: i64 = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("invalidating entries", e))?;
        result.keys_deleted += u64::try_from(deleted).map_err(|_| fenced_off(ds))?;
    }
    result.memory_freed_mb = mb(freed);
    Ok(result)
}

/// Entries of `ds` invalidated since the last swap (deleted, still listed,
/// waiting for a warm).
pub async fn pending(redis: &Redis, ds: DsId) -> Result<u64> {
    redis
        .query(
            "counting invalidated entries",
            redis::cmd("SCARD").arg(keys::invalidated(ds)),
        )
        .await
}
