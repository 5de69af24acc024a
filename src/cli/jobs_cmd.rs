//! `cachedeck status` and `cachedeck pause|resume|cancel JOB_ID`.

use super::Ctx;
use crate::actor::Origin;
use crate::error::Result;
use crate::jobs::{self, ControlRequest, JobSnapshot, JobState};

pub async fn status(ctx: &Ctx) -> Result<i32> {
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    // Jobs whose process stopped are ended here when this admin may write
    // (any instance may; no agent is needed). A failed clean-up never hides
    // the status: it shows them as stale.
    let mut cleaned = Vec::new();
    if let Ok(actor) = ctx.actor().await
        && actor.can_write
    {
        match jobs::reap(redis, store, &actor).await {
            Ok(r) => cleaned = r.abandoned,
            Err(e) => eprintln!("warning: could not clean up stopped jobs: {e}"),
        }
    }
    let st = jobs::status(redis, store, 20).await?;
    ctx.print(&st, || {
        let mut out = String::new();
        for a in &cleaned {
            out.push_str(&format!(
                "cleaned up job {} (DS #{}): its process stopped; marked failed\n",
                a.job_id, a.datasource_id
            ));
        }
        if st.active_jobs.is_empty() {
            out.push_str("no active warm jobs\n");
        } else {
            out.push_str("active:\n");
            for j in &st.active_jobs {
                out.push_str(&format!(
                    "  {} DS #{} {:<28} {:<9} {:>5.1}%  {} rows{}\n",
                    j.job_id,
                    j.datasource_id,
                    j.datasource_name,
                    j.state.as_str(),
                    j.progress,
                    j.rows_processed,
                    active_note(j)
                ));
            }
        }
        if st.workers.is_empty() {
            out.push_str("no workers alive (start one with `cachedeck agent`)\n");
        } else {
            out.push_str("workers:\n");
            for w in &st.workers {
                out.push_str(&format!(
                    "  {} on {} (v{}){}: {}\n",
                    w.instance,
                    w.host,
                    w.version,
                    if w.leader { ", leader" } else { "" },
                    if w.running_jobs.is_empty() {
                        "idle".to_string()
                    } else {
                        format!("running {}", w.running_jobs.join(", "))
                    }
                ));
            }
        }
        if !st.recent_jobs.is_empty() {
            out.push_str("recent:\n");
            for j in &st.recent_jobs {
                out.push_str(&format!(
                    "  {} DS #{} {:<28} {:<9} {:>11}  {} entries{}\n",
                    j.job_id,
                    j.datasource_id,
                    j.datasource_name,
                    j.state,
                    j.duration_ms
                        .map(|d| format!("{d} ms"))
                        .unwrap_or_else(|| "-".into()),
                    j.entries_cached,
                    j.error
                        .as_deref()
                        .map(|e| format!("  {e}"))
                        .unwrap_or_default()
                ));
            }
        }
        out.trim_end().to_string()
    });
    Ok(0)
}

/// What follows an active job's line: why it is paused, or when a stale
/// one was last heard of.
fn active_note(j: &JobSnapshot) -> String {
    if j.state == JobState::Stale {
        let age = j
            .heartbeat_age_ms
            .map(|a| format!(", {} s ago", a / 1000))
            .unwrap_or_default();
        return format!(
            "  (last heartbeat {}{age}; its process stopped or stalls; cleaned up once its warm lock expires)",
            j.last_heartbeat.as_deref().unwrap_or("never")
        );
    }
    if j.state == JobState::Queued {
        let who = match &j.worker {
            Some(w) => format!("taken by worker {w}"),
            None if j.detached => "waiting for a worker".to_string(),
            None => "waiting for a free warm slot".to_string(),
        };
        let est = j
            .estimated_duration_ms
            .map(|ms| format!(", estimated {}", super::warm::short_duration(ms)))
            .unwrap_or_default();
        return format!("  ({who}{est})");
    }
    let worker = j
        .worker
        .as_deref()
        .map(|w| format!("  (worker {w})"))
        .unwrap_or_default();
    j.pause_reason
        .as_deref()
        .map(|r| format!("  ({r})"))
        .unwrap_or_default()
        + &worker
}

pub async fn control(ctx: &Ctx, job_id: &str, req: ControlRequest) -> Result<i32> {
    let redis = ctx.redis().await?;
    let mut actor = ctx.actor().await?;
    actor.origin = Origin::Cli;
    let snap = jobs::control(redis, &actor, job_id, req).await?;
    let verb = match req {
        ControlRequest::Pause => "pause",
        ControlRequest::Resume => "resume",
        ControlRequest::Cancel => "cancel",
    };
    ctx.print(&snap, || {
        format!(
            "asked job {job_id} (DS #{}) to {verb}; it obeys at its next batch",
            snap.datasource_id
        )
    });
    Ok(0)
}
