//! `cachedeck warm`: queues, runs (or follows, when a worker runs them) and
//! reports warm jobs; returns when they end, or at once with `--detach`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{Ctx, WarmArgs};
use crate::actor::Origin;
use crate::error::{Error, Result};
use crate::jobs::{self, JobSnapshot, JobState};

/// How a job shows while it runs.
pub(super) enum Display {
    Bars(MultiProgress, Mutex<HashMap<String, ProgressBar>>),
    Lines(Mutex<HashMap<String, (JobState, std::time::Instant)>>),
    Quiet,
}

impl Display {
    pub(super) fn update(&self, s: &JobSnapshot) {
        match self {
            Display::Bars(multi, bars) => {
                let Ok(mut bars) = bars.lock() else { return };
                let bar = bars.entry(s.job_id.clone()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new(100));
                    b.set_style(
                        ProgressStyle::with_template("{prefix:30} [{bar:30}] {pos:>3}% {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("█▉ "),
                    );
                    b.set_prefix(format!("DS #{} {}", s.datasource_id, s.datasource_name));
                    b
                });
                bar.set_position(s.progress.round() as u64);
                bar.set_message(describe(s));
                if s.state.is_final() {
                    bar.finish_with_message(describe(s));
                }
            }
            Display::Lines(seen) => {
                let Ok(mut seen) = seen.lock() else { return };
                let now = std::time::Instant::now();
                let entry = seen.entry(s.job_id.clone()).or_insert((s.state, now));
                if entry.0 != s.state
                    || now.duration_since(entry.1).as_secs() >= 5
                    || s.state.is_final()
                {
                    *entry = (s.state, now);
                    eprintln!(
                        "DS #{} {}: {}",
                        s.datasource_id,
                        s.datasource_name,
                        describe(s)
                    );
                }
            }
            Display::Quiet => {}
        }
    }
}

pub(super) fn describe(s: &JobSnapshot) -> String {
    let rows = match s.rows_total {
        Some(t) => format!("{} / {} rows", s.rows_processed, t),
        None => format!("{} rows", s.rows_processed),
    };
    match s.state {
        JobState::Queued => "queued (waiting for a free warm slot)".into(),
        JobState::Running => {
            let eta = s
                .eta_ms
                .map(|ms| {
                    format!(
                        " • ETA {}",
                        humantime::format_duration(std::time::Duration::from_secs(ms / 1000))
                    )
                })
                .unwrap_or_default();
            format!("{rows} • {} rows/s{eta}", s.rows_per_second)
        }
        JobState::Paused => format!(
            "paused: {}",
            s.pause_reason.as_deref().unwrap_or("by an admin")
        ),
        JobState::Swapping => format!("{rows} • swapping"),
        JobState::Succeeded => format!(
            "done: {} rows, {} entries, {} indexes in {} ms",
            s.rows_processed,
            s.entries_cached,
            s.indexes_cached,
            s.duration_ms.unwrap_or(0)
        ),
        JobState::Skipped => s
            .warnings
            .first()
            .cloned()
            .unwrap_or_else(|| "skipped".into()),
        JobState::Failed => format!("failed: {}", s.error.as_deref().unwrap_or("unknown error")),
        JobState::Cancelled => "cancelled".into(),
        JobState::Stale => "stale: no heartbeat".into(),
    }
}

pub async fn run(ctx: &Ctx, args: WarmArgs) -> Result<i32> {
    let store = ctx.store().await?;
    let ids: Vec<i64> = if args.all {
        store
            .datasources()
            .await?
            .iter()
            .filter(|d| d.enabled)
            .map(|d| d.id)
            .collect()
    } else {
        args.datasource.clone()
    };
    if ids.is_empty() {
        return Err(Error::Invalid(if args.all {
            "no enabled datasources to warm".into()
        } else {
            "name a datasource (--datasource ID) or pass --all".into()
        }));
    }
    let jc = ctx.job_context(Origin::Cli).await?;
    // One datasource already being warmed is "busy" before anything is queued.
    if !args.all
        && ids.len() == 1
        && let Some(holder) = crate::cache::lock::holder(&jc.redis, ids[0]).await?
    {
        return Err(Error::AlreadyWarming { ds: ids[0], holder });
    }
    if !args.all && ids.len() == 1 {
        crate::cache::lock::check_app_lock(&jc.redis, ids[0]).await?;
    }
    if args.detach {
        return detach(ctx, &jc, &ids, args.force).await;
    }
    let display = Arc::new(if ctx.json {
        Display::Quiet
    } else if std::io::stderr().is_terminal() {
        Display::Bars(MultiProgress::new(), Mutex::new(HashMap::new()))
    } else {
        Display::Lines(Mutex::new(HashMap::new()))
    });
    // With a worker alive the jobs go to it and this process only follows
    // them (Ctrl-C detaches); otherwise it runs them itself as before.
    let workers = jobs::workers(&jc.redis).await?;
    let finals = if workers.is_empty() {
        run_here(&jc, &ids, args.force, display.clone()).await?
    } else {
        match super::warm_follow::follow(&jc, &ids, args.force, &display, &workers).await? {
            super::warm_follow::Followed::Ended(finals) => finals,
            super::warm_follow::Followed::Detached(snaps) => {
                if ctx.json {
                    let jobs: Vec<serde_json::Value> = snaps
                        .iter()
                        .map(|s| {
                            serde_json::json!({
                                "jobId": s.job_id,
                                "datasourceId": s.datasource_id,
                                "state": s.state,
                                "worker": s.worker,
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({ "jobs": jobs, "detached": true })
                        )
                        .unwrap_or_default()
                    );
                }
                return Ok(0);
            }
        }
    };
    report(ctx, &display, &finals)
}

/// Runs the jobs in this process (no worker alive); Ctrl-C cancels them.
async fn run_here(
    jc: &jobs::JobContext,
    ids: &[i64],
    force: bool,
    display: Arc<Display>,
) -> Result<Vec<JobSnapshot>> {
    let jobs = jobs::submit(jc, ids, force).await?;
    let cancel = CancellationToken::new();
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("cancelling: cleaning up shadow keys…");
                cancel.cancel();
            }
        });
    }
    let runs = jobs.into_iter().map(|snap| {
        let jc = jc.clone();
        let display = display.clone();
        let cancel = cancel.clone();
        async move { jobs::run_job(&jc, snap, cancel, move |s| display.update(s)).await }
    });
    Ok(futures::future::join_all(runs).await)
}

/// Prints the jobs' ends and returns the exit code.
fn report(ctx: &Ctx, display: &Display, finals: &[JobSnapshot]) -> Result<i32> {
    let summary: Vec<serde_json::Value> = finals
        .iter()
        .map(|s| {
            let mut v = serde_json::json!({
                "jobId": s.job_id,
                "datasourceId": s.datasource_id,
                "state": s.state,
                "rowsProcessed": s.rows_processed,
                "entriesCached": s.entries_cached,
                "indexesCached": s.indexes_cached,
                "durationMs": s.duration_ms.unwrap_or(0),
            });
            if let Some(e) = &s.error {
                v["error"] = serde_json::json!(e);
            }
            v
        })
        .collect();
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "jobs": summary }))
                .unwrap_or_default()
        );
    } else if matches!(display, Display::Bars(..)) {
        for s in finals {
            println!(
                "DS #{} {}: {}",
                s.datasource_id,
                s.datasource_name,
                describe(s)
            );
        }
    }
    let failed = finals
        .iter()
        .filter(|s| matches!(s.state, JobState::Failed | JobState::Cancelled))
        .count();
    Ok(if failed == 0 {
        0
    } else if finals.len() == 1 && finals[0].error_kind.as_deref() == Some("busy") {
        3
    } else if failed < finals.len() {
        6
    } else {
        1
    })
}

/// `warm --detach`: queues the jobs for the workers and answers at once
/// with the seed's shape (`jobs`, `datasourcesQueued`, `estimatedDurationMs`).
async fn detach(ctx: &Ctx, jc: &jobs::JobContext, ids: &[i64], force: bool) -> Result<i32> {
    let queued = jobs::submit_detached(jc, ids, force).await?;
    let estimates: Vec<u64> = queued
        .iter()
        .filter_map(|s| s.estimated_duration_ms)
        .collect();
    let estimate = (!estimates.is_empty()).then(|| estimates.iter().sum::<u64>());
    let answer = serde_json::json!({
        "jobs": queued
            .iter()
            .map(|s| serde_json::json!({
                "jobId": s.job_id,
                "datasourceId": s.datasource_id,
                "state": s.state,
            }))
            .collect::<Vec<_>>(),
        "datasourcesQueued": queued.iter().map(|s| s.datasource_id).collect::<Vec<_>>(),
        "estimatedDurationMs": estimate,
    });
    let workers = jobs::workers(&jc.redis).await?;
    if workers.is_empty() {
        eprintln!(
            "warning: no worker is alive: the jobs wait in the queue until a `cachedeck agent` starts"
        );
    }
    ctx.print(&answer, || {
        let mut out = String::new();
        for s in &queued {
            out.push_str(&format!(
                "queued job {} (DS #{} {}){}\n",
                s.job_id,
                s.datasource_id,
                s.datasource_name,
                s.estimated_duration_ms
                    .map(|ms| format!(", about {}", short_duration(ms)))
                    .unwrap_or_default()
            ));
        }
        out.push_str("follow them with `cachedeck status`");
        out
    });
    Ok(0)
}

/// `1m 30s` for a duration in milliseconds (whole seconds).
pub(crate) fn short_duration(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms.div_ceil(1000))).to_string()
}
