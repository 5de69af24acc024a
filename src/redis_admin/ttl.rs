//! TTL changes: set, change or remove the expiry of one key (by its exact
//! bytes) or of every key matching a pattern (SCAN per master, then one
//! pipeline of PEXPIRE / PERSIST per page on the node the keys live on).

use std::time::{Duration, Instant};

use redis::Cmd;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::scan::{ScanCursor, ScanQuery};
use super::{KeyInfo, audit, check_pattern, is_protected, matches_everything, run_on_node};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::governance::audit::actions;
use crate::keys;
use crate::redis_conn::Redis;

/// What to do with the expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlChange {
    /// Expire this long from now (PEXPIRE; must be at least 1 ms).
    Expire(Duration),
    /// Remove the expiry (PERSIST).
    Persist,
}

impl TtlChange {
    /// Reads the CLI form: `persist`, or whole seconds (> 0).
    pub fn parse(text: &str) -> Result<TtlChange> {
        if text.eq_ignore_ascii_case("persist") {
            return Ok(TtlChange::Persist);
        }
        match text.parse::<u64>() {
            Ok(s) if s > 0 => Ok(TtlChange::Expire(Duration::from_secs(s))),
            _ => Err(Error::Invalid(format!(
                "`{text}` is not a TTL: give whole seconds greater than 0, or `persist`"
            ))),
        }
    }

    /// The command for one key, after checking the duration.
    fn command(self, key: &[u8]) -> Result<Cmd> {
        match self {
            TtlChange::Persist => Ok(redis::cmd("PERSIST").arg(key).to_owned()),
            TtlChange::Expire(d) => {
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                if ms < 1 {
                    return Err(Error::Invalid(
                        "a TTL of 0 would delete the key; use purge to delete keys".into(),
                    ));
                }
                Ok(redis::cmd("PEXPIRE").arg(key).arg(ms).to_owned())
            }
        }
    }

    fn describe(self) -> String {
        match self {
            TtlChange::Persist => "persist".into(),
            TtlChange::Expire(d) => format!("expire in {} ms", d.as_millis()),
        }
    }
}

/// The result of a TTL change on one key.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyTtlOutcome {
    /// The key: printable `key` and exact `keyHex`.
    #[serde(flatten)]
    pub key: KeyInfo,
    /// False when there is no such key (nothing was changed).
    pub existed: bool,
    /// Redis reported a change (PEXPIRE set it; PERSIST removed an expiry).
    pub changed: bool,
    /// The key's TTL afterwards in milliseconds; `null` when it has none.
    pub ttl_ms: Option<i64>,
}

/// Progress of a TTL change by pattern, reported after every batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlProgress {
    /// Matching keys found so far.
    pub matched: u64,
    /// Keys changed so far.
    pub changed: u64,
    /// Node being worked on, for "node 2 of 3".
    pub node_index: usize,
    /// How many masters are walked.
    pub node_count: usize,
}

/// The result of a TTL change by pattern.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlOutcome {
    /// The pattern, printable.
    pub pattern: String,
    /// Matching keys found.
    pub matched: u64,
    /// Keys Redis changed (a key that vanished meanwhile, or a PERSIST on a
    /// key without expiry, does not count).
    pub changed: u64,
    /// Matching keys left alone because they are protected.
    pub protected_skipped: u64,
    /// The caller cancelled; the keys seen so far were changed.
    pub cancelled: bool,
    /// Wall time.
    pub duration_ms: u64,
}

fn refuse_protected(key: &[u8]) -> Result<()> {
    if is_protected(key) {
        return Err(Error::Invalid(format!(
            "`{}` is a datasource's invalidation epoch; it never expires",
            keys::display_bytes(key)
        )));
    }
    Ok(())
}

/// Sets or removes the expiry of one key (exact bytes) and reads it back.
pub async fn set_key_ttl(
    redis: &Redis,
    actor: &Actor,
    key: &[u8],
    change: TtlChange,
) -> Result<KeyTtlOutcome> {
    actor.require_write("change TTLs")?;
    refuse_protected(key)?;
    let info = KeyInfo::new(key.to_vec());
    let cmd = change.command(key)?;
    let intent = super::audit_begin(
        actor,
        actions::TTL_CHANGED,
        "change TTLs",
        &serde_json::json!({ "key": info.display, "keyHex": info.key_hex, "change": change.describe() }),
    )
    .await?;
    let result = async {
        let changed: i64 = redis
            .query(&format!("TTL change on {}", info.display), &cmd)
            .await?;
        let pttl: i64 = redis
            .query(
                &format!("PTTL {}", info.display),
                redis::cmd("PTTL").arg(key),
            )
            .await?;
        Ok(KeyTtlOutcome {
            key: info.clone(),
            existed: pttl != -2,
            changed: changed == 1,
            ttl_ms: (pttl >= 0).then_some(pttl),
        })
    }
    .await;
    let params = serde_json::json!({
        "key": info.display,
        "keyHex": info.key_hex,
        "change": change.describe(),
        "changed": result.as_ref().is_ok_and(|o| o.changed),
    });
    audit(intent, actor, params, false, &result).await;
    result
}

/// Applies `change` to every key matching `pattern`, one SCAN page at a
/// time on each master, calling `progress` after every batch. Protected keys
/// are skipped; a pattern that matches everything needs `confirmed_all`.
/// Cancelling stops after the current batch (`cancelled: true`).
pub async fn set_pattern_ttl(
    redis: &Redis,
    actor: &Actor,
    pattern: &[u8],
    change: TtlChange,
    confirmed_all: bool,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&TtlProgress) + Send,
) -> Result<TtlOutcome> {
    actor.require_write("change TTLs")?;
    check_pattern(pattern)?;
    // Validate the duration before touching anything.
    change.command(b"-")?;
    let shown = keys::display_bytes(pattern);
    if matches_everything(pattern) && !confirmed_all {
        return Err(Error::Invalid(format!(
            "the pattern `{shown}` matches every key; confirm that you mean to change every TTL"
        )));
    }
    let intent = super::audit_begin(
        actor,
        actions::TTL_CHANGED,
        "change TTLs",
        &serde_json::json!({
            "pattern": shown,
            "patternHex": hex::encode(pattern),
            "change": change.describe(),
            "confirmedAll": confirmed_all,
        }),
    )
    .await?;
    let started = Instant::now();
    let mut out = TtlOutcome {
        pattern: shown.clone(),
        matched: 0,
        changed: 0,
        protected_skipped: 0,
        cancelled: false,
        duration_ms: 0,
    };
    let result = ttl_pages(redis, pattern, change, cancel, &mut progress, &mut out).await;
    out.duration_ms = started.elapsed().as_millis() as u64;
    let params = serde_json::json!({
        "pattern": shown,
        "patternHex": hex::encode(pattern),
        "change": change.describe(),
        "confirmedAll": confirmed_all,
        "matched": out.matched,
        "changed": out.changed,
        "protectedSkipped": out.protected_skipped,
        "durationMs": out.duration_ms,
    });
    audit(intent, actor, params, out.cancelled, &result).await;
    result.map(|()| out)
}

/// The TTL loop; `out` holds the counts so far even when a batch fails.
async fn ttl_pages(
    redis: &Redis,
    pattern: &[u8],
    change: TtlChange,
    cancel: &CancellationToken,
    progress: &mut (impl FnMut(&TtlProgress) + Send),
    out: &mut TtlOutcome,
) -> Result<()> {
    let mut cursor = ScanCursor::new(redis, ScanQuery::new(pattern)).await?;
    while !cursor.is_done() {
        if cancel.is_cancelled() {
            out.cancelled = true;
            break;
        }
        let page = cursor.next_page().await?;
        let mut cmds = Vec::with_capacity(page.keys.len());
        for k in &page.keys {
            if is_protected(&k.key) {
                out.protected_skipped += 1;
            } else {
                cmds.push(change.command(&k.key)?);
            }
        }
        out.matched += cmds.len() as u64;
        let conn = cursor
            .node_conn(page.node_index)
            .ok_or_else(|| Error::Invalid("the scan lost its node connection".into()))?;
        let context = format!("TTL change on {}", page.node);
        let counts = run_on_node(redis, conn, cmds, &context).await?;
        out.changed += counts.iter().filter(|&&n| n == 1).count() as u64;
        progress(&TtlProgress {
            matched: out.matched,
            changed: out.changed,
            node_index: page.node_index,
            node_count: page.node_count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_text_is_parsed() {
        assert_eq!(TtlChange::parse("persist").unwrap(), TtlChange::Persist);
        assert_eq!(
            TtlChange::parse("60").unwrap(),
            TtlChange::Expire(Duration::from_secs(60))
        );
        assert!(TtlChange::parse("0").is_err());
        assert!(TtlChange::parse("-5").is_err());
        assert!(TtlChange::parse("soon").is_err());
    }
}
