//! Invalidation: a whole datasource, or the entries matching a selection of
//! measure / practices / providers / frequency. Both bump the epoch first, so
//! a warm running meanwhile aborts its swap cleanly; deletion is UNLINK in
//! batches read with SSCAN, never KEYS.

use std::collections::HashSet;

use serde::Serialize;

use super::set_scan::SetScan;
use super::{scripts, shadow};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen, ParsedKey, SecondaryIndex};
use crate::redis_conn::Redis;

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
    let r = if sel.is_all() {
        invalidate_all(redis, ds).await
    } else {
        invalidate_some(redis, ds, sel).await
    };
    if let Ok(x) = &r {
        params["keysDeleted"] = x.keys_deleted.into();
        params["indexesDeleted"] = x.indexes_deleted.into();
    }
    intent.finish(actor, params, &r).await;
    r
}

async fn invalidate_all(redis: &Redis, ds: DsId) -> Result<InvalidateResult> {
    // The epoch is read by the script itself; the trash names need the next
    // one, so reserve it from a read (the script's INCR gives the same value
    // unless another invalidation races, which then only shares the trash).
    let next_epoch = super::meta::epoch(redis, ds).await? + 1;
    let trash_master = keys::trash(ds, next_epoch, "master");
    let trash_list = keys::trash(ds, next_epoch, "indexes");
    let mut conn = redis.conn();
    let (_epoch, memory, _entries): (i64, String, String) = scripts::INVALIDATE_BEGIN
        .key(keys::epoch(ds))
        .key(keys::master_index(ds, Gen::Live))
        .key(keys::index_list(ds, Gen::Live))
        .key(keys::meta(ds))
        .key(keys::last_warm(ds))
        .key(keys::stats_since_warm(ds))
        .key(&trash_master)
        .key(&trash_list)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("starting the invalidation", e))?;
    let keys_deleted =
        shadow::unlink_members(redis, &trash_master, |k| Some(k.to_string())).await?;
    let indexes_deleted =
        shadow::unlink_members(redis, &trash_list, |k| Some(k.to_string())).await?;
    // A warm in progress loses its shadow keys too; its swap aborts on the epoch.
    let sh = shadow::remove(redis, ds).await?;
    Ok(InvalidateResult {
        keys_deleted: keys_deleted + sh.entries,
        indexes_deleted: indexes_deleted + sh.indexes,
        memory_freed_mb: mb(memory.parse::<f64>().unwrap_or(0.0)),
    })
}

/// Entries per invalidation script call.
const BATCH: usize = 200;

async fn invalidate_some(redis: &Redis, ds: DsId, sel: &Selection) -> Result<InvalidateResult> {
    let _: i64 = redis
        .query("bumping the epoch", redis::cmd("INCR").arg(keys::epoch(ds)))
        .await?;
    // Which index sets can hold matching entries.
    let mut scan_sets = Vec::new();
    let mut list = SetScan::new(
        redis,
        keys::index_list(ds, Gen::Live),
        "scanning the index list",
    );
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
        let mut members = SetScan::new(redis, set.as_str(), "scanning an index");
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
            .key(keys::index_list(ds, Gen::Live))
            .key(keys::meta(ds));
        for k in chunk {
            let Some(ParsedKey::Entry { group, .. }) = keys::parse(k) else {
                continue;
            };
            inv.arg(k);
            for idx in SecondaryIndex::for_group(&group) {
                inv.arg(idx.key(ds, Gen::Live));
            }
        }
        let mut conn = redis.conn();
        let (deleted, dropped): (u64, u64) = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("invalidating entries", e))?;
        result.keys_deleted += deleted;
        result.indexes_deleted += dropped;
    }
    // Empty index sets vanish by themselves in Redis; the shadow of a running
    // warm goes too (its swap aborts on the epoch).
    let sh = shadow::remove(redis, ds).await?;
    result.keys_deleted += sh.entries;
    result.indexes_deleted += sh.indexes;
    result.memory_freed_mb = mb(freed);
    Ok(result)
}
