//! The raw-Redis tools of the command center (the seed's "Redis" tabs): a
//! SCAN-based key browser, a key inspector, purge by pattern, TTL changes and
//! generic server statistics.
//!
//! Everything here works the same on a standalone server and on a Redis
//! Cluster: commands that must visit every node (SCAN, DBSIZE, INFO) go to each
//! master through [`Redis::masters`]; commands on one key go through the routed
//! connection. Nothing here ever sends `KEYS`, `FLUSHALL` or `FLUSHDB`, and no
//! value is ever loaded whole: strings are read by range, collections by page.
//!
//! Writes (purge, TTL) take an [`crate::actor::Actor`], call
//! `require_write` first, and leave a row in the audit log
//! (`keys_purged`, `ttl_changed`) with the pattern and the counts.

pub mod analyze;
pub mod info;
pub mod inspect;
pub mod purge;
pub mod scan;
pub mod slowlog;
pub mod ttl;

use redis::aio::MultiplexedConnection;
use redis::{Cmd, ErrorKind, RedisResult, ServerErrorKind};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys;
use crate::redis_conn::Redis;

pub use info::{
    DEFAULT_SAMPLE, DbKeys, INFO_NOT_PERMITTED, KeyDistribution, NodeStats, PatternCount,
    RedisInfo, ServerStats, info, info_refused, key_pattern,
};
pub use inspect::{
    Blob, ELEMENT_CAP, FieldValue, Inspection, KeyMeaning, PageRequest, ScoredMember, StreamEntry,
    ValuePage, inspect,
};
pub use purge::{PurgeOutcome, PurgePreview, PurgeProgress, dry_run, purge, unlink_keys};
pub use scan::{DEDUPE_CAP, Page, ScanCursor, ScanQuery, dbsize_total};
pub use ttl::{KeyTtlOutcome, TtlChange, TtlOutcome, TtlProgress, set_key_ttl, set_pattern_ttl};

/// One key found by the browser, with its exact bytes and a printable form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The exact key bytes, needed to act on keys whose names are not UTF-8
    /// (inspect, TTL and purge take bytes, never the printable form).
    #[serde(skip)]
    pub key: Vec<u8>,
    /// The name as people read it ([`keys::display_bytes`]): printable ASCII
    /// stays, other bytes are `\xNN`. Serialized as `key` (DESIGN.md JSON
    /// conventions).
    #[serde(rename = "key")]
    pub display: String,
    /// Lower-case hex of the exact bytes, so scripts can round-trip any name.
    pub key_hex: String,
}

impl KeyInfo {
    /// Builds the printable and hex forms of `key`.
    pub fn new(key: Vec<u8>) -> KeyInfo {
        KeyInfo {
            display: keys::display_bytes(&key),
            key_hex: hex::encode(&key),
            key,
        }
    }
}

/// Escapes the glob characters of SCAN MATCH (`*` `?` `[` `]` `\`), so that a
/// pattern built from a key name matches exactly that name (purge or TTL of
/// one key picked in the browser).
pub fn glob_escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// True for a pattern without a single literal byte (`*`, `**`, `?*`,
/// `[a-z]*`…): it matches all or nearly all keys, so purging or expiring it
/// is FLUSHALL-like and needs the caller's explicit confirmation.
pub fn matches_everything(pattern: &[u8]) -> bool {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'*' | b'?' => i += 1,
            b'[' => {
                // A class is not a literal; skip to its closing bracket.
                let mut j = i + 1;
                if j < pattern.len() && pattern[j] == b'^' {
                    j += 1;
                }
                // A `]` right after `[` or `[^` is part of the class.
                if j < pattern.len() && pattern[j] == b']' {
                    j += 1;
                }
                while j < pattern.len() && pattern[j] != b']' {
                    if pattern[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                i = j + 1;
            }
            _ => return false,
        }
    }
    true
}

/// Keys no Redis tool may delete or expire: the invalidation epoch of a
/// datasource is "never deleted" (DESIGN.md) because a warm's swap compares
/// it with the value it saw when it began; recreating it from zero could let
/// a stale generation through.
pub fn is_protected(key: &[u8]) -> bool {
    std::str::from_utf8(key)
        .ok()
        .and_then(keys::parse)
        .is_some_and(|p| matches!(p, keys::ParsedKey::Epoch { .. }))
}

/// Parses a user-supplied pattern: non-empty, at most 64 KiB.
pub(crate) fn check_pattern(pattern: &[u8]) -> Result<()> {
    if pattern.is_empty() {
        return Err(Error::Invalid(
            "the pattern is empty (use `*` to mean every key)".into(),
        ));
    }
    if pattern.len() > 64 * 1024 {
        return Err(Error::Invalid("the pattern is longer than 64 KiB".into()));
    }
    Ok(())
}

/// Whether a failed command should be retried through the routed cluster
/// connection: the slot moved (MOVED/ASK), is migrating (TRYAGAIN) or the
/// batch touched slots of another node (CROSSSLOT).
fn is_redirect(e: &redis::RedisError) -> bool {
    e.is_cluster_error() || e.kind() == ErrorKind::Server(ServerErrorKind::CrossSlot)
}

/// Runs integer-reply commands in one pipeline on a node's own connection.
/// Keys returned by a node's SCAN live on that node, so this is one round
/// trip per batch; a command the cluster redirects meanwhile (resharding) is
/// re-run through the routed connection, so no key is skipped or counted
/// twice.
pub(crate) async fn run_on_node(
    redis: &Redis,
    conn: &MultiplexedConnection,
    cmds: Vec<Cmd>,
    context: &str,
) -> Result<Vec<i64>> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for c in &cmds {
        pipe.add_command(c.clone());
    }
    pipe.ignore_errors();
    let mut conn = conn.clone();
    let replies: Vec<RedisResult<i64>> = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::redis(context, e))?;
    let mut out = Vec::with_capacity(replies.len());
    for (reply, cmd) in replies.into_iter().zip(&cmds) {
        match reply {
            Ok(n) => out.push(n),
            Err(e) if is_redirect(&e) => out.push(redis.query(context, cmd).await?),
            Err(e) => return Err(Error::redis(context, e)),
        }
    }
    Ok(out)
}

/// Writes the `started` audit row of a Redis-tool write (refused when it
/// cannot be written: nothing is changed then).
pub(crate) async fn audit_begin(
    actor: &crate::actor::Actor,
    action: &str,
    what: &str,
    params: &serde_json::Value,
) -> Result<crate::governance::audit::Intent> {
    crate::governance::audit::begin(actor, action, what, None, params).await
}

/// Gives a Redis-tool write's audit row its outcome: `ok`, `cancelled`, or
/// the error (`failed`, or `permission_denied` for a Redis NOPERM).
pub(crate) async fn audit<T>(
    intent: crate::governance::audit::Intent,
    actor: &crate::actor::Actor,
    params: serde_json::Value,
    cancelled: bool,
    outcome: &Result<T>,
) {
    if cancelled && outcome.is_ok() {
        intent
            .finish(actor, params, &Err::<(), _>(Error::Cancelled))
            .await;
    } else {
        intent.finish(actor, params, outcome).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_all_patterns_are_recognised() {
        for p in ["*", "**", "?*", "[a-z]*", "[]]*", "[^x]*"] {
            assert!(matches_everything(p.as_bytes()), "{p}");
        }
        for p in ["cache:*", "a", "*x*", "\\*", "[a]x"] {
            assert!(!matches_everything(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn glob_escape_makes_literal_patterns() {
        assert_eq!(glob_escape(b"a*b?[c]\\"), b"a\\*b\\?\\[c\\]\\\\".to_vec());
        assert_eq!(glob_escape(b"\xff\x00 x"), b"\xff\x00 x".to_vec());
    }

    #[test]
    fn epoch_keys_are_protected() {
        assert!(is_protected(keys::epoch(3).as_bytes()));
        assert!(!is_protected(keys::meta(3).as_bytes()));
        assert!(!is_protected(b"\xff"));
    }

    #[test]
    fn key_info_serializes_escaped_and_hex() {
        let k = KeyInfo::new(b"a\xff".to_vec());
        let v = serde_json::to_value(&k).unwrap();
        assert_eq!(v, serde_json::json!({"key": "a\\xff", "keyHex": "61ff"}));
    }
}
