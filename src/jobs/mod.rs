//! Warm jobs shared by every instance: records, the global queue with its
//! concurrency limit, pause/resume/cancel, and status.
//!
//! A job's record lives in Redis (`cachedeck:{jobs}:job:<id>`: the snapshot as
//! JSON, a heartbeat from Redis TIME, and the control field any instance may
//! write), so a window or `cachedeck status` sees jobs it did not start. The
//! store keeps the history. A job whose heartbeat is stale reads as
//! [`JobState::Stale`]; [`reap`] ends it once its warm lock's lease is gone.
//! Every record expires: an ended one after [`ENDED_TTL_SECS`], a live one
//! [`LIVE_TTL_MS`] after its last heartbeat.

mod estimate;
mod reap;
mod runner;
pub mod slots;
mod timing;
pub mod worker;

pub use estimate::estimate_ms;
pub use reap::{ABANDONED_CAUSE, Abandoned, Reaped, abandoned_cause, reap};
pub use runner::{JobContext, run_job, submit, submit_detached};
pub use timing::{Timing, WARM_TIMEOUT_ENV, timing, warm_timeout};
pub use worker::{Worker, WorkerInfo, workers};

use std::collections::HashMap;

use serde::Serialize;

use crate::actor::Actor;
use crate::cache::set_scan::SetScan;
use crate::cache::warm::Phase;
use crate::error::{Error, Result};
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;
use crate::store::{JobRecord, Store};

/// A job record's lifetime after it ends.
pub const ENDED_TTL_SECS: i64 = 24 * 3600;
/// A live job's record lifetime after its last heartbeat: a record whose
/// process died and that no instance ended goes away by itself.
pub const LIVE_TTL_MS: i64 = ENDED_TTL_SECS * 1000;
/// A heartbeat older than this means the owning process is gone (the
/// default of [`Timing::stale_ms`]).
pub const STALE_MS: i64 = 30_000;

/// Job states of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Queued,
    Running,
    Paused,
    Swapping,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
    /// Not ended, but its heartbeat is stale: the process running it stopped
    /// (or stalls). Only ever derived when a record is read, never stored.
    Stale,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Swapping => "swapping",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
            JobState::Stale => "stale",
        }
    }

    /// True once the job can change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled | JobState::Skipped
        )
    }
}

/// Everything known about a job now; the seed's activeJobs shape plus state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSnapshot {
    pub job_id: String,
    pub datasource_id: DsId,
    pub datasource_name: String,
    pub state: JobState,
    /// ISO-8601 UTC.
    pub queued_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    /// Percent 0–100.
    pub progress: f64,
    pub rows_processed: u64,
    pub rows_total: Option<u64>,
    /// Smoothed rows per second.
    pub rows_per_second: f64,
    pub eta_ms: Option<u64>,
    pub entries_cached: u64,
    pub indexes_cached: u64,
    pub duration_ms: Option<u64>,
    /// Admin identity that started it.
    pub owner: String,
    /// gui, cli, agent or schedule.
    pub origin: String,
    pub forced: bool,
    pub error: Option<String>,
    /// `busy` when the datasource was already being warmed (exit code 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    pub pause_reason: Option<String>,
    pub warnings: Vec<String>,
    /// Milliseconds since the last heartbeat, filled when read back.
    #[serde(default)]
    pub heartbeat_age_ms: Option<i64>,
    /// ISO-8601 UTC time of the last heartbeat, filled when read back.
    #[serde(default)]
    pub last_heartbeat: Option<String>,
    /// Submitted for any worker (an agent) to run, rather than run by the
    /// process that submitted it: it outlives that process.
    #[serde(default)]
    pub detached: bool,
    /// The worker (agent instance) running it, once one took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// How long it should take, from the datasource's recent successful
    /// warms scaled by the source's row estimate; `None` without history.
    #[serde(default)]
    pub estimated_duration_ms: Option<u64>,
    /// Earlier attempts of this job that ended because their worker died,
    /// oldest first (the job ran again from the start after each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// How many times it is run again when its worker dies
    /// (`defaults.job_retries` of the submitter; 0 for a job its own
    /// process runs).
    #[serde(default)]
    pub retries: u32,
}

/// One earlier attempt of a job, kept in its history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The worker that ran it, when known.
    pub worker: Option<String>,
    /// ISO-8601 UTC start of the attempt, when it had started.
    pub started_at: Option<String>,
    /// ISO-8601 UTC time the attempt was given up.
    pub ended_at: String,
    /// Why it ended.
    pub error: String,
}

impl JobSnapshot {
    pub(crate) fn phase_state(phase: Phase) -> JobState {
        match phase {
            Phase::Preparing | Phase::Reading | Phase::Done => JobState::Running,
            Phase::Paused => JobState::Paused,
            Phase::Swapping => JobState::Swapping,
        }
    }

    /// The history row of this snapshot.
    pub fn to_record(&self) -> JobRecord {
        let ms = |s: &Option<String>| {
            s.as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|d| d.timestamp_millis())
        };
        JobRecord {
            job_id: self.job_id.clone(),
            datasource_id: self.datasource_id,
            datasource_name: self.datasource_name.clone(),
            state: self.state.as_str().to_string(),
            queued_at_ms: ms(&Some(self.queued_at.clone())).unwrap_or(0),
            started_at_ms: ms(&self.started_at),
            completed_at_ms: ms(&self.completed_at),
            duration_ms: self.duration_ms.map(|d| d as i64),
            rows_processed: self.rows_processed as i64,
            entries_cached: self.entries_cached as i64,
            indexes_cached: self.indexes_cached as i64,
            forced: self.forced,
            actor: self.owner.clone(),
            origin: self.origin.clone(),
            error: self.error.clone(),
        }
    }
}

/// ISO-8601 UTC text of a millisecond timestamp.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes a job's record with a heartbeat at `now_ms`, whether or not it is
/// still live (the first and the final write). An ended record expires after
/// [`ENDED_TTL_SECS`] and leaves the live set, the queue and the slots.
pub(crate) async fn write_record(redis: &Redis, snap: &JobSnapshot, now_ms: i64) -> Result<()> {
    let data = serde_json::to_string(snap).unwrap_or_default();
    let key = keys::job(&snap.job_id);
    let mut p = redis::pipe();
    p.cmd("HSET")
        .arg(&key)
        .arg("data")
        .arg(data)
        .arg("heartbeat")
        .arg(now_ms)
        .ignore();
    if snap.state.is_final() {
        p.cmd("EXPIRE").arg(&key).arg(ENDED_TTL_SECS).ignore();
        p.cmd("SREM")
            .arg(keys::jobs_live())
            .arg(&snap.job_id)
            .ignore();
        p.cmd("ZREM")
            .arg(keys::jobs_queue())
            .arg(&snap.job_id)
            .ignore();
        p.cmd("ZREM")
            .arg(keys::jobs_slots())
            .arg(&snap.job_id)
            .ignore();
        p.cmd("ZREM")
            .arg(keys::jobs_pending())
            .arg(&snap.job_id)
            .ignore();
    } else {
        p.cmd("PEXPIRE").arg(&key).arg(LIVE_TTL_MS).ignore();
    }
    redis.pipe::<()>("writing the job record", &p).await
}

static HEARTBEAT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("lua_heartbeat.lua")));

/// Writes a live job's record with a heartbeat from Redis TIME; `false` (and
/// nothing written) when the job is no longer live — it was given up as
/// dead while its process stalled, and must stop.
pub(crate) async fn heartbeat(redis: &Redis, snap: &JobSnapshot) -> Result<bool> {
    let data = serde_json::to_string(snap).unwrap_or_default();
    let mut conn = redis.conn();
    let n: i64 = HEARTBEAT
        .key(keys::job(&snap.job_id))
        .key(keys::jobs_live())
        .arg(&snap.job_id)
        .arg(data)
        .arg(LIVE_TTL_MS)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("writing the job heartbeat", e))?;
    Ok(n == 1)
}

/// Reads one job's record.
pub async fn read(redis: &Redis, job_id: &str) -> Result<Option<JobSnapshot>> {
    let h: HashMap<String, String> = redis
        .query(
            "reading a job",
            redis::cmd("HGETALL").arg(keys::job(job_id)),
        )
        .await?;
    let now = redis.time_ms().await?;
    Ok(parse_record(&h, now))
}

fn parse_record(h: &HashMap<String, String>, now: i64) -> Option<JobSnapshot> {
    let mut s: JobSnapshot = serde_json::from_str(h.get("data")?).ok()?;
    let hb = h.get("heartbeat").and_then(|v| v.parse::<i64>().ok());
    s.heartbeat_age_ms = hb.map(|hb| (now - hb).max(0));
    s.last_heartbeat = hb.map(iso);
    if s.worker.is_none() {
        s.worker = h.get("worker").cloned();
    }
    // A detached job no worker took yet has no process to lose: it waits.
    let waiting_for_worker = s.detached && s.worker.is_none() && s.state == JobState::Queued;
    if !s.state.is_final()
        && !waiting_for_worker
        && s.heartbeat_age_ms.is_some_and(|a| a > timing().stale_ms)
    {
        s.state = JobState::Stale;
    }
    Some(s)
}

/// Every job that has not ended (queued, running, paused, swapping, or
/// stale when its heartbeat stopped), by anyone, oldest first.
pub async fn active(redis: &Redis) -> Result<Vec<JobSnapshot>> {
    Ok(live_records(redis).await?.0)
}

/// The live jobs' records, and the ids in the live set whose record is gone
/// (expired long after their process died).
pub(crate) async fn live_records(redis: &Redis) -> Result<(Vec<JobSnapshot>, Vec<String>)> {
    let mut ids: Vec<String> = Vec::new();
    let mut live = SetScan::new(redis, keys::jobs_live(), "listing live jobs");
    while let Some(batch) = live.next().await? {
        ids.extend(batch);
    }
    let now = redis.time_ms().await?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for chunk in ids.chunks(100) {
        let mut p = redis::pipe();
        for id in chunk {
            p.cmd("HGETALL").arg(keys::job(id));
        }
        let hs: Vec<HashMap<String, String>> = redis.pipe("reading live jobs", &p).await?;
        for (id, h) in chunk.iter().zip(&hs) {
            match parse_record(h, now) {
                Some(s) => out.push(s),
                None if h.is_empty() => missing.push(id.clone()),
                None => {}
            }
        }
    }
    out.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
    Ok((out, missing))
}

/// A control request for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    Pause,
    Resume,
    Cancel,
}

/// Writes pause/resume/cancel into a live job's control field; the instance
/// running it obeys at its next batch.
pub async fn control(
    redis: &Redis,
    actor: &Actor,
    job_id: &str,
    req: ControlRequest,
) -> Result<JobSnapshot> {
    let what = match req {
        ControlRequest::Pause => "pause a warm job",
        ControlRequest::Resume => "resume a warm job",
        ControlRequest::Cancel => "cancel a warm job",
    };
    actor.require_write(what)?;
    let live: bool = redis
        .query(
            "looking up the job",
            redis::cmd("SISMEMBER").arg(keys::jobs_live()).arg(job_id),
        )
        .await?;
    if !live {
        return Err(Error::NoSuchJob(job_id.to_string()));
    }
    let value = match req {
        ControlRequest::Pause => "pause",
        ControlRequest::Resume => "run",
        ControlRequest::Cancel => "cancel",
    };
    let before = read(redis, job_id)
        .await?
        .ok_or_else(|| Error::NoSuchJob(job_id.to_string()))?;
    let params = serde_json::json!({"jobId": job_id, "request": value});
    use crate::governance::audit::{self, actions};
    let intent = audit::begin(
        actor,
        actions::JOB_CONTROLLED,
        what,
        Some(before.datasource_id),
        &params,
    )
    .await?;
    let result = async {
        let _: () = redis
            .query(
                "writing the job control",
                redis::cmd("HSET")
                    .arg(keys::job(job_id))
                    .arg("control")
                    .arg(value),
            )
            .await?;
        read(redis, job_id)
            .await?
            .ok_or_else(|| Error::NoSuchJob(job_id.to_string()))
    }
    .await;
    intent.finish(actor, params, &result).await;
    result
}

/// The seed's warming-status shape.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmingStatus {
    pub active_jobs: Vec<JobSnapshot>,
    pub recent_jobs: Vec<RecentJob>,
    /// The workers (agents) alive now, which run detached jobs.
    pub workers: Vec<WorkerInfo>,
}

/// One ended job from the history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentJob {
    pub job_id: String,
    pub datasource_id: DsId,
    pub datasource_name: String,
    pub state: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub rows_processed: i64,
    pub entries_cached: i64,
    pub indexes_cached: i64,
    pub success: bool,
    pub error: Option<String>,
    pub owner: String,
    /// Earlier attempts whose worker died (from the job's record while it
    /// is kept, a day after the end).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

impl From<&JobRecord> for RecentJob {
    fn from(r: &JobRecord) -> Self {
        RecentJob {
            job_id: r.job_id.clone(),
            datasource_id: r.datasource_id,
            datasource_name: r.datasource_name.clone(),
            state: r.state.clone(),
            started_at: r.started_at_ms.map(iso),
            completed_at: r.completed_at_ms.map(iso),
            duration_ms: r.duration_ms,
            rows_processed: r.rows_processed,
            entries_cached: r.entries_cached,
            indexes_cached: r.indexes_cached,
            success: r.state == "succeeded" || r.state == "skipped",
            error: r.error.clone(),
            owner: r.actor.clone(),
            attempts: Vec::new(),
        }
    }
}

/// Active jobs from Redis and the most recent ended ones from the store.
pub async fn status(redis: &Redis, store: &Store, recent: i64) -> Result<WarmingStatus> {
    let active_jobs = active(redis).await?;
    let recent_jobs: Vec<RecentJob> = store
        .recent_jobs(None, recent + active_jobs.len() as i64)
        .await?
        .iter()
        .filter(|r| {
            !matches!(
                r.state.as_str(),
                "queued" | "running" | "paused" | "swapping"
            )
        })
        .take(recent as usize)
        .map(RecentJob::from)
        .collect();
    let recent_jobs = with_attempts(redis, recent_jobs).await?;
    Ok(WarmingStatus {
        active_jobs,
        recent_jobs,
        workers: workers(redis).await?,
    })
}

/// Fills the ended jobs' earlier attempts from their records in Redis.
async fn with_attempts(redis: &Redis, mut jobs: Vec<RecentJob>) -> Result<Vec<RecentJob>> {
    if jobs.is_empty() {
        return Ok(jobs);
    }
    let mut p = redis::pipe();
    for j in &jobs {
        p.cmd("HGET").arg(keys::job(&j.job_id)).arg("data");
    }
    let data: Vec<Option<String>> = redis.pipe("reading ended jobs", &p).await?;
    for (j, d) in jobs.iter_mut().zip(data) {
        if let Some(s) = d.and_then(|d| serde_json::from_str::<JobSnapshot>(&d).ok()) {
            j.attempts = s.attempts;
        }
    }
    Ok(jobs)
}
