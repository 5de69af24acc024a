//! `cachedeck datasource discover`: datasource ids that have a cache in Redis
//! (a non-empty master set `idx:{ds:N}:master`) but are not registered, with
//! their size. The master sets are found with SCAN (MATCH
//! `idx:{ds:*}:master`, TYPE set) on every master of a cluster, in paced
//! calls; each found cache is then read with SCARD and a 200-entry MEMORY
//! USAGE sample in its own slot. Nothing is written to Redis.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;

use super::observe::{Source, parse_last_warm, sample};
use crate::error::Result;
use crate::keys::{self, DsId, Gen, ParsedKey};
use crate::redis_admin::scan::{ScanCursor, ScanQuery};
use crate::redis_conn::Redis;
use crate::store::Store;

/// Pause between SCAN calls.
const PACE: Duration = Duration::from_millis(1);
/// Found caches measured at once.
const IN_FLIGHT: usize = 16;
/// Bytes in the seed's "MB".
const MB: f64 = 1024.0 * 1024.0;

/// A cache in Redis whose datasource is not registered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    /// The `N` of `{ds:N}`.
    pub datasource_id: DsId,
    /// SCARD of the master set.
    pub total_entries: u64,
    /// Entries and master set, from MEMORY USAGE of sampled entries scaled
    /// by the entry count (index sets not included: their count needs a
    /// walk of the names). Always an estimate.
    #[serde(rename = "estimatedMemoryMB")]
    pub estimated_memory_mb: f64,
    /// Entries the memory estimate measured.
    pub memory_sample_size: u64,
    /// `cache:meta:{ds:N}:last_warm` as ISO-8601 UTC when it parses.
    pub last_warmed: Option<String>,
    /// `recorded` when a cachedeck warm wrote the cache (its meta hash has a
    /// generation), else `observed`.
    pub source: Source,
}

/// Caches of unregistered datasources, by id.
pub async fn discover(redis: &Redis, store: &Store) -> Result<Vec<Discovered>> {
    let registered: BTreeSet<DsId> = store.datasources().await?.iter().map(|d| d.id).collect();
    let found = master_sets(redis).await?;
    let ids: Vec<DsId> = found.difference(&registered).copied().collect();
    let results: Vec<Result<Option<Discovered>>> = futures::stream::iter(ids)
        .map(|id| measure(redis, id))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Ids of every live master set, over every master.
async fn master_sets(redis: &Redis) -> Result<BTreeSet<DsId>> {
    let mut cursor = ScanCursor::new(
        redis,
        ScanQuery {
            pattern: b"idx:{ds:*}:master".to_vec(),
            type_filter: Some("set".into()),
            count_hint: 1000,
        },
    )
    .await?;
    let mut ids = BTreeSet::new();
    let mut pages = std::pin::pin!(cursor.load_all(usize::MAX, PACE));
    while let Some(page) = pages.next().await {
        for k in page?.keys {
            let Ok(name) = std::str::from_utf8(&k.key) else {
                continue;
            };
            if let Some(ParsedKey::Master {
                ds,
                generation: Gen::Live,
            }) = keys::parse(name)
            {
                ids.insert(ds);
            }
        }
    }
    Ok(ids)
}

/// Size of one found cache; `None` when it emptied meanwhile.
async fn measure(redis: &Redis, id: DsId) -> Result<Option<Discovered>> {
    let mut p = redis::pipe();
    p.cmd("SCARD").arg(keys::master_index(id, Gen::Live));
    p.cmd("HGETALL").arg(keys::meta(id));
    p.cmd("GET").arg(keys::last_warm(id));
    let (entries, meta, raw): (u64, HashMap<String, String>, Option<String>) = redis
        .pipe(&format!("reading the cache of datasource {id}"), &p)
        .await?;
    if entries == 0 {
        return Ok(None);
    }
    let s = sample::sample(redis, id).await?;
    let bytes = (entries as f64 * s.entry_bytes).round() + s.master_bytes as f64;
    let recorded = meta
        .get("generation")
        .and_then(|g| g.parse::<u64>().ok())
        .is_some_and(|g| g > 0);
    Ok(Some(Discovered {
        datasource_id: id,
        total_entries: entries,
        estimated_memory_mb: (bytes / MB * 100.0).round() / 100.0,
        memory_sample_size: s.measured,
        last_warmed: raw
            .as_deref()
            .and_then(parse_last_warm)
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        source: if recorded {
            Source::Recorded
        } else {
            Source::Observed
        },
    }))
}
