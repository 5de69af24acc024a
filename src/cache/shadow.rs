//! Removing a shadow generation: a cancelled or failed warm's own, or a
//! crashed warm's leftovers found by the next warm. Members are read with
//! SSCAN and deleted with UNLINK in batches; every shadow key also carries the
//! generation's absolute expiry as a safety net.

use super::set_scan::SetScan;
use crate::error::Result;
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;

/// Keys removed by a clean-up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub entries: u64,
    pub indexes: u64,
}

/// UNLINKs every member of `set` after mapping it with `name`, then the set.
pub(crate) async fn unlink_members(
    redis: &Redis,
    set: &str,
    name: impl Fn(&str) -> Option<String>,
) -> Result<u64> {
    let mut removed = 0u64;
    let mut scan = SetScan::new(redis, set, "scanning an index set");
    while let Some(members) = scan.next().await? {
        let targets: Vec<String> = members.iter().filter_map(|m| name(m)).collect();
        if !targets.is_empty() {
            let n: u64 = redis
                .query("deleting keys", redis::cmd("UNLINK").arg(&targets))
                .await?;
            removed += n;
        }
    }
    let _: u64 = redis
        .query("deleting an index set", redis::cmd("UNLINK").arg(set))
        .await?;
    Ok(removed)
}

/// Deletes the shadow generation of `ds`, whoever left it.
pub async fn remove(redis: &Redis, ds: DsId) -> Result<Removed> {
    let entries = unlink_members(redis, &keys::master_index(ds, Gen::Shadow), |k| {
        keys::shadow_of_entry(ds, k)
    })
    .await?;
    let indexes = unlink_members(redis, &keys::index_list(ds, Gen::Shadow), |k| {
        keys::shadow_of_index(ds, k)
    })
    .await?;
    Ok(Removed { entries, indexes })
}

/// Whether any shadow key of `ds` is left (the health check reports it).
pub async fn exists(redis: &Redis, ds: DsId) -> Result<bool> {
    let n: u64 = redis
        .query(
            "looking for shadow keys",
            redis::cmd("EXISTS")
                .arg(keys::master_index(ds, Gen::Shadow))
                .arg(keys::index_list(ds, Gen::Shadow)),
        )
        .await?;
    Ok(n > 0)
}
