//! The window's scheduler: while Redis and the store are both connected, the
//! window evaluates schedules like `cachedeck agent` does (the same
//! `governance::scheduler::Scheduler`, leader lease and once-per-tick
//! claims, so a window and agents together still fire each run once). It
//! drives the scheduler's steps itself so that each step's report reaches
//! the window: runs fired, runs missed, abandoned jobs cleaned and errors
//! become notifications (once each), and the leadership and next runs show
//! in Settings. When stopped (a link drops, the profile switches, the
//! window closes) it cancels the warms it fired, waits for them to remove
//! their shadow keys, and gives the lease up — what `Scheduler::run` does.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::protocol::{NextRun, SchedulerState, SchedulerStatus};
use super::{AdminEvent, note_lost, send};
use crate::backend::Emitter;
use crate::backend::ops::{self, Ctx};
use crate::governance::audit;
use crate::governance::cron::CronSpec;
use crate::governance::scheduler::{Scheduler, SchedulerConfig, StepReport};
use crate::jobs;
use crate::store::Store;

/// Longest wait on stop for fired warms to clean up and the lease to go.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Tells the window the scheduler is not running, and why.
pub(super) fn send_stopped(emit: &Emitter, reason: String) {
    send(
        emit,
        AdminEvent::Scheduler(SchedulerStatus {
            state: SchedulerState::Stopped(reason),
            next_runs: Vec::new(),
        }),
    );
}

/// Every schedule with its next run after `now_ms`, soonest first.
pub async fn next_runs(store: &Store, now_ms: i64) -> crate::error::Result<Vec<NextRun>> {
    let mut out: Vec<NextRun> = store
        .schedules()
        .await?
        .into_iter()
        .map(|s| {
            let spec = CronSpec::parse(&s.cron, Some(&s.tz));
            let next_ms = spec.as_ref().ok().and_then(|c| c.next_after(now_ms));
            NextRun {
                schedule_id: s.id,
                target: match s.datasource_id {
                    Some(ds) => format!("DS #{ds}"),
                    None => "all enabled datasources".to_string(),
                },
                cron: s.cron.clone(),
                tz: s.tz.clone(),
                enabled: s.enabled,
                next_local: match (&spec, next_ms) {
                    (Ok(c), Some(ms)) => Some(c.local_iso(ms)),
                    _ => None,
                },
                next_ms,
                problem: spec.err().map(|e| e.to_string()),
            }
        })
        .collect();
    out.sort_by_key(|r| (!r.enabled, r.next_ms.unwrap_or(i64::MAX), r.schedule_id));
    Ok(out)
}

/// The notifications of one step: runs fired (with warms queued), runs
/// missed, abandoned jobs, failed alerts.
pub fn step_notices(r: &StepReport) -> Vec<String> {
    let mut out = Vec::new();
    for f in r.fired.iter().filter(|f| !f.job_ids.is_empty()) {
        let targets = f
            .datasource_ids
            .iter()
            .map(|d| format!("DS #{d}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(format!(
            "Schedule #{} fired for {}: warming {targets}{}",
            f.schedule_id,
            jobs::iso(f.tick_ms),
            if f.coalesced > 0 {
                format!(" ({} earlier runs folded in)", f.coalesced)
            } else {
                String::new()
            }
        ));
    }
    for m in &r.missed {
        out.push(format!(
            "Schedule #{} missed {}{} run(s) between {} and {}: no scheduler was up",
            m.schedule_id,
            if m.at_least { "at least " } else { "" },
            m.count,
            jobs::iso(m.first_ms),
            jobs::iso(m.last_ms)
        ));
    }
    for a in &r.abandoned {
        out.push(format!(
            "Job {} (DS #{}) stopped with its process; marked failed{}",
            a.job_id,
            a.datasource_id,
            if a.shadow_entries_removed + a.shadow_indexes_removed > 0 {
                format!(
                    ", {} shadow entries and {} shadow indexes removed",
                    a.shadow_entries_removed, a.shadow_indexes_removed
                )
            } else {
                String::new()
            }
        ));
    }
    if let Some(a) = &r.alerts
        && !a.sent.is_empty()
    {
        out.push(format!("Health alert sent: {}", a.sent.join(", ")));
    }
    out
}

/// Runs the window's scheduler until `stop` is cancelled.
pub(super) async fn run(mut ctx: Ctx, stop: CancellationToken) {
    let emit = ctx.emit.clone();
    let status = |state: SchedulerState, next_runs: Vec<NextRun>| {
        AdminEvent::Scheduler(SchedulerStatus { state, next_runs })
    };
    send(&emit, status(SchedulerState::Starting, Vec::new()));
    // Permissions as the servers see them: a read-only admin runs nothing.
    match ops::resolve_actor(&ctx).await {
        Ok(actor) => ctx.actor = actor,
        Err(e) => {
            note_lost(&ctx.internal, ctx.generation, &e);
            if !stop.is_cancelled() {
                send_stopped(&emit, format!("cannot check this admin's permissions: {e}"));
            }
            return;
        }
    }
    if let Err(e) = ctx.actor.check_write("run schedules") {
        send_stopped(&emit, format!("this window runs no schedules: {e}"));
        return;
    }
    let setup = ctx.job_context().and_then(|jc| {
        SchedulerConfig::from_defaults("gui", &ctx.resolved.defaults, &ctx.resolved.name)
            .map(|cfg| (jc, cfg))
    });
    let (jc, cfg) = match setup {
        Ok(s) => s,
        Err(e) => {
            let message = format!(
                "cannot run schedules with profile {}: {e}",
                ctx.resolved.name
            );
            send_stopped(&emit, message.clone());
            emit.error(message);
            return;
        }
    };
    let poll = cfg.poll;
    let retention = cfg.audit_retention;
    let sched = Scheduler::new(jc, cfg);
    let instance_id = sched.instance_id().to_string();
    match audit::prune(&ctx.store, &ctx.actor, retention).await {
        Ok(0) => {}
        Ok(n) => tracing::info!("pruned {n} audit rows older than the retention"),
        Err(e) => tracing::warn!("could not prune the audit log: {e}"),
    }
    tracing::info!("window scheduler {instance_id} started");
    let mut last_sent: Option<SchedulerStatus> = None;
    let mut last_error: Option<String> = None;
    let mut leader = false;
    while !stop.is_cancelled() {
        match sched.step().await {
            Ok(r) => {
                leader = r.leader;
                last_error = None;
                for text in step_notices(&r) {
                    emit.notice(text);
                }
                if !r.fired.is_empty() || !r.abandoned.is_empty() {
                    let _ = ctx.internal.send(crate::backend::Internal::RefreshSoon);
                }
            }
            Err(e) => {
                note_lost(&ctx.internal, ctx.generation, &e);
                let message = format!("the window's scheduler: {e}");
                if last_error.as_ref() != Some(&message) && !stop.is_cancelled() {
                    emit.error(message.clone());
                }
                last_error = Some(message);
            }
        }
        let now = match ctx.redis.time_ms().await {
            Ok(t) => t,
            Err(_) => crate::store::now_ms(),
        };
        let next = match next_runs(&ctx.store, now).await {
            Ok(n) => n,
            Err(_) => last_sent
                .as_ref()
                .map(|s| s.next_runs.clone())
                .unwrap_or_default(),
        };
        let current = SchedulerStatus {
            state: SchedulerState::Running {
                instance_id: instance_id.clone(),
                leader,
            },
            next_runs: next,
        };
        if last_sent.as_ref() != Some(&current) && !stop.is_cancelled() {
            send(&emit, AdminEvent::Scheduler(current.clone()));
            last_sent = Some(current);
        }
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
    // Stopping: the warms this window fired are cancelled and remove their
    // shadow keys, then the lease is given up. A lost Redis must not hold
    // the window's exit: the wait is bounded.
    if tokio::time::timeout(STOP_WAIT, sched.stop()).await.is_err() {
        tracing::warn!("the window's scheduler did not stop within {STOP_WAIT:?}");
    }
    tracing::info!("window scheduler {instance_id} stopped");
}
