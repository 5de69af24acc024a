//! The Details view's data: trends, memory/entry samples, a breakdown of live
//! entries per measure and per frequency, and recent jobs.

use std::collections::HashMap;

use super::protocol::{Breakdown, DatasourceDetails, TrendRange};
use crate::error::Result;
use crate::jobs::RecentJob;
use crate::keys::{self, DsId, Gen, ParsedKey};
use crate::redis_conn::Redis;
use crate::store::Store;

/// Entry keys one breakdown looks at, at most (beyond, the counts are a sample).
pub const BREAKDOWN_MAX_KEYS: u64 = 200_000;
/// SSCAN batch size: small enough that no single call stalls Redis.
const SCAN_COUNT: u64 = 1_000;
/// Recent jobs shown per datasource.
const RECENT_JOBS: i64 = 20;

/// Counts live entries per measure and frequency by SSCAN of the master index,
/// in batches, stopping after [`BREAKDOWN_MAX_KEYS`].
pub async fn breakdown(redis: &Redis, ds: DsId) -> Result<Breakdown> {
    let master = keys::master_index(ds, Gen::Live);
    let mut per_measure: HashMap<String, u64> = HashMap::new();
    let mut per_frequency: HashMap<String, u64> = HashMap::new();
    let mut scanned = 0u64;
    let mut cursor = 0u64;
    let mut truncated = false;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis
            .query(
                "scanning the master index",
                redis::cmd("SSCAN")
                    .arg(&master)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT),
            )
            .await?;
        for raw in &batch {
            scanned += 1;
            let Ok(key) = std::str::from_utf8(raw) else {
                continue;
            };
            if let Some(ParsedKey::Entry { group, .. }) = keys::parse(key) {
                *per_measure.entry(group.measure).or_default() += 1;
                *per_frequency.entry(group.frequency).or_default() += 1;
            }
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
        if scanned >= BREAKDOWN_MAX_KEYS {
            truncated = true;
            break;
        }
    }
    Ok(Breakdown {
        per_measure: sorted(per_measure),
        per_frequency: sorted(per_frequency),
        scanned,
        truncated,
    })
}

/// Largest first, then by name, so the view is stable between loads.
fn sorted(map: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Loads everything the Details view shows for `ds` over `range`.
pub async fn load(
    redis: &Redis,
    store: &Store,
    ds: DsId,
    range: TrendRange,
) -> Result<DatasourceDetails> {
    let to_ms = redis.time_ms().await?;
    let from_ms = to_ms - range.span().as_millis() as i64;
    let trends = crate::metrics::trends(redis, store, ds, from_ms, to_ms, range.hourly()).await?;
    let breakdown = breakdown(redis, ds).await?;
    let recent_jobs = store
        .recent_jobs(Some(ds), RECENT_JOBS)
        .await?
        .iter()
        .map(RecentJob::from)
        .collect();
    Ok(DatasourceDetails {
        ds,
        range,
        trends,
        breakdown,
        recent_jobs,
    })
}
