//! The one-shot tools requests, each run in its own task: inspect a key,
//! preview a pattern write, run it (purge or TTL) with throttled progress,
//! change one key's TTL, read INFO.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::super::ops;
use super::Reporter;
use super::protocol::{PatternWrite, ToolsEvent, WriteProgress};
use crate::redis_admin::{self, PageRequest, TtlChange};
use crate::redis_conn::Redis;
use crate::text::thousands;

/// Keys a preview shows.
pub const PREVIEW_SAMPLE: usize = 20;

/// Least time between two progress events of a pattern write.
const PROGRESS_EVERY: Duration = Duration::from_millis(150);

/// Reads one page of a key's value.
pub(super) async fn inspect(
    redis: Redis,
    rep: Reporter,
    key: Vec<u8>,
    cursor: Option<String>,
    count: usize,
) {
    let page = PageRequest {
        cursor: cursor.clone(),
        count,
    };
    match redis_admin::inspect(&redis, &key, &page).await {
        Ok(inspection) => rep.send(ToolsEvent::Inspected {
            cursor,
            inspection: Box::new(inspection),
        }),
        Err(e) => {
            let what = format!("cannot inspect {}", crate::keys::display_bytes(&key));
            let error = rep.fail(&what, &e);
            rep.send(ToolsEvent::InspectFailed { key, error });
        }
    }
}

/// Counts and samples what a pattern write would touch; stops quietly when
/// cancelled (the dialog was closed).
pub(super) async fn preview(
    redis: Redis,
    rep: Reporter,
    pattern: Vec<u8>,
    write: PatternWrite,
    cancel: CancellationToken,
) {
    let result = tokio::select! {
        _ = cancel.cancelled() => return,
        r = redis_admin::dry_run(&redis, &pattern, PREVIEW_SAMPLE) => r,
    };
    match result {
        Ok(preview) => rep.send(ToolsEvent::Preview {
            pattern,
            write,
            preview: Box::new(preview),
        }),
        Err(e) => {
            let error = rep.fail("cannot count the matching keys", &e);
            rep.send(ToolsEvent::WriteFailed { error });
        }
    }
}

/// Sends progress at most every [`PROGRESS_EVERY`].
struct Throttle<'a> {
    rep: &'a Reporter,
    last: Option<Instant>,
}

impl Throttle<'_> {
    fn tick(&mut self, p: WriteProgress) {
        if self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        self.rep.send(ToolsEvent::Progress(p));
    }
}

/// Runs a confirmed purge or TTL change by pattern.
pub(super) async fn run_pattern(
    ctx: super::super::ops::Ctx,
    rep: Reporter,
    pattern: Vec<u8>,
    write: PatternWrite,
    confirmed_all: bool,
    cancel: CancellationToken,
) {
    let what = match write {
        PatternWrite::Purge => "cannot purge",
        PatternWrite::Ttl(_) => "cannot change TTLs",
    };
    let actor = match ops::resolve_actor(&ctx).await {
        Ok(a) => a,
        Err(e) => {
            let error = rep.fail("cannot check this admin's permissions", &e);
            rep.send(ToolsEvent::WriteFailed { error });
            return;
        }
    };
    let mut throttle = Throttle {
        rep: &rep,
        last: None,
    };
    let shown = crate::keys::display_bytes(&pattern);
    match write {
        PatternWrite::Purge => {
            let result =
                redis_admin::purge(&ctx.redis, &actor, &pattern, confirmed_all, &cancel, |p| {
                    throttle.tick(WriteProgress {
                        matched: p.matched,
                        done: p.deleted,
                        node: (p.node_index, p.node_count),
                    })
                })
                .await;
            match result {
                Ok(out) => {
                    let verb = if out.cancelled {
                        "Purge cancelled after deleting"
                    } else {
                        "Deleted"
                    };
                    rep.emit.notice(format!(
                        "{verb} {} keys matching `{}`",
                        thousands(out.deleted),
                        out.pattern
                    ));
                    rep.send(ToolsEvent::Purged(out));
                }
                Err(e) => {
                    let error = rep.fail(&format!("{what} `{shown}`"), &e);
                    rep.send(ToolsEvent::WriteFailed { error });
                }
            }
        }
        PatternWrite::Ttl(change) => {
            let result = redis_admin::set_pattern_ttl(
                &ctx.redis,
                &actor,
                &pattern,
                change,
                confirmed_all,
                &cancel,
                |p| {
                    throttle.tick(WriteProgress {
                        matched: p.matched,
                        done: p.changed,
                        node: (p.node_index, p.node_count),
                    })
                },
            )
            .await;
            match result {
                Ok(out) => {
                    let verb = if out.cancelled {
                        "TTL change cancelled after changing"
                    } else {
                        "Changed the TTL of"
                    };
                    rep.emit.notice(format!(
                        "{verb} {} of {} keys matching `{}`",
                        thousands(out.changed),
                        thousands(out.matched),
                        out.pattern
                    ));
                    rep.send(ToolsEvent::TtlChanged(out));
                }
                Err(e) => {
                    let error = rep.fail(&format!("{what} of `{shown}`"), &e);
                    rep.send(ToolsEvent::WriteFailed { error });
                }
            }
        }
    }
}

/// Sets or removes one key's expiry.
pub(super) async fn key_ttl(
    ctx: super::super::ops::Ctx,
    rep: Reporter,
    key: Vec<u8>,
    change: TtlChange,
) {
    let shown = crate::keys::display_bytes(&key);
    let result = match ops::resolve_actor(&ctx).await {
        Ok(actor) => redis_admin::set_key_ttl(&ctx.redis, &actor, &key, change).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(out) => {
            let text = match (out.existed, out.ttl_ms) {
                (false, _) => format!("{shown}: no such key (it may have expired)"),
                (true, Some(ms)) => format!(
                    "{shown} now expires in {}",
                    humantime::format_duration(Duration::from_secs((ms as u64).div_ceil(1000)))
                ),
                (true, None) => format!("{shown} no longer expires"),
            };
            rep.emit.notice(text);
            rep.send(ToolsEvent::KeyTtlChanged(out));
        }
        Err(e) => {
            let error = rep.fail(&format!("cannot change the TTL of {shown}"), &e);
            rep.send(ToolsEvent::WriteFailed { error });
        }
    }
}

/// Reads INFO on every master with a small key sample. A failure is shown
/// once (polls repeat every few seconds): `last` remembers the last one.
pub(super) async fn server_info(
    redis: Redis,
    rep: Reporter,
    sample: usize,
    last: std::sync::Arc<std::sync::Mutex<Option<String>>>,
) {
    match redis_admin::info(&redis, sample.max(1)).await {
        Ok(info) => {
            if let Ok(mut l) = last.lock() {
                *l = None;
            }
            rep.send(ToolsEvent::Server(Box::new(info)))
        }
        Err(e) => {
            let error = format!("cannot read Redis statistics: {e}");
            let new = last
                .lock()
                .map(|mut l| l.replace(error.clone()).as_ref() != Some(&error))
                .unwrap_or(true);
            if new {
                rep.fail("cannot read Redis statistics", &e);
            }
            rep.send(ToolsEvent::ServerFailed { error });
        }
    }
}

/// Reads the slow log of every master for the Redis tab.
pub(super) async fn slow_log(redis: Redis, rep: Reporter) {
    match redis_admin::slowlog::slowlog(&redis, redis_admin::slowlog::DEFAULT_COUNT, None).await {
        Ok(log) => rep.send(ToolsEvent::SlowLog(Box::new(log))),
        Err(e) => {
            let error = rep.fail("cannot read the slow log", &e);
            rep.send(ToolsEvent::SlowLogFailed { error });
        }
    }
}

/// Clears the slow log of every master (audited), then reads it again.
pub(super) async fn reset_slow_log(ctx: super::super::ops::Ctx, rep: Reporter) {
    let result = match ops::resolve_actor(&ctx).await {
        Ok(actor) => redis_admin::slowlog::reset(&ctx.redis, &actor, None).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(done) => {
            rep.emit.notice(format!(
                "slow log cleared on {} node(s) ({} entries)",
                done.nodes.len(),
                done.entries_cleared
            ));
            slow_log(ctx.redis.clone(), rep).await;
        }
        Err(e) => {
            let error = rep.fail("cannot clear the slow log", &e);
            rep.send(ToolsEvent::SlowLogFailed { error });
        }
    }
}
