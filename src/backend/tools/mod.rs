//! The Redis tools behind the window's Keys and Redis tabs: key browsing
//! (SCAN pages across masters), inspection, purge and TTL by pattern, and
//! live INFO. Every request runs in a task of its own; long ones can be
//! cancelled from the window.
//!
//! - A browse is one task owning its [`crate::redis_admin::ScanCursor`]; "load
//!   more" and "load all" are messages to it, so the scan continues where it
//!   stopped. A new browse, a profile switch or the window closing ends it.
//! - Reads need only Redis. Writes (purge, TTL) need the store too: the
//!   admin is resolved through governance like the CLI's (grants, Redis ACL,
//!   audit), and the core refuses and audits what the admin may not do.
//! - One pattern write at a time; its preview and the write itself stop on
//!   [`ToolsCommand::CancelWrite`].

mod browse;
mod protocol;
mod writes;

pub use browse::BROWSE_PACE;
pub use protocol::{
    BrowseRequest, BrowsedKey, KeysPage, PatternWrite, ToolsCommand, ToolsEvent, WriteProgress,
};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::emit::Emitter;
use super::links;
use super::protocol::Event;
use super::{Backend, Internal, describe};
use crate::error::Error;
use crate::redis_conn::Redis;
use browse::{BrowseHandle, BrowseMsg};

/// What the backend keeps for the tools between commands.
#[derive(Default)]
pub(super) struct ToolsState {
    /// The browse in progress (its task owns the SCAN cursor).
    browse: Option<BrowseHandle>,
    /// The running preview or pattern write.
    write: Option<Running>,
    /// An INFO poll is running (polls never overlap).
    info_busy: Arc<AtomicBool>,
    /// The last INFO failure shown (shown again only when it changes).
    info_error: Arc<std::sync::Mutex<Option<String>>>,
}

/// A running preview or pattern write.
struct Running {
    /// Cancelled by `CancelWrite` (or by a newer preview, for a preview).
    cancel: CancellationToken,
    /// Set by its task when it ended.
    ended: Arc<AtomicBool>,
    /// A preview (read-only) rather than a write.
    preview: bool,
}

/// Reports a failure once: as a toast, and to the backend loop when it
/// means Redis or the database is gone.
#[derive(Clone)]
pub(super) struct Reporter {
    /// Events to the window.
    emit: Emitter,
    /// The backend loop (lost links).
    internal: UnboundedSender<Internal>,
    /// The profile generation the task runs for.
    generation: u64,
}

impl Reporter {
    /// Shows `what: error` and returns that line.
    fn fail(&self, what: &str, e: &Error) -> String {
        if let Some(which) = links::broken(e) {
            let _ = self.internal.send(Internal::LinkLost {
                generation: self.generation,
                which,
                reason: e.to_string(),
            });
        }
        let line = format!("{what}: {e}");
        self.emit.error(line.clone());
        line
    }

    /// Sends a tools event.
    fn send(&self, ev: ToolsEvent) {
        self.emit.send(Event::Tools(ev));
    }
}

impl Backend {
    /// Runs one tools request.
    pub(super) fn run_tools(&mut self, cmd: ToolsCommand) {
        match cmd {
            ToolsCommand::Browse(req) => self.start_browse(req),
            ToolsCommand::LoadMore { session } => self.send_to_browse(session, BrowseMsg::More),
            ToolsCommand::LoadAll {
                session,
                cap,
                byte_budget,
            } => self.send_to_browse(session, BrowseMsg::All { cap, byte_budget }),
            ToolsCommand::StopLoading { session } => self.send_to_browse(session, BrowseMsg::Stop),
            ToolsCommand::Inspect { key, cursor, count } => {
                let Some(redis) = self.tools_redis("inspect the key") else {
                    let error = self.redis_missing("inspect the key");
                    self.tools_reporter()
                        .send(ToolsEvent::InspectFailed { key, error });
                    return;
                };
                let rep = self.tools_reporter();
                self.tasks
                    .spawn(writes::inspect(redis, rep, key, cursor, count));
            }
            ToolsCommand::Preview { pattern, write } => {
                let Some(redis) = self.tools_redis("count the matching keys") else {
                    self.write_refused("count the matching keys");
                    return;
                };
                let Some((cancel, ended)) = self.begin_write(true) else {
                    return;
                };
                let rep = self.tools_reporter();
                self.tasks.spawn(async move {
                    writes::preview(redis, rep, pattern, write, cancel).await;
                    ended.store(true, Ordering::SeqCst);
                });
            }
            ToolsCommand::RunPattern {
                pattern,
                write,
                confirmed_all,
            } => {
                let what = match write {
                    PatternWrite::Purge => "purge keys",
                    PatternWrite::Ttl(_) => "change TTLs",
                };
                let ctx = match self.context(what) {
                    Ok(c) => c,
                    Err(reason) => {
                        self.emit.error(reason.clone());
                        self.tools_reporter()
                            .send(ToolsEvent::WriteFailed { error: reason });
                        return;
                    }
                };
                let Some((cancel, ended)) = self.begin_write(false) else {
                    return;
                };
                let rep = self.tools_reporter();
                self.tasks.spawn(async move {
                    writes::run_pattern(ctx, rep, pattern, write, confirmed_all, cancel).await;
                    ended.store(true, Ordering::SeqCst);
                });
            }
            ToolsCommand::CancelWrite => {
                if let Some(r) = &self.tools.write {
                    r.cancel.cancel();
                }
            }
            ToolsCommand::SetKeyTtl { key, change } => match self.context("change the TTL") {
                Ok(ctx) => {
                    let rep = self.tools_reporter();
                    self.tasks.spawn(writes::key_ttl(ctx, rep, key, change));
                }
                Err(reason) => {
                    self.emit.error(reason.clone());
                    self.tools_reporter()
                        .send(ToolsEvent::WriteFailed { error: reason });
                }
            },
            ToolsCommand::ServerInfo { sample } => {
                // A poll while Redis is away says nothing new: the status bar
                // already shows the link.
                let Some(redis) = self.redis.conn.clone() else {
                    return;
                };
                if self.tools.info_busy.swap(true, Ordering::SeqCst) {
                    return;
                }
                let busy = self.tools.info_busy.clone();
                let rep = self.tools_reporter();
                let last = self.tools.info_error.clone();
                self.tasks.spawn(async move {
                    writes::server_info(redis, rep, sample, last).await;
                    busy.store(false, Ordering::SeqCst);
                });
            }
            ToolsCommand::SlowLog => match self.redis.conn.clone() {
                Some(redis) => {
                    let rep = self.tools_reporter();
                    self.tasks.spawn(writes::slow_log(redis, rep));
                }
                None => self.tools_reporter().send(ToolsEvent::SlowLogFailed {
                    error: "Redis is not connected".into(),
                }),
            },
            ToolsCommand::ResetSlowLog => match self.context("clear the slow log") {
                Ok(ctx) => {
                    let rep = self.tools_reporter();
                    self.tasks.spawn(writes::reset_slow_log(ctx, rep));
                }
                Err(reason) => {
                    self.emit.error(reason.clone());
                    self.tools_reporter()
                        .send(ToolsEvent::SlowLogFailed { error: reason });
                }
            },
        }
    }

    fn tools_reporter(&self) -> Reporter {
        Reporter {
            emit: self.emit.clone(),
            internal: self.internal_tx.clone(),
            generation: self.generation,
        }
    }

    /// The Redis handle, or `None` after showing why there is none.
    fn tools_redis(&self, what: &str) -> Option<Redis> {
        let redis = self.redis.conn.clone();
        if redis.is_none() {
            self.emit.error(self.redis_missing(what));
        }
        redis
    }

    fn redis_missing(&self, what: &str) -> String {
        format!(
            "cannot {what}: Redis is not connected ({})",
            describe(&self.redis.state)
        )
    }

    fn write_refused(&self, what: &str) {
        self.tools_reporter().send(ToolsEvent::WriteFailed {
            error: self.redis_missing(what),
        });
    }

    /// A cancel token for a new preview or pattern write and the flag its
    /// task sets when it ends, or `None` (after saying so) while another one
    /// runs.
    /// A newer preview replaces a running one; a write waits for nobody.
    fn begin_write(&mut self, preview: bool) -> Option<(CancellationToken, Arc<AtomicBool>)> {
        if let Some(r) = &self.tools.write
            && !r.ended.load(Ordering::SeqCst)
        {
            if r.preview {
                r.cancel.cancel();
            } else {
                let error = "a purge or TTL change is already running; wait for it or cancel it"
                    .to_string();
                self.emit.error(error.clone());
                self.tools_reporter()
                    .send(ToolsEvent::WriteFailed { error });
                return None;
            }
        }
        let cancel = self.shutdown.child_token();
        let ended = Arc::new(AtomicBool::new(false));
        self.tools.write = Some(Running {
            cancel: cancel.clone(),
            ended: ended.clone(),
            preview,
        });
        Some((cancel, ended))
    }

    /// Starts a browse, ending the previous one.
    fn start_browse(&mut self, req: BrowseRequest) {
        if let Some(old) = self.tools.browse.take() {
            old.cancel.cancel();
        }
        let session = req.session;
        let Some(redis) = self.tools_redis("browse keys") else {
            let error = self.redis_missing("browse keys");
            self.tools_reporter()
                .send(ToolsEvent::BrowseFailed { session, error });
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = self.shutdown.child_token();
        self.tools.browse = Some(BrowseHandle {
            session,
            generation: self.generation,
            tx,
            cancel: cancel.clone(),
        });
        let rep = self.tools_reporter();
        self.tasks.spawn(browse::run(redis, req, rx, rep, cancel));
    }

    /// Passes a request to the browse `session`, or says it is gone.
    fn send_to_browse(&mut self, session: u64, msg: BrowseMsg) {
        let current = self.tools.browse.as_ref().filter(|b| b.session == session);
        let alive = current.is_some_and(|b| {
            b.generation == self.generation && !b.cancel.is_cancelled() && b.tx.send(msg).is_ok()
        });
        if alive || msg == BrowseMsg::Stop {
            return;
        }
        if let Some(b) = self.tools.browse.take_if(|b| b.session == session) {
            b.cancel.cancel();
        }
        let error =
            "this browse has ended (the connection changed or it failed); press Browse to start again"
                .to_string();
        self.emit.error(error.clone());
        self.tools_reporter()
            .send(ToolsEvent::BrowseFailed { session, error });
    }
}
