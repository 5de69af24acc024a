//! The scheduler, run by `cachedeck agent` and by the GUI backend: however
//! many instances are up, and whatever their machines' time zones, each
//! scheduled warm runs exactly once.
//!
//! - **Leader lease** (`keys::leader()`): `SET NX PX`, renewed by a
//!   compare-and-extend script; only the leader evaluates schedules.
//! - **Tick claim** (`keys::tick(schedule, minute)`): `SET NX` per schedule
//!   and run minute, taken before firing, so even two leaders overlapping
//!   through a lease hand-over fire a run once.
//! - Time is Redis `TIME` (or injected, in [`Scheduler::step_at`]).
//! - **Missed runs**: runs between the schedule's last evaluated tick and
//!   now that are older than [`CATCH_UP`] happened while nobody was up;
//!   they are reported once (audit `schedule_missed`, a warning, the
//!   schedule's `missed_runs`), not silently skipped. Younger ones (a lease
//!   hand-over) are still run.
//! - **Abandoned jobs**: a job whose heartbeat is stale belonged to a
//!   process that stopped (e.g. an agent killed mid-warm). The leader ends
//!   it through `jobs::reap` (as `cachedeck status` and the window also do):
//!   reported (audit `job_abandoned`, a warning) and cleaned up once the
//!   warm lock's lease has expired.
//! - **Health alerts** (optional): see [`super::alerts`].
//!
//! A read-only instance runs no schedules (it would write).

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use redis::Script;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::alerts::{self, AlertConfig, AlertOutcome};
use super::audit::{self, actions, results};
use super::cron::CronSpec;
use super::schedules::{CATCH_UP, watermark};
use crate::actor::Origin;
use crate::cache::{lock, meta};
use crate::config::Defaults;
use crate::error::{Error, Result};
use crate::jobs::{self, JobContext, JobSnapshot};
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;
use crate::store::Schedule;

/// How long the leader lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often an instance evaluates schedules (and renews its lease).
pub const POLL: Duration = Duration::from_secs(5);
/// How long a tick claim is kept (well past any catch-up).
pub const TICK_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
/// A "before stale" schedule warms a cache whose age reached this share of
/// its stale-after.
pub const BEFORE_STALE_RATIO: f64 = 0.9;
/// How many ended jobs' snapshots a scheduler keeps for `wait_jobs`.
pub const KEEP_FINISHED: usize = 256;
/// The start of the history cause of a job whose process stopped.
pub use crate::jobs::ABANDONED_CAUSE;

static LEAD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/leader.lua")));
static RESIGN: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/release.lua")));

/// Takes or renews the leader lease for `instance`; true while it leads.
pub async fn lead(redis: &Redis, instance: &str, lease: Duration) -> Result<bool> {
    let mut conn = redis.conn();
    let n: i64 = LEAD
        .key(keys::leader())
        .arg(instance)
        .arg(lease.as_millis() as u64)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("taking the scheduler lease", e))?;
    Ok(n == 1)
}

/// Gives the leader lease up if `instance` holds it (clean shutdown).
pub async fn resign(redis: &Redis, instance: &str) -> Result<()> {
    let mut conn = redis.conn();
    let _: i64 = RESIGN
        .key(keys::leader())
        .arg(instance)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("giving up the scheduler lease", e))?;
    Ok(())
}

/// Claims the run of `schedule_id` at `tick_ms` (a whole minute) for
/// `instance`; exactly one claim per schedule and minute succeeds.
pub async fn claim_tick(
    redis: &Redis,
    schedule_id: i64,
    tick_ms: i64,
    instance: &str,
) -> Result<bool> {
    let got: Option<String> = redis
        .query(
            "claiming a schedule tick",
            redis::cmd("SET")
                .arg(keys::tick(schedule_id, tick_ms.div_euclid(60_000)))
                .arg(instance)
                .arg("NX")
                .arg("EX")
                .arg(TICK_TTL.as_secs()),
        )
        .await?;
    Ok(got.is_some())
}

/// How a scheduler instance behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This instance's name in the lease and the tick claims (unique).
    pub instance_id: String,
    /// Leader lease length.
    pub lease: Duration,
    /// Time between evaluations.
    pub poll: Duration,
    /// Health alerts, when a webhook is configured.
    pub alerts: Option<AlertConfig>,
    /// Time between health checks for alerts.
    pub health_every: Duration,
    /// Audit rows older than this are pruned when the scheduler starts.
    pub audit_retention: Duration,
}

impl SchedulerConfig {
    /// Defaults with a fresh instance id built from `kind` (agent, gui) and
    /// this process.
    pub fn new(kind: &str) -> SchedulerConfig {
        SchedulerConfig {
            instance_id: format!(
                "{kind}:{}:{}:{}",
                crate::store::os_identity(),
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            lease: LEASE,
            poll: POLL,
            alerts: None,
            health_every: Duration::from_secs(60),
            audit_retention: audit::DEFAULT_RETENTION,
        }
    }

    /// [`SchedulerConfig::new`] with the profile's alert and retention settings.
    pub fn from_defaults(kind: &str, d: &Defaults, profile: &str) -> Result<SchedulerConfig> {
        let mut c = SchedulerConfig::new(kind);
        c.alerts = AlertConfig::from_defaults(d, profile)?;
        c.audit_retention = audit::retention(&d.audit_retention)?;
        Ok(c)
    }
}

/// One schedule run that this instance fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fired {
    /// The schedule.
    pub schedule_id: i64,
    /// The run's minute (ms since the epoch).
    pub tick_ms: i64,
    /// The datasources it queued.
    pub datasource_ids: Vec<DsId>,
    /// Their job ids.
    pub job_ids: Vec<String>,
    /// Earlier runs claimed in the same step and folded into this one.
    pub coalesced: u64,
}

/// Missed runs that this instance reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missed {
    /// The schedule.
    pub schedule_id: i64,
    /// How many runs were missed (at least this many when `at_least`).
    pub count: u64,
    /// The enumeration was cut at `cron::MAX_ENUMERATED`.
    pub at_least: bool,
    /// The first missed run (ms since the epoch).
    pub first_ms: i64,
    /// The last missed run (ms since the epoch).
    pub last_ms: i64,
}

/// A job whose process stopped, found and ended by this instance.
pub use crate::jobs::Abandoned;

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Whether this instance held the leader lease (nothing else is done
    /// by a follower).
    pub leader: bool,
    /// Runs fired.
    pub fired: Vec<Fired>,
    /// Missed runs reported.
    pub missed: Vec<Missed>,
    /// Abandoned jobs cleaned.
    pub abandoned: Vec<Abandoned>,
    /// Jobs whose process stopped but whose warm lock has not expired yet
    /// (cleaned at a later step).
    pub abandoned_waiting: Vec<String>,
    /// Health alerts, when a check ran.
    pub alerts: Option<AlertOutcome>,
}

/// One scheduler instance.
pub struct Scheduler {
    /// Connections, store and the actor (its origin becomes `schedule` for
    /// the warms it fires).
    jc: JobContext,
    /// Behaviour.
    cfg: SchedulerConfig,
    /// Warm jobs this instance fired and is running.
    running: Mutex<Vec<JoinHandle<()>>>,
    /// The final snapshots of fired jobs not yet collected by
    /// [`Scheduler::wait_jobs`] (the newest [`KEEP_FINISHED`]).
    finished: std::sync::Arc<Mutex<std::collections::VecDeque<JobSnapshot>>>,
    /// Cancels those jobs on shutdown (they clean up their shadow keys).
    job_cancel: CancellationToken,
    /// When the last health check for alerts ran (ms since the epoch).
    last_health_ms: Mutex<Option<i64>>,
    /// Whether this instance leads now (shown in its worker registration).
    leader: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Scheduler {
    /// A scheduler running warms with `jc` (its actor must be allowed to write).
    pub fn new(jc: JobContext, cfg: SchedulerConfig) -> Scheduler {
        Scheduler {
            jc,
            cfg,
            running: Mutex::new(Vec::new()),
            finished: Default::default(),
            job_cancel: CancellationToken::new(),
            last_health_ms: Mutex::new(None),
            leader: Default::default(),
        }
    }

    /// A flag that says whether this instance leads, kept up to date by
    /// [`Self::run`].
    pub fn leader_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.leader.clone()
    }

    /// This instance's id.
    pub fn instance_id(&self) -> &str {
        &self.cfg.instance_id
    }

    /// Runs until `shutdown` is cancelled: prunes the audit log once, then
    /// evaluates every `poll`. On shutdown it cancels the warms it runs,
    /// waits for them to clean up, and gives the lease up.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        if let Err(e) = self.jc.actor.check_write("run schedules") {
            tracing::warn!("this instance runs no schedules: {e}");
            shutdown.cancelled().await;
            return Ok(());
        }
        match audit::prune(&self.jc.store, &self.jc.actor, self.cfg.audit_retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "pruned {n} audit rows older than {}",
                humantime::format_duration(self.cfg.audit_retention)
            ),
            Err(e) => tracing::warn!("could not prune the audit log: {e}"),
        }
        tracing::info!(
            "scheduler {} started (Redis {}, store {})",
            self.cfg.instance_id,
            self.jc.redis.label(),
            self.jc.store.label()
        );
        let mut was_leader = false;
        loop {
            match self.step().await {
                Ok(r) => {
                    if r.leader != was_leader {
                        tracing::info!(
                            "scheduler {} {} the leader",
                            self.cfg.instance_id,
                            if r.leader { "is now" } else { "is no longer" }
                        );
                        was_leader = r.leader;
                        self.leader
                            .store(r.leader, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(e) => tracing::warn!("scheduler step failed: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.cfg.poll) => {}
            }
        }
        tracing::info!(
            "scheduler {} stopping: cancelling its warms",
            self.cfg.instance_id
        );
        self.stop().await;
        tracing::info!("scheduler {} stopped", self.cfg.instance_id);
        Ok(())
    }

    /// Cancels the warms this instance fired, waits for them to remove their
    /// shadow keys, and gives the leader lease up (the end of [`Self::run`],
    /// for callers that drive [`Self::step`] themselves).
    pub async fn stop(&self) {
        self.job_cancel.cancel();
        self.wait_jobs().await;
        if let Err(e) = resign(&self.jc.redis, &self.cfg.instance_id).await {
            tracing::warn!("could not give up the scheduler lease: {e}");
        }
    }

    /// Waits for every warm this instance fired to end, and returns the
    /// final snapshots of those that ended since the last call.
    pub async fn wait_jobs(&self) -> Vec<JobSnapshot> {
        let handles: Vec<_> = match self.running.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(_) => Vec::new(),
        };
        for h in handles {
            if let Err(e) = h.await {
                tracing::warn!("a scheduled warm task stopped: {e}");
            }
        }
        match self.finished.lock() {
            Ok(mut g) => g.drain(..).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// One evaluation at Redis time.
    pub async fn step(&self) -> Result<StepReport> {
        let now = self.jc.redis.time_ms().await?;
        self.step_at(now).await
    }

    /// One evaluation as if it were `now_ms` (tests drive ticks with this;
    /// leases and heartbeats still use Redis time).
    pub async fn step_at(&self, now_ms: i64) -> Result<StepReport> {
        self.jc.actor.check_write("run schedules")?;
        let mut report = StepReport {
            leader: lead(&self.jc.redis, &self.cfg.instance_id, self.cfg.lease).await?,
            ..Default::default()
        };
        if !report.leader {
            return Ok(report);
        }
        if let Ok(mut g) = self.running.lock() {
            g.retain(|h| !h.is_finished());
        }
        for s in self.jc.store.schedules().await? {
            if !s.enabled {
                continue;
            }
            if let Err(e) = self.evaluate(&s, now_ms, &mut report).await {
                tracing::warn!("schedule {} ({} {}): {e}", s.id, s.cron, s.tz);
            }
        }
        self.reap_abandoned(&mut report).await?;
        if let Some(cfg) = &self.cfg.alerts {
            let due = match self.last_health_ms.lock() {
                Ok(mut last) => {
                    let due =
                        last.is_none_or(|t| now_ms - t >= self.cfg.health_every.as_millis() as i64);
                    if due {
                        *last = Some(now_ms);
                    }
                    due
                }
                Err(_) => false,
            };
            if due {
                match alerts::check_and_alert(&self.jc.redis, &self.jc.store, cfg).await {
                    Ok(o) => report.alerts = Some(o),
                    Err(e) => tracing::warn!("health check for alerts failed: {e}"),
                }
            }
        }
        Ok(report)
    }

    async fn evaluate(&self, s: &Schedule, now_ms: i64, report: &mut StepReport) -> Result<()> {
        let spec = CronSpec::parse(&s.cron, Some(&s.tz))?;
        let now_min = now_ms.div_euclid(60_000) * 60_000;
        let late = now_min - CATCH_UP.as_millis() as i64;
        let wm = watermark(s);
        // Runs older than the catch-up window: nobody was up to run them.
        let (missed, cut) = spec.runs_between(wm, late - 1);
        if let (Some(&first), Some(&last)) = (missed.first(), missed.last())
            && claim_tick(
                &self.jc.redis,
                s.id,
                last,
                &format!("missed:{}", self.cfg.instance_id),
            )
            .await?
        {
            let m = Missed {
                schedule_id: s.id,
                count: missed.len() as u64,
                at_least: cut,
                first_ms: first,
                last_ms: last,
            };
            tracing::warn!(
                "schedule {} ({} {}) missed {}{} run(s) between {} and {}: no scheduler was up",
                s.id,
                s.cron,
                s.tz,
                if cut { "at least " } else { "" },
                m.count,
                crate::jobs::iso(first),
                crate::jobs::iso(last)
            );
            self.jc
                .store
                .add_missed_runs(s.id, m.count as i64, last)
                .await?;
            audit::record_via(
                &self.jc.actor,
                actions::SCHEDULE_MISSED,
                s.datasource_id,
                serde_json::json!({
                    "scheduleId": s.id,
                    "cron": s.cron,
                    "tz": s.tz,
                    "missed": m.count,
                    "atLeast": cut,
                    "first": crate::jobs::iso(first),
                    "last": crate::jobs::iso(last),
                }),
                results::MISSED,
                Some("no scheduler was up at these times"),
            )
            .await;
            report.missed.push(m);
        }
        // Runs due now (or within the catch-up window). Several claimed at
        // once (after a hand-over) are one warm: warming twice in a row
        // would only redo the same work.
        let (due, _) = spec.runs_between(wm.max(late - 1), now_min);
        let mut claimed = Vec::new();
        for tick in due {
            if claim_tick(&self.jc.redis, s.id, tick, &self.cfg.instance_id).await? {
                claimed.push(tick);
            }
        }
        if let Some(&tick) = claimed.last() {
            let mut fired = self.fire(s, tick, now_ms).await;
            fired.coalesced = claimed.len() as u64 - 1;
            self.jc.store.mark_schedule_tick(s.id, tick, true).await?;
            report.fired.push(fired);
        }
        self.jc.store.mark_schedule_tick(s.id, now_min, false).await
    }

    /// Which datasources a run of `s` warms.
    async fn targets(&self, s: &Schedule, now_ms: i64) -> Result<Vec<DsId>> {
        let candidates = match s.datasource_id {
            Some(id) => match self.jc.store.datasource(id).await {
                Ok(d) => vec![d],
                Err(Error::NoSuchDatasource(_)) => Vec::new(),
                Err(e) => return Err(e),
            },
            None => self.jc.store.datasources().await?,
        };
        let mut out = Vec::new();
        for d in candidates.into_iter().filter(|d| d.enabled) {
            if let Some(holder) = lock::holder(&self.jc.redis, d.id).await? {
                tracing::info!(
                    "schedule {}: DS #{} is being warmed by job {holder}; not warming it again",
                    s.id,
                    d.id
                );
                continue;
            }
            if s.warm_before_stale {
                let stale_ms = d.stale_after_secs as f64 * 1000.0;
                let near_stale = match meta::read(&self.jc.redis, d.id).await? {
                    Some(m) => (now_ms - m.warmed_at_ms) as f64 >= BEFORE_STALE_RATIO * stale_ms,
                    None => true,
                };
                if !near_stale {
                    continue;
                }
            }
            out.push(d.id);
        }
        Ok(out)
    }

    /// Queues the warms of one run and starts them; never fails (a failure
    /// is logged and audited).
    async fn fire(&self, s: &Schedule, tick: i64, now_ms: i64) -> Fired {
        let mut fired = Fired {
            schedule_id: s.id,
            tick_ms: tick,
            datasource_ids: Vec::new(),
            job_ids: Vec::new(),
            coalesced: 0,
        };
        let mut jc = self.jc.clone();
        jc.actor.origin = Origin::Schedule;
        let outcome = async {
            let ids = self.targets(s, now_ms).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            jobs::submit(&jc, &ids, false).await
        }
        .await;
        let params = |fired: &Fired| {
            serde_json::json!({
                "scheduleId": s.id,
                "cron": s.cron,
                "tz": s.tz,
                "tick": crate::jobs::iso(tick),
                "beforeStale": s.warm_before_stale,
                "datasources": fired.datasource_ids,
                "jobIds": fired.job_ids,
            })
        };
        match outcome {
            Ok(snaps) => {
                for snap in snaps {
                    fired.datasource_ids.push(snap.datasource_id);
                    fired.job_ids.push(snap.job_id.clone());
                    let jc = jc.clone();
                    let cancel = self.job_cancel.child_token();
                    let finished = self.finished.clone();
                    let h = tokio::spawn(async move {
                        let end = jobs::run_job(&jc, snap, cancel, |_| {}).await;
                        if let Ok(mut g) = finished.lock() {
                            if g.len() == KEEP_FINISHED {
                                g.pop_front();
                            }
                            g.push_back(end);
                        }
                    });
                    if let Ok(mut g) = self.running.lock() {
                        g.push(h);
                    }
                }
                tracing::info!(
                    "schedule {} fired for {}: {} warm(s) queued",
                    s.id,
                    crate::jobs::iso(tick),
                    fired.job_ids.len()
                );
                audit::record_via(
                    &jc.actor,
                    actions::SCHEDULE_FIRED,
                    s.datasource_id,
                    params(&fired),
                    results::OK,
                    None,
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(
                    "schedule {} could not fire for {}: {e}",
                    s.id,
                    crate::jobs::iso(tick)
                );
                audit::record_via(
                    &jc.actor,
                    actions::SCHEDULE_FIRED,
                    s.datasource_id,
                    params(&fired),
                    results::FAILED,
                    Some(&e.to_string()),
                )
                .await;
            }
        }
        fired
    }

    /// Finds jobs whose process stopped, reports them and cleans up
    /// (`jobs::reap`, which any instance that may write also runs).
    async fn reap_abandoned(&self, report: &mut StepReport) -> Result<()> {
        let r = jobs::reap(&self.jc.redis, &self.jc.store, &self.jc.actor).await?;
        report.abandoned.extend(r.abandoned);
        report.abandoned_waiting.extend(r.waiting);
        Ok(())
    }
}
