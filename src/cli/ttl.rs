//! `cachedeck ttl (KEY | --pattern P) (SECONDS | persist)`: change the expiry
//! of one key, or of every key matching a pattern.

use super::purge::{Reporter, cancel_on_ctrl_c};
use super::{Ctx, TtlArgs};
use crate::error::{Error, Result};
use crate::redis_admin::{TtlChange, set_key_ttl, set_pattern_ttl};

/// Changes the TTL of one key or of every key matching `--pattern`.
pub async fn run(ctx: &Ctx, args: TtlArgs) -> Result<i32> {
    let usage = || {
        Error::Invalid(
            "usage: cachedeck ttl (KEY | --key-hex HEX | --pattern P) (SECONDS | persist)".into(),
        )
    };
    let by_flag = args.pattern.is_some() || args.key_hex.is_some();
    let (key, value) = match (by_flag, args.args.as_slice()) {
        (true, [value]) => (None, value.clone()),
        (false, [key, value]) => (Some(key.clone()), value.clone()),
        _ => return Err(usage()),
    };
    let change = TtlChange::parse(&value)?;
    let redis = ctx.redis().await?;
    let actor = ctx.actor().await?;

    if let Some(pattern) = args.pattern {
        if crate::redis_admin::matches_everything(pattern.as_bytes()) && !args.yes {
            return Err(Error::Invalid(format!(
                "the pattern `{pattern}` matches every key; add --yes to change every TTL"
            )));
        }
        let (cancel, watcher) = cancel_on_ctrl_c();
        let mut reporter = Reporter::new();
        let result = set_pattern_ttl(
            redis,
            &actor,
            pattern.as_bytes(),
            change,
            args.yes,
            &cancel,
            |p| {
                reporter.update(format!(
                    "changed {} of {} matching keys (node {} of {})",
                    p.changed,
                    p.matched,
                    p.node_index + 1,
                    p.node_count
                ))
            },
        )
        .await;
        watcher.abort();
        reporter.finish();
        let out = result?;
        ctx.print(&out, || {
            format!(
                "{}: {} of {} keys matching `{}` changed{} in {} ms",
                if out.cancelled { "cancelled" } else { "done" },
                out.changed,
                out.matched,
                out.pattern,
                if out.protected_skipped > 0 {
                    format!(" ({} protected kept)", out.protected_skipped)
                } else {
                    String::new()
                },
                out.duration_ms
            )
        });
        return Ok(if out.cancelled { 1 } else { 0 });
    }

    let key = super::inspect::key_bytes(key, args.key_hex)?;
    let out = set_key_ttl(redis, &actor, &key, change).await?;
    ctx.print(&out, || match (out.existed, out.ttl_ms) {
        (false, _) => format!("{}: no such key", out.key.display),
        (true, Some(ms)) => format!(
            "{}: expires in {}",
            out.key.display,
            humantime::format_duration(std::time::Duration::from_millis(ms as u64))
        ),
        (true, None) => format!("{}: no expiry", out.key.display),
    });
    Ok(if out.existed { 0 } else { 1 })
}
