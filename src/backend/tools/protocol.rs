//! What the Keys and Redis tabs ask of the backend and what it answers.
//! Keys travel as exact bytes both ways: a key picked in the browser is
//! inspected, expired or purged by its bytes, never by its printable form.

use crate::redis_admin::slowlog::SlowLog;
use crate::redis_admin::{
    Inspection, KeyTtlOutcome, PurgeOutcome, PurgePreview, RedisInfo, TtlChange, TtlOutcome,
};

/// One key held by the browser, kept small because a browse may hold up to
/// a million of them: the exact bytes, plus the printable form only when it
/// differs from the bytes (non-UTF-8 or control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowsedKey {
    /// The exact key bytes (what every action is sent with).
    pub key: Box<[u8]>,
    /// The escaped form ([`crate::keys::display_bytes`]) when the bytes are
    /// not printable text as they are; `None` means "show the bytes".
    shown: Option<Box<str>>,
}

impl BrowsedKey {
    /// Wraps `key`, escaping it for display when needed.
    pub fn new(key: Vec<u8>) -> BrowsedKey {
        let display = crate::keys::display_bytes(&key);
        let shown = (display.as_bytes() != key.as_slice()).then(|| display.into_boxed_str());
        BrowsedKey {
            key: key.into_boxed_slice(),
            shown,
        }
    }

    /// The name as people read it (`\xNN` for bytes that are not text).
    pub fn display(&self) -> &str {
        match &self.shown {
            Some(s) => s,
            // `shown` is None only when the bytes are printable UTF-8.
            None => std::str::from_utf8(&self.key).unwrap_or_default(),
        }
    }

    /// Heap bytes this row holds (name bytes plus the escaped form), the
    /// unit of the browser's memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.key.len() + self.shown.as_ref().map_or(0, |s| s.len())
    }

    /// Bytes one row costs besides its heap bytes (the two boxed slices).
    pub const ROW_BYTES: usize = std::mem::size_of::<BrowsedKey>();
}

/// What to browse: a new session replaces the previous one.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowseRequest {
    /// Chosen by the window; answers carry it so late pages of an older
    /// browse are dropped.
    pub session: u64,
    /// SCAN MATCH glob as bytes (`*` for every key).
    pub pattern: Vec<u8>,
    /// Only keys of this Redis type (SCAN TYPE).
    pub type_filter: Option<String>,
    /// Keys returned by the first page and by each "load more".
    pub page_size: usize,
}

/// Which write a pattern dialog is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternWrite {
    /// Delete every matching key (UNLINK in batches).
    Purge,
    /// Set or remove the expiry of every matching key.
    Ttl(TtlChange),
}

/// A Redis tools request from the window.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolsCommand {
    /// Start browsing (SCAN over every master); the first page follows.
    Browse(BrowseRequest),
    /// Continue the browse with one more page of `page_size` keys.
    LoadMore {
        /// The browse to continue.
        session: u64,
    },
    /// Continue the browse until `cap` more keys or `byte_budget` more name
    /// bytes were returned, or the keyspace ends; SCAN calls are paced.
    LoadAll {
        /// The browse to continue.
        session: u64,
        /// Most keys to add.
        cap: usize,
        /// Most name bytes to add ([`BrowsedKey::heap_bytes`]).
        byte_budget: usize,
    },
    /// Stop a running "load more" / "load all" (the keys so far stay).
    StopLoading {
        /// The browse to stop.
        session: u64,
    },
    /// Read the type, TTL, encoding, memory and one page of a key's value.
    Inspect {
        /// The exact key bytes.
        key: Vec<u8>,
        /// The previous page's `next_cursor`, or `None` for the first page.
        cursor: Option<String>,
        /// Elements per page.
        count: usize,
    },
    /// Count and sample what a pattern write would touch (changes nothing).
    Preview {
        /// SCAN MATCH glob as bytes.
        pattern: Vec<u8>,
        /// The write the preview is for (echoed back).
        write: PatternWrite,
    },
    /// Run a pattern write after the window's confirmation.
    RunPattern {
        /// SCAN MATCH glob as bytes.
        pattern: Vec<u8>,
        /// Purge or TTL change.
        write: PatternWrite,
        /// The admin confirmed a pattern that matches every key.
        confirmed_all: bool,
    },
    /// Cancel the running pattern write after its current batch.
    CancelWrite,
    /// Set or remove the expiry of one key.
    SetKeyTtl {
        /// The exact key bytes.
        key: Vec<u8>,
        /// The change.
        change: TtlChange,
    },
    /// Read INFO on every master (the Redis tab polls this).
    ServerInfo {
        /// Keys sampled for the distribution by pattern.
        sample: usize,
    },
    /// Read the slow log and latency events of every master.
    SlowLog,
    /// Clear the slow log of every master (after the window's confirmation).
    ResetSlowLog,
}

/// A batch of keys of a browse.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysPage {
    /// The browse these keys belong to.
    pub session: u64,
    /// New keys (never sent before in this session).
    pub keys: Vec<BrowsedKey>,
    /// Distinct keys the session returned so far.
    pub scanned: u64,
    /// Keys in the keyspace (DBSIZE over every master) when the browse began.
    pub keyspace: u64,
    /// Every master was scanned to the end.
    pub done: bool,
    /// More batches of the same request follow.
    pub loading: bool,
    /// Master being scanned (0-based) and how many there are.
    pub node: (usize, usize),
    /// False once the duplicate filter is full (a key may then repeat).
    pub dedupe_complete: bool,
}

/// Progress of a running pattern write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteProgress {
    /// Matching keys found so far.
    pub matched: u64,
    /// Keys deleted or changed so far.
    pub done: u64,
    /// Master being worked on (0-based) and how many there are.
    pub node: (usize, usize),
}

/// A Redis tools answer to the window.
#[derive(Debug, Clone)]
pub enum ToolsEvent {
    /// Keys of a browse.
    Keys(KeysPage),
    /// A browse could not start or continue (the error was also shown).
    BrowseFailed {
        /// The browse.
        session: u64,
        /// One line.
        error: String,
    },
    /// A page of a key's value (with its type, TTL …).
    Inspected {
        /// The cursor the page was asked with (`None`: the first page).
        cursor: Option<String>,
        /// What was read.
        inspection: Box<Inspection>,
    },
    /// Inspecting a key failed (the error was also shown).
    InspectFailed {
        /// The key asked about.
        key: Vec<u8>,
        /// One line.
        error: String,
    },
    /// What a pattern write would touch.
    Preview {
        /// The pattern asked about, as bytes.
        pattern: Vec<u8>,
        /// The write it is for.
        write: PatternWrite,
        /// Count, sample, protected keys, keyspace size.
        preview: Box<PurgePreview>,
    },
    /// Progress of the running pattern write.
    Progress(WriteProgress),
    /// A purge ended (also when cancelled).
    Purged(PurgeOutcome),
    /// A TTL change by pattern ended (also when cancelled).
    TtlChanged(TtlOutcome),
    /// A TTL change on one key ended.
    KeyTtlChanged(KeyTtlOutcome),
    /// A preview, pattern write or TTL change failed (the error was also
    /// shown); the dialog closes or says so.
    WriteFailed {
        /// One line.
        error: String,
    },
    /// Live server statistics.
    Server(Box<RedisInfo>),
    /// Reading INFO failed (shown once by the window).
    ServerFailed {
        /// One line.
        error: String,
    },
    /// The slow log of every master, newest first.
    SlowLog(Box<SlowLog>),
    /// Reading or clearing the slow log failed (the error was also shown).
    SlowLogFailed {
        /// One line.
        error: String,
    },
}
