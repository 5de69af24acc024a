//! `cachedeck slowlog [--node ADDR] [--count N] [--json]`: the slow commands
//! and latency events of every master; `--reset --yes` clears the slow log.

use clap::Args;

use super::Ctx;
use crate::error::{Error, Result};
use crate::redis_admin::slowlog::{self, DEFAULT_COUNT, SlowLog};

/// `cachedeck slowlog`
#[derive(Debug, Args)]
pub struct SlowlogArgs {
    /// Only this master (`host:port`, as `redis-info` names nodes).
    #[arg(long)]
    pub node: Option<String>,
    /// Entries read from each node at most.
    #[arg(long, default_value_t = DEFAULT_COUNT)]
    pub count: usize,
    /// Clear the slow log (a write: audited, needs write permission);
    /// needs --yes.
    #[arg(long)]
    pub reset: bool,
    /// Confirm --reset.
    #[arg(long, requires = "reset")]
    pub yes: bool,
}

/// Prints the slow log, or clears it with `--reset --yes`.
pub async fn run(ctx: &Ctx, args: SlowlogArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    if args.reset {
        if !args.yes {
            return Err(Error::Invalid(
                "`slowlog --reset` clears every node's slow log for everyone: add --yes to confirm"
                    .into(),
            ));
        }
        let actor = ctx.actor().await?;
        let done = slowlog::reset(redis, &actor, args.node.as_deref()).await?;
        ctx.print(&done, || {
            format!(
                "slow log cleared on {} ({} entries)",
                done.nodes.join(", "),
                done.entries_cleared
            )
        });
        return Ok(0);
    }
    let log = slowlog::slowlog(redis, args.count, args.node.as_deref()).await?;
    ctx.print(&log, || human(&log));
    Ok(0)
}

fn human(log: &SlowLog) -> String {
    let mut out = Vec::new();
    for n in &log.nodes {
        let mut line = format!(
            "node {}: {} entries, logs commands slower than {}, latency monitor {}",
            n.node,
            n.length.map_or("?".into(), |l| l.to_string()),
            match n.slower_than_us {
                Some(us) if us < 0 => "never (logging off)".to_string(),
                Some(us) => format!("{us} µs"),
                None => "? (CONFIG not permitted)".into(),
            },
            match n.latency_threshold_ms {
                Some(0) => "off (latency-monitor-threshold 0)".to_string(),
                Some(ms) => format!("above {ms} ms"),
                None => "?".into(),
            }
        );
        if let Some(note) = &n.note {
            line.push_str(&format!(" — {note}"));
        }
        out.push(line);
    }
    if log.entries.is_empty() {
        out.push("no slow commands logged".into());
    } else {
        out.push(String::new());
        out.push(format!(
            "{:<24} {:>10}  {:<21} {:<21} command",
            "when", "µs", "node", "client"
        ));
        for e in &log.entries {
            out.push(format!(
                "{:<24} {:>10}  {:<21} {:<21} {}",
                e.at,
                e.duration_us,
                e.node,
                e.client.as_deref().unwrap_or("-"),
                e.command
            ));
        }
    }
    if !log.latency.is_empty() {
        out.push(String::new());
        out.push(format!(
            "{:<21} {:<22} {:>9} {:>7}  last seen",
            "node", "latency event", "latest ms", "max ms"
        ));
        for l in &log.latency {
            out.push(format!(
                "{:<21} {:<22} {:>9} {:>7}  {}",
                l.node,
                l.event,
                l.latest_ms,
                l.max_ms,
                crate::jobs::iso(l.latest_at_ms)
            ));
        }
    }
    out.join("\n")
}
