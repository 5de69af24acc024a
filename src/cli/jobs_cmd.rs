//! `cachedeck status` and `cachedeck pause|resume|cancel JOB_ID`.

use super::Ctx;
use crate::actor::Origin;
use crate::error::Result;
use crate::jobs::{self, ControlRequest};

pub async fn status(ctx: &Ctx) -> Result<i32> {
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    let st = jobs::status(redis, store, 20).await?;
    ctx.print(&st, || {
        let mut out = String::new();
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
                    j.pause_reason
                        .as_deref()
                        .map(|r| format!("  ({r})"))
                        .unwrap_or_default()
                ));
            }
        }
        if !st.recent_jobs.is_empty() {
            out.push_str("recent:\n");
            for j in &st.recent_jobs {
                out.push_str(&format!(
                    "  {} DS #{} {:<28} {:<9} {:>8} ms  {} entries{}\n",
                    j.job_id,
                    j.datasource_id,
                    j.datasource_name,
                    j.state,
                    j.duration_ms.unwrap_or(0),
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
