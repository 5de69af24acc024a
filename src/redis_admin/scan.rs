//! The SCAN-based key browser.
//!
//! A [`ScanCursor`] walks every master in turn (one for a standalone server,
//! each master of a cluster). Every [`Page`] is at most one `SCAN` call on one
//! node, with a modest `COUNT`, so Redis never spends long on one request and
//! other clients keep being served. `KEYS` is never used.
//!
//! SCAN returns every key that exists for the whole scan at least once, but may
//! return a key more than once (when the server's table is resized between
//! calls, or when a cluster slot migrates between nodes). The cursor removes
//! those duplicates with a set of 128-bit fingerprints of the keys returned so
//! far; see [`DEDUPE_CAP`] for its memory bound.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use futures::Stream;
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::{KeyInfo, check_pattern};
use crate::error::{Error, Result};
use crate::redis_conn::{NodeConn, Redis};

/// How many keys one session remembers for duplicate removal: 1,835,008
/// fingerprints of 16 bytes fill a hash table of 2^21 buckets (7/8 load), so
/// the set never takes more than about 34 MiB (about 51 MiB for the moment of
/// its last resize), however large the keyspace. It grows with the keys
/// actually returned, so a small browse costs little. Past the cap, keys are
/// still returned, checked against the remembered ones, and
/// [`Page::dedupe_complete`] turns false.
pub const DEDUPE_CAP: usize = 1_835_008;

/// Smallest and largest `COUNT` sent with SCAN: large enough to make progress
/// on sparse matches, small enough that one call never stalls the server.
const COUNT_MIN: usize = 10;
const COUNT_MAX: usize = 1000;
/// `COUNT` used when the caller has no preference.
pub(crate) const COUNT_DEFAULT: usize = 500;

/// What to browse.
#[derive(Debug, Clone)]
pub struct ScanQuery {
    /// SCAN MATCH glob, as bytes so patterns can name binary keys
    /// ([`super::glob_escape`] builds an exact one). `*` sends no MATCH.
    pub pattern: Vec<u8>,
    /// Only keys of this Redis type (`string`, `hash`, `list`, `set`, `zset`,
    /// `stream`, or a module type), sent as SCAN's `TYPE` option.
    pub type_filter: Option<String>,
    /// SCAN `COUNT` hint, clamped to 10..=1000 (0 means the default 500).
    pub count_hint: usize,
}

impl ScanQuery {
    /// A query for `pattern` with no type filter and the default COUNT.
    pub fn new(pattern: impl Into<Vec<u8>>) -> ScanQuery {
        ScanQuery {
            pattern: pattern.into(),
            type_filter: None,
            count_hint: 0,
        }
    }
}

/// One page of the browser: the result of at most one SCAN call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// New keys of this page (never seen earlier in the session).
    pub keys: Vec<KeyInfo>,
    /// Every node has been scanned to the end: no more pages.
    pub done: bool,
    /// Distinct keys returned by the session so far, this page included; set
    /// beside [`dbsize_total`] it shows how much of the keyspace a `*` browse
    /// covered.
    pub scanned: u64,
    /// `host:port` of the node these keys live on (write commands for them
    /// can go straight there).
    pub node: String,
    /// Position of that node among the masters, for "node 2 of 3" progress.
    pub node_index: usize,
    /// How many masters the session walks.
    pub node_count: usize,
    /// False once the duplicate filter reached [`DEDUPE_CAP`]: later pages
    /// may repeat a key SCAN returned twice.
    pub dedupe_complete: bool,
}

/// Fingerprints of the keys a session returned (see [`DEDUPE_CAP`]).
pub(crate) struct Seen {
    set: HashSet<u128>,
    /// Two independently keyed SipHash instances make a 128-bit fingerprint:
    /// the chance that two of 1.8 million distinct keys collide (and one is
    /// wrongly dropped) is below 10^-26.
    k1: RandomState,
    k2: RandomState,
    /// The cap was hit; later duplicates may slip through.
    overflowed: bool,
}

impl Seen {
    pub(crate) fn new() -> Seen {
        Seen {
            set: HashSet::new(),
            k1: RandomState::new(),
            k2: RandomState::new(),
            overflowed: false,
        }
    }

    /// True when `key` was not returned before (as far as the set knows).
    pub(crate) fn insert(&mut self, key: &[u8]) -> bool {
        let fp = (u128::from(self.k1.hash_one(key)) << 64) | u128::from(self.k2.hash_one(key));
        if self.set.len() < DEDUPE_CAP {
            return self.set.insert(fp);
        }
        if self.set.contains(&fp) {
            return false;
        }
        self.overflowed = true;
        true
    }
}

/// A browsing session over every master; see the module docs.
pub struct ScanCursor {
    /// Direct connections to the masters, in a fixed order.
    nodes: Vec<NodeConn>,
    /// Index into `nodes` of the node being scanned.
    node: usize,
    /// SCAN cursor on that node (0 = not started, or finished when moving on).
    cursor: u64,
    /// What is being browsed.
    query: ScanQuery,
    /// Effective COUNT.
    count: usize,
    /// Duplicate filter.
    seen: Seen,
    /// Keys of the last SCAN call that a size-limited page left over; always
    /// from node `pending_node`, returned before the next SCAN.
    pending: VecDeque<KeyInfo>,
    /// Node the pending keys came from.
    pending_node: usize,
    /// Distinct keys returned so far.
    scanned: u64,
    /// Every node finished.
    finished: bool,
}

impl ScanCursor {
    /// Starts a session over every master of `redis`.
    pub async fn new(redis: &Redis, query: ScanQuery) -> Result<ScanCursor> {
        check_pattern(&query.pattern)?;
        if let Some(t) = &query.type_filter
            && (t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace()))
        {
            return Err(Error::Invalid(format!("`{t}` is not a Redis type name")));
        }
        let nodes = redis.masters().await?;
        let count = match query.count_hint {
            0 => COUNT_DEFAULT,
            n => n.clamp(COUNT_MIN, COUNT_MAX),
        };
        Ok(ScanCursor {
            finished: nodes.is_empty(),
            nodes,
            node: 0,
            cursor: 0,
            query,
            count,
            seen: Seen::new(),
            pending: VecDeque::new(),
            pending_node: 0,
            scanned: 0,
        })
    }

    /// True when no page is left.
    pub fn is_done(&self) -> bool {
        self.finished && self.pending.is_empty()
    }

    /// Keys already found but not yet returned (left over by a size-limited
    /// page): when non-zero, more keys certainly match.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Distinct keys returned so far.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// The direct connection to the node a page came from, so writes on its
    /// keys can go straight there.
    pub(crate) fn node_conn(&self, node_index: usize) -> Option<&MultiplexedConnection> {
        self.nodes.get(node_index).map(|n| &n.conn)
    }

    /// The next page: one SCAN call on the current node (possibly returning
    /// no key, which is normal for a selective pattern).
    pub async fn next_page(&mut self) -> Result<Page> {
        self.next_page_max(usize::MAX).await
    }

    /// Like [`Self::next_page`], but returns at most `max_keys` keys; the rest
    /// of that SCAN reply is kept and returned first by the next call, so a
    /// limit never loses a key.
    pub async fn next_page_max(&mut self, max_keys: usize) -> Result<Page> {
        if self.pending.is_empty() && !self.finished {
            self.scan_once().await?;
        }
        let n = self.pending.len().min(max_keys);
        let keys: Vec<KeyInfo> = self.pending.drain(..n).collect();
        self.scanned += keys.len() as u64;
        let node_index = self.pending_node;
        Ok(Page {
            keys,
            done: self.is_done(),
            scanned: self.scanned,
            node: self
                .nodes
                .get(node_index)
                .map(|n| n.addr.clone())
                .unwrap_or_default(),
            node_index,
            node_count: self.nodes.len(),
            dedupe_complete: !self.seen.overflowed,
        })
    }

    /// One SCAN call on the current node; new keys go to `pending`.
    async fn scan_once(&mut self) -> Result<()> {
        let Some(node) = self.nodes.get(self.node) else {
            self.finished = true;
            return Ok(());
        };
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor);
        if self.query.pattern.as_slice() != b"*" {
            cmd.arg("MATCH").arg(self.query.pattern.as_slice());
        }
        cmd.arg("COUNT").arg(self.count);
        if let Some(t) = &self.query.type_filter {
            cmd.arg("TYPE").arg(t.as_str());
        }
        let mut conn = node.conn.clone();
        let (next, found): (u64, Vec<Vec<u8>>) = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("SCAN on {}", node.addr), e))?;
        self.pending_node = self.node;
        for key in found {
            if self.seen.insert(&key) {
                self.pending.push_back(KeyInfo::new(key));
            }
        }
        if next == 0 {
            self.node += 1;
            self.cursor = 0;
            self.finished = self.node >= self.nodes.len();
        } else {
            self.cursor = next;
        }
        Ok(())
    }

    /// Pages until `cap` keys were returned or the scan ends, sleeping `pace`
    /// between SCAN calls so that browsing a million keys leaves the server
    /// free for other clients (a few milliseconds is plenty). The last page
    /// says `done: false` when the cap cut the browse; the cursor can go on
    /// afterwards. Dropping the stream stops it.
    pub fn load_all(
        &mut self,
        cap: usize,
        pace: Duration,
    ) -> impl Stream<Item = Result<Page>> + Send + '_ {
        futures::stream::unfold((self, 0usize, true), move |(cur, got, first)| async move {
            if got >= cap || cur.is_done() {
                return None;
            }
            if !first && !pace.is_zero() && cur.pending.is_empty() {
                tokio::time::sleep(pace).await;
            }
            let page = cur.next_page_max(cap - got).await;
            let got = got + page.as_ref().map_or(0, |p| p.keys.len());
            // An error ends the stream after it is yielded.
            let next_got = if page.is_err() { cap } else { got };
            Some((page, (cur, next_got, false)))
        })
    }
}

/// Keys in the selected database summed over every master (`DBSIZE`), the
/// "keyspace size" a browse or a sample is compared with.
pub async fn dbsize_total(redis: &Redis) -> Result<u64> {
    let mut total = 0;
    for node in redis.masters().await? {
        let mut conn = node.conn.clone();
        let n: u64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("DBSIZE on {}", node.addr), e))?;
        total += n;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_drops_repeats() {
        let mut s = Seen::new();
        assert!(s.insert(b"a"));
        assert!(s.insert(b"b"));
        assert!(!s.insert(b"a"));
        assert!(!s.overflowed);
    }
}
