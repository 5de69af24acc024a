//! Purge by pattern: a dry run that counts and samples the matching keys, and
//! the purge itself, which deletes them with `UNLINK` (the memory is freed in
//! the background, so Redis never blocks on a big value) in batches of one
//! SCAN page, on the node the keys live on. `FLUSHALL` / `FLUSHDB` are never
//! used; patterns that match everything need the caller's confirmation.

use std::collections::HashMap;
use std::time::Instant;

use redis::Cmd;
use redis::cluster_routing::Slot;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::scan::{ScanCursor, ScanQuery};
use super::{KeyInfo, audit, check_pattern, is_protected, matches_everything, run_on_node};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::governance::audit::actions;
use crate::keys;
use crate::redis_conn::{Redis, Topology};

/// What a purge of a pattern would delete.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgePreview {
    /// The pattern, printable.
    pub pattern: String,
    /// Distinct keys that match now and would be deleted.
    pub count: u64,
    /// The first few of them, to show people what they are about to delete.
    pub sample: Vec<KeyInfo>,
    /// Matching keys that a purge leaves alone ([`super::is_protected`]).
    pub protected: u64,
    /// The pattern has no literal character (`*`, `?*`…): the purge needs
    /// explicit confirmation, as it is close to FLUSHALL.
    pub matches_everything: bool,
    /// Keys in the whole keyspace (DBSIZE over every master), for "N of M".
    pub keyspace_size: u64,
}

/// Progress of a running purge, reported after every batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeProgress {
    /// Matching keys found so far.
    pub matched: u64,
    /// Keys deleted so far (UNLINK's own count).
    pub deleted: u64,
    /// Node being purged, for "node 2 of 3".
    pub node_index: usize,
    /// How many masters the purge walks.
    pub node_count: usize,
}

/// The result of a purge.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeOutcome {
    /// The pattern, printable.
    pub pattern: String,
    /// Matching keys found.
    pub matched: u64,
    /// Keys actually deleted: UNLINK's count, so keys that expired or were
    /// deleted by someone else meanwhile are not counted.
    pub deleted: u64,
    /// Matching keys left alone because they are protected.
    pub protected_skipped: u64,
    /// The caller cancelled; `deleted` keys are gone, the rest remain.
    pub cancelled: bool,
    /// Wall time of the purge.
    pub duration_ms: u64,
}

/// Counts the keys `pattern` matches and returns the first `sample_size` of
/// them, without changing anything (SCAN MATCH over every master).
pub async fn dry_run(redis: &Redis, pattern: &[u8], sample_size: usize) -> Result<PurgePreview> {
    check_pattern(pattern)?;
    let keyspace_size = super::dbsize_total(redis).await?;
    let mut cursor = ScanCursor::new(redis, ScanQuery::new(pattern)).await?;
    let mut count = 0;
    let mut protected = 0;
    let mut sample = Vec::new();
    while !cursor.is_done() {
        let page = cursor.next_page().await?;
        for k in page.keys {
            if is_protected(&k.key) {
                protected += 1;
                continue;
            }
            count += 1;
            if sample.len() < sample_size {
                sample.push(k);
            }
        }
    }
    Ok(PurgePreview {
        pattern: keys::display_bytes(pattern),
        count,
        sample,
        protected,
        matches_everything: matches_everything(pattern),
        keyspace_size,
    })
}

/// UNLINK commands for keys that live on one node: one command on a
/// standalone server; one per hash slot on a cluster node (a multi-key
/// command there must stay within one slot).
fn unlink_cmds(topology: Topology, keys: &[KeyInfo]) -> Vec<Cmd> {
    if keys.is_empty() {
        return Vec::new();
    }
    match topology {
        Topology::Standalone => {
            let mut c = redis::cmd("UNLINK");
            for k in keys {
                c.arg(k.key.as_slice());
            }
            vec![c]
        }
        Topology::Cluster => {
            let mut by_slot: HashMap<Slot, Cmd> = HashMap::new();
            for k in keys {
                by_slot
                    .entry(Slot::for_key(&k.key))
                    .or_insert_with(|| redis::cmd("UNLINK"))
                    .arg(k.key.as_slice());
            }
            by_slot.into_values().collect()
        }
    }
}

/// Deletes every key matching `pattern` with UNLINK, one SCAN page at a
/// time on each master, calling `progress` after every batch. Refuses a
/// pattern that matches everything unless `confirmed_all`; never touches
/// protected keys. Cancelling stops after the current batch and returns what
/// was deleted so far with `cancelled: true`.
pub async fn purge(
    redis: &Redis,
    actor: &Actor,
    pattern: &[u8],
    confirmed_all: bool,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&PurgeProgress) + Send,
) -> Result<PurgeOutcome> {
    actor.require_write("purge keys")?;
    check_pattern(pattern)?;
    let shown = keys::display_bytes(pattern);
    if matches_everything(pattern) && !confirmed_all {
        return Err(Error::Invalid(format!(
            "the pattern `{shown}` matches every key; confirm that you mean to delete everything"
        )));
    }
    let intent = super::audit_begin(
        actor,
        actions::KEYS_PURGED,
        "purge keys",
        &serde_json::json!({ "pattern": shown, "patternHex": hex::encode(pattern), "confirmedAll": confirmed_all }),
    )
    .await?;
    let started = Instant::now();
    let mut out = PurgeOutcome {
        pattern: shown.clone(),
        matched: 0,
        deleted: 0,
        protected_skipped: 0,
        cancelled: false,
        duration_ms: 0,
    };
    let result = purge_pages(redis, pattern, cancel, &mut progress, &mut out).await;
    out.duration_ms = started.elapsed().as_millis() as u64;
    let params = serde_json::json!({
        "pattern": shown,
        "patternHex": hex::encode(pattern),
        "confirmedAll": confirmed_all,
        "matched": out.matched,
        "deleted": out.deleted,
        "protectedSkipped": out.protected_skipped,
        "durationMs": out.duration_ms,
    });
    audit(intent, actor, params, out.cancelled, &result).await;
    result.map(|()| out)
}

/// The purge loop; `out` holds the counts so far even when a batch fails.
async fn purge_pages(
    redis: &Redis,
    pattern: &[u8],
    cancel: &CancellationToken,
    progress: &mut (impl FnMut(&PurgeProgress) + Send),
    out: &mut PurgeOutcome,
) -> Result<()> {
    let topology = redis.topology();
    let mut cursor = ScanCursor::new(redis, ScanQuery::new(pattern)).await?;
    while !cursor.is_done() {
        if cancel.is_cancelled() {
            out.cancelled = true;
            break;
        }
        let page = cursor.next_page().await?;
        let (keep, doomed): (Vec<KeyInfo>, Vec<KeyInfo>) =
            page.keys.into_iter().partition(|k| is_protected(&k.key));
        out.protected_skipped += keep.len() as u64;
        out.matched += doomed.len() as u64;
        let conn = cursor
            .node_conn(page.node_index)
            .ok_or_else(|| Error::Invalid("the scan lost its node connection".into()))?;
        let context = format!("UNLINK on {}", page.node);
        let counts = run_on_node(redis, conn, unlink_cmds(topology, &doomed), &context).await?;
        out.deleted += counts.iter().map(|&n| n.max(0) as u64).sum::<u64>();
        progress(&PurgeProgress {
            matched: out.matched,
            deleted: out.deleted,
            node_index: page.node_index,
            node_count: page.node_count,
        });
    }
    Ok(())
}

/// Deletes the given keys (exact bytes), e.g. the selection of the browser,
/// with UNLINK in batches of 500 through the routed connection (a cluster
/// client splits each batch by slot). Refuses protected keys before deleting
/// anything. Returns how many existed and were deleted.
pub async fn unlink_keys(redis: &Redis, actor: &Actor, keys: &[Vec<u8>]) -> Result<u64> {
    actor.require_write("delete keys")?;
    if let Some(k) = keys.iter().find(|k| is_protected(k)) {
        return Err(Error::Invalid(format!(
            "`{}` is a datasource's invalidation epoch and is never deleted",
            keys::display_bytes(k)
        )));
    }
    let shown: Vec<String> = keys
        .iter()
        .take(20)
        .map(|k| keys::display_bytes(k))
        .collect();
    let intent = super::audit_begin(
        actor,
        actions::KEYS_PURGED,
        "delete keys",
        &serde_json::json!({ "keys": shown, "selected": keys.len() }),
    )
    .await?;
    let mut deleted = 0u64;
    let result = async {
        for chunk in keys.chunks(500) {
            let mut c = redis::cmd("UNLINK");
            for k in chunk {
                c.arg(k.as_slice());
            }
            let n: i64 = redis.query("UNLINK", &c).await?;
            deleted += n.max(0) as u64;
        }
        Ok(())
    }
    .await;
    let params = serde_json::json!({
        "keys": shown,
        "selected": keys.len(),
        "deleted": deleted,
    });
    audit(intent, actor, params, false, &result).await;
    result.map(|()| deleted)
}
