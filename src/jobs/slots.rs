//! Run slots: the global concurrency limit shared by every instance.
//!
//! Queued jobs wait in `keys::jobs_queue()` (a sorted set by enqueue time);
//! a running job holds a member of `keys::jobs_slots()` scored by its lease
//! deadline, renewed at every progress tick. Both calls cost O(log n) in the
//! queue's length: a claim reads only the head of the queue, never all of it.

use std::sync::LazyLock;

use redis::Script;

use super::JobSnapshot;
use super::timing::Timing;
use crate::error::{Error, Result};
use crate::keys;
use crate::redis_conn::Redis;

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_claim.lua")));
static TICK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_tick.lua")));

/// Dead entries (stale heartbeat) one claim may drop from the head of the
/// queue; the rest go at the next calls, so no call walks a long queue.
pub const DROP_PER_CLAIM: u32 = 16;

/// What a claim attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The job holds a slot now.
    Claimed,
    /// Every slot is taken, or live jobs are ahead of it.
    Wait,
    /// The job is not in the queue (a stall made it lose its place).
    NotQueued,
    /// The job is no longer live: it ended, or was given up as dead.
    NotLive,
}

/// Asks for a run slot for `job_id` under `limit`, in queue order.
pub async fn claim(redis: &Redis, job_id: &str, limit: u32, t: &Timing) -> Result<Claim> {
    let mut conn = redis.conn();
    let n: i64 = CLAIM
        .key(keys::jobs_queue())
        .key(keys::jobs_slots())
        .key(keys::jobs_live())
        .arg(job_id)
        .arg(limit.max(1))
        .arg(t.slot_lease_ms)
        .arg(t.stale_ms)
        .arg(keys::job_prefix())
        .arg(DROP_PER_CLAIM)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("claiming a run slot", e))?;
    Ok(match n {
        1 => Claim::Claimed,
        -1 => Claim::NotQueued,
        -2 => Claim::NotLive,
        _ => Claim::Wait,
    })
}

/// What renewing a slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease was extended.
    Renewed,
    /// The lease had lapsed (the process stalled past it); a slot was free
    /// under the limit and is held again.
    Retaken,
    /// The lease had lapsed and every slot is taken: the job must wait.
    Lost,
    /// The job is no longer live: it was given up as dead.
    NotLive,
}

/// One tick of a running job: renews its slot (or takes one again under
/// `limit` after a lapse) and writes its record with a heartbeat — `held`
/// when it has a slot, `waiting` when not — in one step, so the record
/// never says "running" for a job without a slot. Never lets the job hold
/// a slot beyond the limit.
pub async fn tick(
    redis: &Redis,
    held: &JobSnapshot,
    waiting: &JobSnapshot,
    limit: u32,
    t: &Timing,
) -> Result<Renewal> {
    let json = |s: &JobSnapshot| serde_json::to_string(s).unwrap_or_default();
    let mut conn = redis.conn();
    let n: i64 = TICK
        .key(keys::jobs_slots())
        .key(keys::jobs_live())
        .key(keys::job(&held.job_id))
        .arg(&held.job_id)
        .arg(limit.max(1))
        .arg(t.slot_lease_ms)
        .arg(json(held))
        .arg(json(waiting))
        .arg(super::LIVE_TTL_MS)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("renewing the run slot", e))?;
    Ok(match n {
        1 => Renewal::Renewed,
        2 => Renewal::Retaken,
        -1 => Renewal::NotLive,
        _ => Renewal::Lost,
    })
}

/// Puts a job that lost its place back at the end of the queue.
pub async fn requeue(redis: &Redis, job_id: &str) -> Result<()> {
    let now = redis.time_ms().await?;
    redis
        .query(
            "re-queueing a job",
            redis::cmd("ZADD")
                .arg(keys::jobs_queue())
                .arg("NX")
                .arg(now)
                .arg(job_id),
        )
        .await
}

/// Run slots whose lease has not lapsed (jobs running now, everywhere).
pub async fn in_use(redis: &Redis) -> Result<u64> {
    let now = redis.time_ms().await?;
    redis
        .query(
            "counting the run slots in use",
            redis::cmd("ZCOUNT")
                .arg(keys::jobs_slots())
                .arg(format!("({now}"))
                .arg("+inf"),
        )
        .await
}
