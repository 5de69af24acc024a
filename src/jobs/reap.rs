//! Jobs whose process stopped (killed, machine lost, stalled for good):
//! found by their stale heartbeat and ended by whichever instance looks
//! first — `cachedeck status`, the window's refresh, an agent — so a dead
//! job never looks alive, even when no agent runs.
//!
//! A stale job that had started waits until its warm lock's lease is gone
//! (its process might still be stalled, not dead); then one instance ends it
//! (a script makes sure only one does, and only while the heartbeat is still
//! stale), removes its shadow keys if nobody holds the datasource's warm
//! lock, records it failed in the history and audits `job_abandoned`.

use std::sync::LazyLock;

use redis::Script;
use serde::Serialize;

use super::{Attempt, ENDED_TTL_SECS, JobSnapshot, JobState, iso, live_records, timing};
use crate::actor::Actor;
use crate::cache::{lock, shadow};
use crate::error::{Error, Result};
use crate::governance::audit::{self, actions, results};
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;
use crate::store::Store;

static REAP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_reap.lua")));
static RETRY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_retry.lua")));

/// The start of the history cause of a job whose process stopped; the last
/// heartbeat's time follows in parentheses.
pub const ABANDONED_CAUSE: &str = "its process stopped";

/// A job whose process stopped, found and ended by this instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Abandoned {
    /// The job.
    pub job_id: String,
    /// Its datasource.
    pub datasource_id: DsId,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: Option<i64>,
    /// Shadow entries removed (0 when another warm holds the lock now).
    pub shadow_entries_removed: u64,
    /// Shadow index keys removed.
    pub shadow_indexes_removed: u64,
    /// Put back in the queue for another worker to run from the start
    /// (its worker died and it had a retry left), rather than ended.
    pub retried: bool,
}

/// What one look at the live jobs did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaped {
    /// Jobs ended by this call.
    pub abandoned: Vec<Abandoned>,
    /// Stale jobs whose warm lock is still leased (ended at a later call).
    pub waiting: Vec<String>,
}

/// The cause recorded for a job whose process stopped.
pub fn abandoned_cause(last_heartbeat: Option<&str>) -> String {
    match last_heartbeat {
        Some(t) => format!("{ABANDONED_CAUSE} (last heartbeat {t})"),
        None => format!("{ABANDONED_CAUSE} (no heartbeat recorded)"),
    }
}

/// Ends every live job whose heartbeat is stale and whose warm lock's lease
/// is gone. Needs an actor that may write; a read-only one changes nothing.
pub async fn reap(redis: &Redis, store: &Store, actor: &Actor) -> Result<Reaped> {
    actor.check_write("clean up jobs whose process stopped")?;
    let mut out = Reaped::default();
    let (jobs, missing) = live_records(redis).await?;
    if !missing.is_empty() {
        // Records that expired a day after their last heartbeat: nothing
        // is left to end but their places in the live set, queue and slots.
        let mut p = redis::pipe();
        for id in &missing {
            p.cmd("SREM").arg(keys::jobs_live()).arg(id).ignore();
            p.cmd("ZREM").arg(keys::jobs_queue()).arg(id).ignore();
            p.cmd("ZREM").arg(keys::jobs_slots()).arg(id).ignore();
        }
        redis
            .pipe::<()>("forgetting expired job records", &p)
            .await?;
    }
    for job in jobs {
        if job.state != JobState::Stale {
            continue;
        }
        let started = job.started_at.is_some();
        if started && lock::holder(redis, job.datasource_id).await?.as_deref() == Some(&job.job_id)
        {
            // Its warm lock's lease has not run out: it may only be stalled.
            out.waiting.push(job.job_id.clone());
            continue;
        }
        if let Some(a) = end_abandoned(redis, store, actor, job, started).await? {
            out.abandoned.push(a);
        }
    }
    Ok(out)
}

/// Ends one stale job unless another instance did, or its process came back.
async fn end_abandoned(
    redis: &Redis,
    store: &Store,
    actor: &Actor,
    mut job: JobSnapshot,
    started: bool,
) -> Result<Option<Abandoned>> {
    let age = job.heartbeat_age_ms;
    let now = redis.time_ms().await?;
    let cause = abandoned_cause(job.last_heartbeat.as_deref());
    let worker = job.worker.clone();
    let retried = job.detached && job.worker.is_some() && (job.attempts.len() as u32) < job.retries;
    let ended = if retried {
        put_back(redis, &mut job, &cause, now).await?
    } else {
        end(redis, &mut job, &cause, now).await?
    };
    if !ended {
        return Ok(None);
    }
    let removed = if started {
        clean_shadow(redis, job.datasource_id, &job.job_id).await?
    } else {
        shadow::Removed::default()
    };
    store.save_job(&job.to_record()).await?;
    tracing::info!(
        "job {} (DS #{} {}, owner {}, {}) stopped with its process{}; {}{}",
        job.job_id,
        job.datasource_id,
        job.datasource_name,
        job.owner,
        job.origin,
        job.last_heartbeat
            .as_deref()
            .map(|t| format!(" (last heartbeat {t})"))
            .unwrap_or_default(),
        if retried {
            "queued again for another worker"
        } else {
            "marked failed"
        },
        if removed.entries + removed.indexes > 0 {
            format!(
                ", {} shadow entries and {} shadow indexes removed",
                removed.entries, removed.indexes
            )
        } else {
            String::new()
        }
    );
    audit::record_via(
        actor,
        actions::JOB_ABANDONED,
        Some(job.datasource_id),
        serde_json::json!({
            "jobId": job.job_id,
            "owner": job.owner,
            "origin": job.origin,
            "lastHeartbeat": job.last_heartbeat,
            "heartbeatAgeMs": age,
            "shadowEntriesRemoved": removed.entries,
            "shadowIndexesRemoved": removed.indexes,
            "worker": worker,
            "attempt": job.attempts.len() + usize::from(!retried),
            "retried": retried,
        }),
        results::FAILED,
        Some(&cause),
    )
    .await;
    Ok(Some(Abandoned {
        job_id: job.job_id,
        datasource_id: job.datasource_id,
        heartbeat_age_ms: age,
        shadow_entries_removed: removed.entries,
        shadow_indexes_removed: removed.indexes,
        retried,
    }))
}

/// Ends a stale job failed with `cause` (and the causes of its earlier
/// attempts); false when another instance did, or its process came back.
async fn end(redis: &Redis, job: &mut JobSnapshot, cause: &str, now: i64) -> Result<bool> {
    job.state = JobState::Failed;
    job.error = Some(if job.attempts.is_empty() {
        cause.to_string()
    } else {
        let earlier: Vec<&str> = job.attempts.iter().map(|a| a.error.as_str()).collect();
        format!("{cause}; earlier attempts: {}", earlier.join("; "))
    });
    job.completed_at = Some(iso(now));
    job.pause_reason = None;
    job.eta_ms = None;
    job.rows_per_second = 0.0;
    // It ran from its start until its process was last heard of.
    job.duration_ms = ran_for_ms(job.started_at.as_deref(), job.last_heartbeat.as_deref());
    let data = serde_json::to_string(&job).unwrap_or_default();
    let mut conn = redis.conn();
    let ended: i64 = REAP
        .key(keys::job(&job.job_id))
        .key(keys::jobs_live())
        .key(keys::jobs_queue())
        .key(keys::jobs_slots())
        .arg(&job.job_id)
        .arg(timing().stale_ms)
        .arg(data)
        .arg(ENDED_TTL_SECS)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("ending a job whose process stopped", e))?;
    Ok(ended == 1)
}

/// Records the attempt that ended with `cause` and puts the job back at
/// the head of the pending queue, to run again from the start; false when
/// another instance did, or its worker came back.
async fn put_back(redis: &Redis, job: &mut JobSnapshot, cause: &str, now: i64) -> Result<bool> {
    job.attempts.push(Attempt {
        worker: job.worker.clone(),
        started_at: job.started_at.clone(),
        ended_at: iso(now),
        error: cause.to_string(),
    });
    let submitted = chrono::DateTime::parse_from_rfc3339(&job.queued_at)
        .map(|d| d.timestamp_millis())
        .unwrap_or(now);
    *job = JobSnapshot {
        job_id: std::mem::take(&mut job.job_id),
        datasource_id: job.datasource_id,
        datasource_name: std::mem::take(&mut job.datasource_name),
        state: JobState::Queued,
        queued_at: std::mem::take(&mut job.queued_at),
        owner: std::mem::take(&mut job.owner),
        origin: std::mem::take(&mut job.origin),
        forced: job.forced,
        detached: true,
        estimated_duration_ms: job.estimated_duration_ms,
        attempts: std::mem::take(&mut job.attempts),
        retries: job.retries,
        ..Default::default()
    };
    let data = serde_json::to_string(&job).unwrap_or_default();
    let mut conn = redis.conn();
    let n: i64 = RETRY
        .key(keys::job(&job.job_id))
        .key(keys::jobs_live())
        .key(keys::jobs_queue())
        .key(keys::jobs_slots())
        .key(keys::jobs_pending())
        .arg(&job.job_id)
        .arg(timing().stale_ms)
        .arg(data)
        .arg(submitted)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("queueing a job again after its worker died", e))?;
    Ok(n == 1)
}

/// Removes a dead job's shadow keys while holding the warm lock, so no new
/// warm starts writing its own shadow generation meanwhile. When another
/// warm holds the lock, that warm owns the shadow keys now: nothing is
/// removed.
async fn clean_shadow(redis: &Redis, ds: DsId, job_id: &str) -> Result<shadow::Removed> {
    let cleaner = format!("cleanup-{job_id}");
    match lock::acquire(redis, ds, &cleaner, lock::LEASE).await {
        Ok(()) => {
            // Holding the lock, every registered shadow generation belongs
            // to a warm that is dead or fenced off: all of them go.
            let removed = shadow::remove(redis, ds).await;
            lock::release(redis, ds, &cleaner).await?;
            removed
        }
        Err(Error::AlreadyWarming { .. }) => Ok(shadow::Removed::default()),
        Err(e) => Err(e),
    }
}

/// Milliseconds between two ISO-8601 times, when both parse and are ordered.
fn ran_for_ms(started: Option<&str>, last_heard: Option<&str>) -> Option<u64> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
    let (a, b) = (parse(started?)?, parse(last_heard?)?);
    u64::try_from((b - a).num_milliseconds()).ok()
}

#[cfg(test)]
mod tests {
    /// A job whose process stopped ran until it was last heard of.
    #[test]
    fn an_abandoned_job_ran_until_its_last_heartbeat() {
        let ran = super::ran_for_ms(
            Some("2026-12-03T20:26:15.000Z"),
            Some("2026-12-03T20:26:21.097Z"),
        );
        assert_eq!(ran, Some(6_097));
        assert_eq!(super::ran_for_ms(None, Some("2026-12-03T20:26:21Z")), None);
        assert_eq!(
            super::ran_for_ms(Some("2026-12-03T20:26:21Z"), Some("2026-12-03T20:26:20Z")),
            None
        );
    }
}
