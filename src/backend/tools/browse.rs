//! One browse: a task owning its SCAN cursor, answering "load more", "load
//! all" and "stop" until a new browse (or the window closing) cancels it.
//! Keys are sent in batches at most every [`EMIT_EVERY`], so a load of a
//! million keys is a few dozen events, not thousands.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::Reporter;
use super::protocol::{BrowseRequest, BrowsedKey, KeysPage, ToolsEvent};
use crate::redis_admin::{ScanCursor, ScanQuery, dbsize_total};
use crate::redis_conn::Redis;

/// Sleep between two SCAN calls of a browse: with SCAN's default COUNT of
/// 500 this keeps the browser to a small share of the server, so other
/// clients barely notice a "load all" of a million keys (BENCHMARKS.md,
/// "Key browser").
pub const BROWSE_PACE: Duration = Duration::from_millis(1);

/// Least time between two batches sent to the window while loading.
const EMIT_EVERY: Duration = Duration::from_millis(100);

/// Largest page a "load more" returns.
const MAX_PAGE: usize = 10_000;

/// A request to a running browse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BrowseMsg {
    /// One more page.
    More,
    /// Up to `cap` more keys or `byte_budget` more name bytes.
    All {
        /// Most keys.
        cap: usize,
        /// Most name bytes.
        byte_budget: usize,
    },
    /// Stop the load under way.
    Stop,
}

/// The backend's handle on a running browse.
pub(super) struct BrowseHandle {
    /// The window's session number.
    pub session: u64,
    /// The profile generation it runs for.
    pub generation: u64,
    /// Requests to the task.
    pub tx: UnboundedSender<BrowseMsg>,
    /// Ends the task.
    pub cancel: CancellationToken,
}

/// Runs one browse until cancelled or its handle is dropped.
pub(super) async fn run(
    redis: Redis,
    req: BrowseRequest,
    mut rx: UnboundedReceiver<BrowseMsg>,
    rep: Reporter,
    cancel: CancellationToken,
) {
    let session = req.session;
    let page_size = req.page_size.clamp(1, MAX_PAGE);
    let query = ScanQuery {
        pattern: req.pattern,
        type_filter: req.type_filter,
        count_hint: 0,
    };
    let start = async {
        let keyspace = dbsize_total(&redis).await?;
        let cursor = ScanCursor::new(&redis, query).await?;
        Ok::<_, crate::error::Error>((keyspace, cursor))
    };
    let (keyspace, mut cursor) = tokio::select! {
        _ = cancel.cancelled() => return,
        r = start => match r {
            Ok(x) => x,
            Err(e) => {
                let error = rep.fail("cannot browse keys", &e);
                rep.send(ToolsEvent::BrowseFailed { session, error });
                return;
            }
        },
    };
    let mut load = Some((page_size, usize::MAX));
    loop {
        if let Some((cap, budget)) = load.take() {
            let mut job = Load {
                session,
                keyspace,
                rep: &rep,
                rx: &mut rx,
                cancel: &cancel,
            };
            match job.run(&mut cursor, cap, budget).await {
                Next::Continue => {}
                Next::End => return,
            }
        }
        let msg = tokio::select! {
            _ = cancel.cancelled() => return,
            m = rx.recv() => m,
        };
        match msg {
            None => return,
            Some(BrowseMsg::More) => load = Some((page_size, usize::MAX)),
            Some(BrowseMsg::All { cap, byte_budget }) => load = Some((cap, byte_budget)),
            Some(BrowseMsg::Stop) => {}
        }
    }
}

/// What the browse does after a load.
enum Next {
    /// Wait for the next request.
    Continue,
    /// The browse is over (cancelled, failed or its handle dropped).
    End,
}

/// One "load more" or "load all".
struct Load<'a> {
    session: u64,
    keyspace: u64,
    rep: &'a Reporter,
    rx: &'a mut UnboundedReceiver<BrowseMsg>,
    cancel: &'a CancellationToken,
}

impl Load<'_> {
    async fn run(&mut self, cursor: &mut ScanCursor, cap: usize, budget: usize) -> Next {
        let mut batch: Vec<BrowsedKey> = Vec::new();
        let mut bytes = 0usize;
        let mut last_sent = Instant::now();
        let mut node = (0, 0);
        let mut dedupe_complete = true;
        let mut failed = None;
        let mut next = Next::Continue;
        let mut scanned = cursor.scanned();
        {
            let pages = cursor.load_all(cap, BROWSE_PACE);
            futures::pin_mut!(pages);
            loop {
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => {
                        next = Next::End;
                        break;
                    }
                    m = self.rx.recv() => match m {
                        None => {
                            next = Next::End;
                            break;
                        }
                        Some(BrowseMsg::Stop) => break,
                        // Busy: the window disables its buttons meanwhile.
                        Some(_) => {}
                    },
                    p = pages.next() => match p {
                        None => break,
                        Some(Err(e)) => {
                            failed = Some(e);
                            break;
                        }
                        Some(Ok(page)) => {
                            node = (page.node_index, page.node_count);
                            scanned = page.scanned;
                            dedupe_complete = page.dedupe_complete;
                            for k in page.keys {
                                let row = BrowsedKey::new(k.key);
                                bytes += row.heap_bytes();
                                batch.push(row);
                            }
                            if bytes >= budget {
                                break;
                            }
                            if !batch.is_empty() && last_sent.elapsed() >= EMIT_EVERY {
                                self.send(std::mem::take(&mut batch), scanned, node, dedupe_complete, true, false);
                                last_sent = Instant::now();
                            }
                        }
                    },
                }
            }
        }
        if matches!(next, Next::End) {
            return next;
        }
        self.send(
            batch,
            scanned,
            node,
            dedupe_complete,
            false,
            cursor.is_done(),
        );
        if let Some(e) = failed {
            let error = self.rep.fail("browsing keys stopped", &e);
            self.rep.send(ToolsEvent::BrowseFailed {
                session: self.session,
                error,
            });
            return Next::End;
        }
        Next::Continue
    }

    /// Sends a batch of keys with where the scan stands.
    fn send(
        &self,
        keys: Vec<BrowsedKey>,
        scanned: u64,
        node: (usize, usize),
        dedupe_complete: bool,
        loading: bool,
        done: bool,
    ) {
        self.rep.send(ToolsEvent::Keys(KeysPage {
            session: self.session,
            keys,
            scanned,
            keyspace: self.keyspace,
            done,
            loading,
            node,
            dedupe_complete,
        }));
    }
}
