//! Shadow generations: each warm writes its own under names that carry its
//! fencing number, and registers it in `idx:{ds:N}:shadows` (scored by the
//! generation's absolute expiry) before writing. Removing one: a cancelled,
//! failed or fenced-off warm removes its own; whoever next takes the lock
//! removes every registered one (a crashed warm's leftovers). Members are
//! read with SSCAN and deleted with UNLINK in batches; every shadow key also
//! carries the generation's absolute expiry as a safety net.

use super::set_scan::SetScan;
use crate::error::Result;
use crate::keys::{self, DsId, Fence, Gen};
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

/// Registers the shadow generation of `fence`, whose keys expire at
/// `expire_at` (ms), so a later holder can find it.
pub(crate) async fn register(redis: &Redis, ds: DsId, fence: Fence, expire_at: i64) -> Result<()> {
    let mut p = redis::pipe();
    register_into(&mut p, ds, fence, expire_at);
    redis.pipe("registering the shadow generation", &p).await
}

/// Queues the commands of [`register`] (a warm's write pipelines repeat them,
/// so a generation written after someone removed it is listed again).
pub(crate) fn register_into(p: &mut redis::Pipeline, ds: DsId, fence: Fence, expire_at: i64) {
    p.cmd("ZADD")
        .arg(keys::shadow_registry(ds))
        .arg(expire_at)
        .arg(fence)
        .ignore();
}

/// Deletes the shadow generation of `fence` (entries, index sets written
/// under its name, its master set and index list) and unregisters it.
pub async fn remove_generation(redis: &Redis, ds: DsId, fence: Fence) -> Result<Removed> {
    let entries = unlink_members(redis, &keys::master_index(ds, Gen::Shadow(fence)), |k| {
        keys::shadow_of_entry(ds, fence, k)
    })
    .await?;
    let indexes = unlink_members(redis, &keys::index_list(ds, Gen::Shadow(fence)), |k| {
        keys::shadow_of_index(ds, fence, k)
    })
    .await?;
    let _: u64 = redis
        .query(
            "unregistering a shadow generation",
            redis::cmd("ZREM").arg(keys::shadow_registry(ds)).arg(fence),
        )
        .await?;
    Ok(Removed { entries, indexes })
}

/// Every member of the shadow registry of `ds` (a few at most: each warm
/// removes its own generation, and the next holder the rest).
/// Members are read as bytes: one written by hand may be anything.
async fn registered(redis: &Redis, ds: DsId) -> Result<Vec<Vec<u8>>> {
    redis
        .query(
            "reading the shadow generations",
            redis::cmd("ZRANGE")
                .arg(keys::shadow_registry(ds))
                .arg(0)
                .arg(-1),
        )
        .await
}

/// Deletes every registered shadow generation of `ds`, whoever left it. Call
/// it while holding the warm lock (or knowing no warm runs): a running
/// warm's generation goes too.
pub async fn remove(redis: &Redis, ds: DsId) -> Result<Removed> {
    let mut total = Removed::default();
    for member in registered(redis, ds).await? {
        let fence = std::str::from_utf8(&member)
            .ok()
            .and_then(|m| m.parse::<Fence>().ok());
        match fence {
            Some(fence) => {
                let r = remove_generation(redis, ds, fence).await?;
                total.entries += r.entries;
                total.indexes += r.indexes;
            }
            // Not a fencing number (written by hand): it names nothing.
            None => {
                let _: u64 = redis
                    .query(
                        "unregistering a shadow generation",
                        redis::cmd("ZREM")
                            .arg(keys::shadow_registry(ds))
                            .arg(&member),
                    )
                    .await?;
            }
        }
    }
    Ok(total)
}

/// The command counting registered shadow generations of `ds` that have not
/// expired at `now_ms` (its reply: how many).
pub fn count_cmd(ds: DsId, now_ms: i64) -> redis::Cmd {
    let mut c = redis::cmd("ZCOUNT");
    c.arg(keys::shadow_registry(ds)).arg(now_ms).arg("+inf");
    c
}

/// Whether any shadow generation of `ds` is left (the health check reports it).
pub async fn exists(redis: &Redis, ds: DsId) -> Result<bool> {
    let now = redis.time_ms().await?;
    let n: u64 = redis
        .query("looking for shadow generations", &count_cmd(ds, now))
        .await?;
    Ok(n > 0)
}
