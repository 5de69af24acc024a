//! Workers: every `cachedeck agent` takes detached jobs (`cachedeck warm
//! --detach`, the window) from the pending queue and runs them under the
//! global concurrency limit, heartbeating as any job does. Workers register
//! themselves (`keys::worker`, expiring unless renewed; `keys::workers`
//! indexes them by heartbeat), so `cachedeck status` and the window list
//! them and a submitter knows whether anybody will run its job.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::Script;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{JobSnapshot, JobState, iso, runner::JobContext, slots, timing};
use crate::error::{Error, Result};
use crate::keys;
use crate::redis_conn::Redis;

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_take.lua")));

/// Most workers a listing reads.
const MAX_LISTED: isize = 200;
/// Most pending entries one take looks at (dropping ended ones).
const TAKE_LOOK: u32 = 16;

/// One registered worker, as `status --json` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// The agent's instance name (unique among running instances).
    pub instance: String,
    /// The machine it runs on (user@host).
    pub host: String,
    /// The cachedeck version it runs.
    pub version: String,
    /// Jobs it runs now.
    pub running_jobs: Vec<String>,
    /// Whether it holds the scheduler's leader lease.
    pub leader: bool,
    /// ISO-8601 UTC start of the worker.
    pub started_at: String,
    /// ISO-8601 UTC time of its last heartbeat.
    pub last_heartbeat: String,
}

/// A worker's registration lasts this long without renewal.
fn ttl_ms() -> i64 {
    timing().stale_ms
}

/// How often a worker renews its registration.
fn heartbeat_every() -> Duration {
    Duration::from_millis((ttl_ms() / 3).clamp(100, 5_000) as u64)
}

/// The workers alive now, by instance name.
pub async fn workers(redis: &Redis) -> Result<Vec<WorkerInfo>> {
    let now = redis.time_ms().await?;
    let names: Vec<String> = redis
        .query(
            "listing the workers",
            redis::cmd("ZRANGEBYSCORE")
                .arg(keys::workers())
                .arg(now - ttl_ms())
                .arg("+inf")
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_LISTED),
        )
        .await?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = redis::pipe();
    for n in &names {
        p.cmd("GET").arg(keys::worker(n));
    }
    let infos: Vec<Option<String>> = redis.pipe("reading the workers", &p).await?;
    let mut out: Vec<WorkerInfo> = infos
        .iter()
        .flatten()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    out.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(out)
}

async fn register(redis: &Redis, info: &mut WorkerInfo) -> Result<()> {
    let now = redis.time_ms().await?;
    info.last_heartbeat = iso(now);
    let json = serde_json::to_string(info).unwrap_or_default();
    let mut p = redis::pipe();
    p.cmd("SET")
        .arg(keys::worker(&info.instance))
        .arg(json)
        .arg("PX")
        .arg(ttl_ms())
        .ignore();
    p.cmd("ZADD")
        .arg(keys::workers())
        .arg(now)
        .arg(&info.instance)
        .ignore();
    // Workers that stopped heartbeating long ago leave the index.
    p.cmd("ZREMRANGEBYSCORE")
        .arg(keys::workers())
        .arg("-inf")
        .arg(now - 10 * ttl_ms())
        .ignore();
    redis.pipe::<()>("registering the worker", &p).await
}

async fn deregister(redis: &Redis, instance: &str) -> Result<()> {
    let mut p = redis::pipe();
    p.cmd("DEL").arg(keys::worker(instance)).ignore();
    p.cmd("ZREM").arg(keys::workers()).arg(instance).ignore();
    redis.pipe::<()>("removing the worker", &p).await
}

/// One worker: takes detached jobs and runs them until shut down.
pub struct Worker {
    /// Connections, store and the agent's actor, which runs the jobs.
    jc: JobContext,
    /// What it registers (running jobs and leadership updated as they change).
    info: Mutex<WorkerInfo>,
    /// Whether this instance leads the schedulers (set by its scheduler).
    leader: Arc<AtomicBool>,
    /// Jobs it runs now.
    running: Arc<Mutex<BTreeSet<String>>>,
    /// Its jobs still waiting for a run slot: it takes no more meanwhile, so
    /// other workers get their share.
    waiting: Arc<AtomicUsize>,
    /// Cancels its jobs on shutdown (they clean up their shadow keys).
    job_cancel: CancellationToken,
}

impl Worker {
    /// A worker named `instance`, running jobs with `jc`.
    pub fn new(jc: JobContext, instance: &str, leader: Arc<AtomicBool>) -> Worker {
        let info = WorkerInfo {
            instance: instance.to_string(),
            host: crate::store::os_identity(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: iso(chrono::Utc::now().timestamp_millis()),
            ..Default::default()
        };
        Worker {
            jc,
            info: Mutex::new(info),
            leader,
            running: Default::default(),
            waiting: Arc::new(AtomicUsize::new(0)),
            job_cancel: CancellationToken::new(),
        }
    }

    /// Registers, takes and runs jobs until `shutdown`; then cancels its
    /// jobs, waits for them to clean up and deregisters.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        self.jc.actor.check_write("run warm jobs")?;
        let instance = self.instance();
        tracing::info!("worker {instance} started");
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        let mut last_beat: Option<Instant> = None;
        loop {
            if last_beat.is_none_or(|t| t.elapsed() >= heartbeat_every()) {
                match self.heartbeat().await {
                    Ok(()) => last_beat = Some(Instant::now()),
                    Err(e) => tracing::warn!("worker {instance}: {e}"),
                }
            }
            tasks.retain(|t| !t.is_finished());
            match self.take_next().await {
                Ok(Some(snap)) => {
                    tracing::info!(
                        "worker {instance} took job {} (DS #{} {})",
                        snap.job_id,
                        snap.datasource_id,
                        snap.datasource_name
                    );
                    tasks.push(self.spawn(snap));
                    // Registered at once with its new job.
                    last_beat = None;
                    continue;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("worker {instance} could not take a job: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(timing().claim_poll) => {}
            }
        }
        tracing::info!("worker {instance} stopping: cancelling its warms");
        self.job_cancel.cancel();
        for t in tasks {
            let _ = t.await;
        }
        if let Err(e) = deregister(&self.jc.redis, &instance).await {
            tracing::warn!("worker {instance}: {e}");
        }
        Ok(())
    }

    fn instance(&self) -> String {
        self.info
            .lock()
            .map(|i| i.instance.clone())
            .unwrap_or_default()
    }

    async fn heartbeat(&self) -> Result<()> {
        let mut info = self
            .info
            .lock()
            .map_err(|_| Error::Invalid("worker state poisoned".into()))?
            .clone();
        info.leader = self.leader.load(Ordering::Relaxed);
        info.running_jobs = self
            .running
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        register(&self.jc.redis, &mut info).await
    }

    /// Takes the oldest pending job when this worker has none waiting for
    /// a slot and a slot is free.
    async fn take_next(&self) -> Result<Option<JobSnapshot>> {
        if self.waiting.load(Ordering::SeqCst) > 0
            || slots::in_use(&self.jc.redis).await? >= u64::from(self.jc.concurrency.max(1))
        {
            return Ok(None);
        }
        let instance = self.instance();
        let mut conn = self.jc.redis.conn();
        let id: Option<String> = TAKE
            .key(keys::jobs_pending())
            .key(keys::jobs_queue())
            .key(keys::jobs_live())
            .arg(keys::job_prefix())
            .arg(&instance)
            .arg(TAKE_LOOK)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("taking a pending job", e))?;
        let Some(id) = id else { return Ok(None) };
        let Some(mut snap) = super::read(&self.jc.redis, &id).await? else {
            return Ok(None);
        };
        snap.worker = Some(instance);
        snap.state = JobState::Queued;
        Ok(Some(snap))
    }

    fn spawn(&self, snap: JobSnapshot) -> tokio::task::JoinHandle<()> {
        let jc = self.jc.clone();
        let cancel = self.job_cancel.child_token();
        let running = self.running.clone();
        let waiting = self.waiting.clone();
        let id = snap.job_id.clone();
        if let Ok(mut r) = running.lock() {
            r.insert(id.clone());
        }
        waiting.fetch_add(1, Ordering::SeqCst);
        // Whether this job still counts as waiting for a slot.
        let still_waiting = Arc::new(AtomicBool::new(true));
        tokio::spawn(async move {
            let w = waiting.clone();
            let sw = still_waiting.clone();
            let end = super::run_job(&jc, snap, cancel, move |s| {
                if s.state != JobState::Queued && sw.swap(false, Ordering::SeqCst) {
                    w.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .await;
            if still_waiting.swap(false, Ordering::SeqCst) {
                waiting.fetch_sub(1, Ordering::SeqCst);
            }
            if let Ok(mut r) = running.lock() {
                r.remove(&id);
            }
            tracing::info!(
                "job {} (DS #{}) ended {}",
                end.job_id,
                end.datasource_id,
                end.state.as_str()
            );
        })
    }
}
