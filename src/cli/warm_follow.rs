//! `cachedeck warm` while a worker is alive: the jobs go to the workers and
//! this process follows them with progress. The first Ctrl-C detaches (the
//! jobs go on; the message names the worker and `cachedeck status`); a
//! second one within [`SECOND_CTRL_C`] cancels them instead.

use std::collections::BTreeMap;
use std::time::Duration;

use super::warm::Display;
use crate::error::Result;
use crate::jobs::{self, ControlRequest, JobContext, JobSnapshot, WorkerInfo};

/// How long a cancelled follow waits for its jobs to end before it leaves
/// them to their workers.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How often the followed jobs' records are read.
const POLL: Duration = Duration::from_millis(250);
/// After the first Ctrl-C, a second one within this time cancels the jobs.
pub const SECOND_CTRL_C: Duration = Duration::from_secs(3);

/// How following ended.
pub enum Followed {
    /// Every job ended: their final snapshots.
    Ended(Vec<JobSnapshot>),
    /// Ctrl-C detached: the jobs as last seen, still going on.
    Detached(Vec<JobSnapshot>),
}

/// Submits the jobs for the workers and follows them to their end.
pub async fn follow(
    jc: &JobContext,
    ids: &[i64],
    force: bool,
    display: &Display,
    workers: &[WorkerInfo],
) -> Result<Followed> {
    let mut interrupts = Interrupts::new()?;
    let submitted = jobs::submit_detached(jc, ids, force).await?;
    let mut seen: BTreeMap<String, JobSnapshot> = submitted
        .into_iter()
        .map(|s| (s.job_id.clone(), s))
        .collect();
    for s in seen.values() {
        display.update(s);
    }
    // Set at the first Ctrl-C: the moment after which the jobs are left to
    // their workers.
    let mut detach_at: Option<tokio::time::Instant> = None;
    let mut cancelled = false;
    loop {
        for (id, last) in seen.iter_mut() {
            if last.state.is_final() {
                continue;
            }
            if let Some(s) = jobs::read(&jc.redis, id).await? {
                display.update(&s);
                *last = s;
            }
        }
        if seen.values().all(|s| s.state.is_final()) {
            return Ok(Followed::Ended(seen.into_values().collect()));
        }
        if let Some(at) = detach_at
            && tokio::time::Instant::now() >= at
        {
            return Ok(Followed::Detached(seen.into_values().collect()));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = interrupts.next() => {
                if detach_at.is_none() && !cancelled {
                    eprintln!("{}", detach_message(&seen, workers));
                    detach_at = Some(tokio::time::Instant::now() + SECOND_CTRL_C);
                } else if cancelled {
                    // A third Ctrl-C: stop waiting for the workers' answer.
                    return Ok(Followed::Detached(seen.into_values().collect()));
                } else {
                    eprintln!("cancelling: the workers clean up the shadow keys…");
                    cancelled = true;
                    // Wait for the cancel to land, but not for ever (no
                    // worker may be left to act on it, or a record expired).
                    detach_at = Some(tokio::time::Instant::now() + CANCEL_WAIT);
                    for (id, s) in &seen {
                        if s.state.is_final() {
                            continue;
                        }
                        match jobs::control(&jc.redis, &jc.actor, id, ControlRequest::Cancel).await {
                            Ok(_) | Err(crate::error::Error::NoSuchJob(_)) => {}
                            Err(e) => eprintln!("warning: could not cancel job {id}: {e}"),
                        }
                    }
                }
            }
        }
    }
}

/// What the first Ctrl-C says: who runs the jobs and how to follow them.
fn detach_message(seen: &BTreeMap<String, JobSnapshot>, workers: &[WorkerInfo]) -> String {
    let mut names: Vec<String> = seen.values().filter_map(|s| s.worker.clone()).collect();
    if names.is_empty() {
        names = workers.iter().map(|w| w.instance.clone()).collect();
    }
    names.sort();
    names.dedup();
    let ids: Vec<&str> = seen
        .values()
        .filter(|s| !s.state.is_final())
        .map(|s| s.job_id.as_str())
        .collect();
    format!(
        "detaching: job {} goes on in worker {}; follow it with `cachedeck status`. Press Ctrl-C again within {} s to cancel instead.",
        ids.join(", "),
        names.join(", "),
        SECOND_CTRL_C.as_secs()
    )
}

/// Ctrl-C presses, none lost between two waits.
struct Interrupts {
    /// The SIGINT stream, listening from creation on.
    #[cfg(unix)]
    sigint: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> Result<Interrupts> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let sigint = signal(SignalKind::interrupt())
                .map_err(|e| crate::error::Error::io("listening for Ctrl-C", e))?;
            Ok(Interrupts { sigint })
        }
        #[cfg(not(unix))]
        Ok(Interrupts {})
    }

    /// Waits for the next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            if self.sigint.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
