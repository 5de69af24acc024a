//! `cachedeck agent`: the headless scheduler and worker. Runs schedules
//! (exactly once across every instance), runs detached warm jobs from the
//! queue (`jobs::Worker`), cleans up after jobs whose process stopped, and
//! POSTs health alerts; stops cleanly on SIGTERM or SIGINT, cancelling its
//! warms so they remove their shadow keys. Logs with `tracing` (set
//! `RUST_LOG=info` to see routine lines).

use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::actor::Origin;
use crate::error::{Error, Result};
use crate::governance::scheduler::{Scheduler, SchedulerConfig};
use crate::jobs::Worker;

/// `cachedeck agent`
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This agent's name in the leader lease and tick claims (default:
    /// agent:user@host:pid:random). Must be unique among running instances.
    #[arg(long)]
    pub instance: Option<String>,
    /// Seconds between schedule evaluations.
    #[arg(long, default_value_t = 5)]
    pub poll_secs: u64,
}

/// A token cancelled by SIGTERM or SIGINT.
fn shutdown_on_signals() -> Result<CancellationToken> {
    let token = CancellationToken::new();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| Error::io("listening for SIGTERM", e))?;
        let t = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            }
            t.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        let t = token.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C: stopping");
            }
            t.cancel();
        });
    }
    Ok(token)
}

/// Runs `cachedeck agent` until SIGTERM or SIGINT.
pub async fn run(ctx: &Ctx, a: AgentArgs) -> Result<i32> {
    let shutdown = shutdown_on_signals()?;
    let resolved = ctx.resolved().await?;
    let jc = ctx.job_context(Origin::Agent).await?;
    // A read-only admin's agent would have nothing to do but write.
    jc.actor.require_write("run the agent")?;
    let mut cfg = SchedulerConfig::from_defaults("agent", &resolved.defaults, &resolved.name)?;
    if let Some(i) = a.instance {
        cfg.instance_id = i;
    }
    cfg.poll = Duration::from_secs(a.poll_secs.max(1));
    if cfg.alerts.is_none() {
        tracing::info!("no alert webhook configured: health alerts are off");
    }
    let instance = cfg.instance_id.clone();
    let scheduler = Scheduler::new(jc.clone(), cfg);
    // Every agent is also a worker: it runs detached jobs from the queue.
    let worker = Worker::new(jc, &instance, scheduler.leader_flag());
    let (s, w) = tokio::join!(scheduler.run(shutdown.clone()), worker.run(shutdown));
    s?;
    w?;
    Ok(0)
}
