//! `cachedeck purge PATTERN (--dry-run | --yes)`: count and sample, or delete
//! with UNLINK in batches, with a progress line on stderr.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{Ctx, PurgeArgs};
use crate::error::{Error, Result};
use crate::redis_admin::{dry_run, purge};

/// How many keys a dry run shows.
const SAMPLE: usize = 20;

/// Progress on stderr: a spinner on a terminal, a plain line every few
/// seconds otherwise (logs, CI).
pub(super) struct Reporter {
    /// The spinner, when stderr is a terminal.
    bar: Option<ProgressBar>,
    /// When the last plain line was written.
    last: Instant,
}

impl Reporter {
    /// A spinner on a terminal, plain lines otherwise.
    pub(super) fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            bar,
            last: Instant::now(),
        }
    }

    /// Shows the latest progress (plain lines at most every 2 s).
    pub(super) fn update(&mut self, msg: String) {
        match &self.bar {
            Some(bar) => bar.set_message(msg),
            None => {
                if self.last.elapsed() >= Duration::from_secs(2) {
                    eprintln!("{msg}");
                    self.last = Instant::now();
                }
            }
        }
    }

    /// Removes the spinner before the result is printed.
    pub(super) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A token cancelled by Ctrl-C, and the task that watches for it (abort it
/// when done).
pub(super) fn cancel_on_ctrl_c() -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let token = CancellationToken::new();
    let t = token.clone();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("cancelling after the current batch…");
            t.cancel();
        }
    });
    (token, watcher)
}

/// Dry run (count + sample) or purge with `--yes`; exit 1 when cancelled.
pub async fn run(ctx: &Ctx, args: PurgeArgs) -> Result<i32> {
    if args.dry_run == args.yes {
        // clap enforces this too; never delete without an explicit --yes.
        return Err(Error::Invalid(
            "usage: cachedeck purge PATTERN (--dry-run | --yes)".into(),
        ));
    }
    let pattern = args.pattern.as_bytes();
    let redis = ctx.redis().await?;
    if args.dry_run {
        let p = dry_run(redis, pattern, SAMPLE).await?;
        ctx.print(&p, || {
            let mut lines = vec![format!(
                "{} keys match `{}` (of {} in the keyspace); nothing was deleted",
                p.count, p.pattern, p.keyspace_size
            )];
            if p.protected > 0 {
                lines.push(format!(
                    "{} protected keys (invalidation epochs) match and would be kept",
                    p.protected
                ));
            }
            if p.matches_everything {
                lines.push("this pattern matches every key".into());
            }
            if !p.sample.is_empty() {
                lines.push(format!("first {}:", p.sample.len()));
                lines.extend(p.sample.iter().map(|k| format!("  {}", k.display)));
            }
            lines.join("\n")
        });
        return Ok(0);
    }
    let actor = ctx.actor().await?;
    let (cancel, watcher) = cancel_on_ctrl_c();
    let mut reporter = Reporter::new();
    let result = purge(redis, &actor, pattern, args.yes, &cancel, |p| {
        reporter.update(format!(
            "deleted {} of {} matching keys (node {} of {})",
            p.deleted,
            p.matched,
            p.node_index + 1,
            p.node_count
        ))
    })
    .await;
    watcher.abort();
    reporter.finish();
    let out = result?;
    ctx.print(&out, || {
        format!(
            "{} {} keys matching `{}` ({} matched{}) in {} ms",
            if out.cancelled {
                "cancelled after deleting"
            } else {
                "deleted"
            },
            out.deleted,
            out.pattern,
            out.matched,
            if out.protected_skipped > 0 {
                format!(", {} protected kept", out.protected_skipped)
            } else {
                String::new()
            },
            out.duration_ms
        )
    });
    Ok(if out.cancelled { 1 } else { 0 })
}
