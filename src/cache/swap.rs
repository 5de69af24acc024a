//! The atomic swap of a warmed shadow generation over the live one, as one
//! MULTI/EXEC on a connection of its own to the master of the datasource's
//! `{ds:N}` slot, guarded by WATCH:
//!
//! 1. WATCH the lock, the epoch, both master sets and both index lists.
//! 2. Check (outside the transaction, nothing blocks other clients) that this
//!    job holds the lock, the epoch is the one the warm began with and the
//!    shadow sets exist; read the live sets in SSCAN batches to find the
//!    entries and indexes the new generation no longer has.
//! 3. MULTI: UNLINK those, RENAME every shadow entry and index over its live
//!    key, RENAME the shadow sets over the live ones, write meta and
//!    `last_warm`, reset `since_warm`; EXEC.
//!
//! If a watched key changed between 1 and EXEC (a selective invalidation, a
//! lost lock), EXEC does nothing and the swap starts over from 1, where a
//! failed check aborts it with the reason: the live cache is unchanged.
//!
//! Why not a Lua script: the script ran the same renames through Lua's
//! `redis.call`, holding the server 2–3 × longer than the MULTI/EXEC of the
//! same RENAMEs (BENCHMARKS.md), and computed the stale keys inside the
//! atomic window; here only the renames and deletes are inside it.
//!
//! MULTI/EXEC does not roll back: a shadow entry deleted behind the warm's back
//! (eviction, by hand) makes its RENAME fail alone; such a key is then taken
//! out of the live sets and counted, as the script did.

use std::collections::HashSet;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::meta::Meta;
use super::set_scan::SetScan;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;

/// Times the swap starts over when a watched key changed under it.
const ATTEMPTS: usize = 5;
/// Keys per UNLINK of stale live keys.
const UNLINK_BATCH: usize = 500;
/// Members per SSCAN of a live set: a few milliseconds of server time per
/// call, far below the EXEC that follows.
const SCAN_COUNT: usize = 4000;

/// What the swap puts in place.
pub(crate) struct SwapInput<'a> {
    /// The datasource.
    pub ds: DsId,
    /// The job that must hold the warm lock.
    pub job_id: &'a str,
    /// The epoch seen when the warm began.
    pub epoch: i64,
    /// The meta hash of the new generation (its `generation` is assigned here).
    pub meta: &'a Meta,
    /// Live names of every entry of the new generation.
    pub entries: &'a [String],
    /// Live names of every index of the new generation.
    pub indexes: &'a [String],
}

/// Swaps the generation in. Returns the new generation number and how many
/// shadow keys had vanished (left out of the new generation).
pub(crate) async fn swap(redis: &Redis, input: &SwapInput<'_>) -> Result<(u64, u64)> {
    let ds = input.ds;
    let node = redis.dedicated_master_of(&keys::warm_lock(ds)).await?;
    let mut conn = node.conn;
    for _ in 0..ATTEMPTS {
        watch_and_check(&mut conn, input).await?;
        let generation = next_generation(&mut conn, ds).await?;
        let stale_entries =
            live_not_in(redis, keys::master_index(ds, Gen::Live), input.entries).await?;
        let stale_indexes =
            live_not_in(redis, keys::index_list(ds, Gen::Live), input.indexes).await?;
        let tx = transaction(input, generation, &stale_entries, &stale_indexes);
        let reply: Option<Vec<RedisResult<Value>>> = tx
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis("swapping the new generation in", e))?;
        let Some(results) = reply else {
            // A watched key changed: check again and retry.
            continue;
        };
        let missing =
            repair_missing(&mut conn, input, &stale_entries, &stale_indexes, &results).await?;
        return Ok((generation, missing));
    }
    Err(Error::SwapAborted {
        ds,
        reason: format!(
            "the live cache kept changing during the swap ({ATTEMPTS} attempts); warm again"
        ),
    })
}

/// WATCHes the keys the swap depends on, then checks lock, epoch and shadow
/// sets. A failed check UNWATCHes and aborts.
async fn watch_and_check(conn: &mut MultiplexedConnection, input: &SwapInput<'_>) -> Result<()> {
    let ds = input.ds;
    let ctx = |e| Error::redis("checking the warm before the swap", e);
    redis::cmd("WATCH")
        .arg(keys::warm_lock(ds))
        .arg(keys::epoch(ds))
        .arg(keys::master_index(ds, Gen::Shadow))
        .arg(keys::master_index(ds, Gen::Live))
        .arg(keys::index_list(ds, Gen::Shadow))
        .arg(keys::index_list(ds, Gen::Live))
        .query_async::<()>(conn)
        .await
        .map_err(ctx)?;
    let (holder, epoch, shadow_sets): (Option<String>, Option<String>, u64) = redis::pipe()
        .cmd("GET")
        .arg(keys::warm_lock(ds))
        .cmd("GET")
        .arg(keys::epoch(ds))
        .cmd("EXISTS")
        .arg(keys::master_index(ds, Gen::Shadow))
        .arg(keys::index_list(ds, Gen::Shadow))
        .query_async(conn)
        .await
        .map_err(ctx)?;
    let expected_sets = u64::from(!input.entries.is_empty()) + u64::from(!input.indexes.is_empty());
    let reason = if holder.as_deref() != Some(input.job_id) {
        Some("this job no longer holds the warm lock")
    } else if epoch.as_deref().unwrap_or("0") != input.epoch.to_string() {
        Some("the datasource was invalidated while it was being warmed")
    } else if shadow_sets < expected_sets {
        Some("the shadow generation was deleted during the warm")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => {
            let _ = redis::cmd("UNWATCH").query_async::<()>(conn).await;
            Err(Error::SwapAborted {
                ds,
                reason: reason.into(),
            })
        }
    }
}

/// The generation number the swap writes (one more than the live meta's).
async fn next_generation(conn: &mut MultiplexedConnection, ds: DsId) -> Result<u64> {
    let current: Option<u64> = redis::cmd("HGET")
        .arg(keys::meta(ds))
        .arg("generation")
        .query_async(conn)
        .await
        .map_err(|e| Error::redis("reading the live generation", e))?;
    Ok(current.unwrap_or(0) + 1)
}

/// Members of the live set `set` that are not in `keep`, read in SSCAN
/// batches. The reads need not go through the WATCHing connection: EXEC
/// fails if the set changes after the WATCH.
async fn live_not_in(redis: &Redis, set: String, keep: &[String]) -> Result<Vec<String>> {
    let keep: HashSet<&str> = keep.iter().map(String::as_str).collect();
    let mut stale = Vec::new();
    let mut scan =
        SetScan::new(redis, set, "reading the live generation's keys").with_count(SCAN_COUNT);
    while let Some(batch) = scan.next().await? {
        stale.extend(batch.into_iter().filter(|k| !keep.contains(k.as_str())));
    }
    // SSCAN may return a member twice; each stale key once.
    stale.sort_unstable();
    stale.dedup();
    Ok(stale)
}

/// The MULTI/EXEC body. Its first commands are the UNLINKs, then one RENAME
/// per entry and per index, in `input` order (see [`repair_missing`]).
fn transaction(
    input: &SwapInput<'_>,
    generation: u64,
    stale_entries: &[String],
    stale_indexes: &[String],
) -> redis::Pipeline {
    let ds = input.ds;
    let mut p = redis::pipe();
    p.atomic().ignore_errors();
    for batch in stale_entries.chunks(UNLINK_BATCH) {
        p.cmd("UNLINK").arg(batch);
    }
    for batch in stale_indexes.chunks(UNLINK_BATCH) {
        p.cmd("UNLINK").arg(batch);
    }
    for k in input.entries {
        p.cmd("RENAME")
            .arg(keys::shadow_of_entry(ds, k).unwrap_or_default())
            .arg(k);
    }
    for k in input.indexes {
        p.cmd("RENAME")
            .arg(keys::shadow_of_index(ds, k).unwrap_or_default())
            .arg(k);
    }
    for (shadow, live, any) in [
        (
            keys::master_index(ds, Gen::Shadow),
            keys::master_index(ds, Gen::Live),
            !input.entries.is_empty(),
        ),
        (
            keys::index_list(ds, Gen::Shadow),
            keys::index_list(ds, Gen::Live),
            !input.indexes.is_empty(),
        ),
    ] {
        if any {
            p.cmd("RENAME").arg(shadow).arg(live);
        } else {
            p.cmd("DEL").arg(live);
        }
    }
    p.cmd("DEL").arg(keys::meta(ds));
    let mut hset = redis::cmd("HSET");
    hset.arg(keys::meta(ds))
        .arg("generation")
        .arg(generation.to_string());
    for (k, v) in input.meta.to_fields() {
        hset.arg(k).arg(v);
    }
    p.add_command(hset);
    p.cmd("SET")
        .arg(keys::last_warm(ds))
        .arg(&input.meta.warmed_at);
    p.cmd("DEL").arg(keys::stats_since_warm(ds));
    p
}

/// Takes every key whose RENAME failed (its shadow key had vanished) out of
/// the live generation. Returns how many there were.
async fn repair_missing(
    conn: &mut MultiplexedConnection,
    input: &SwapInput<'_>,
    stale_entries: &[String],
    stale_indexes: &[String],
    results: &[RedisResult<Value>],
) -> Result<u64> {
    let ds = input.ds;
    let unlinks =
        stale_entries.len().div_ceil(UNLINK_BATCH) + stale_indexes.len().div_ceil(UNLINK_BATCH);
    let renames = results.iter().skip(unlinks);
    let failed = |r: &RedisResult<Value>| r.is_err() || matches!(r, Ok(Value::ServerError(_)));
    let mut gone_entries = Vec::new();
    let mut gone_indexes = Vec::new();
    for (i, r) in renames
        .take(input.entries.len() + input.indexes.len())
        .enumerate()
    {
        if !failed(r) {
            continue;
        }
        match input.entries.get(i) {
            Some(k) => gone_entries.push(k.as_str()),
            None => gone_indexes.push(input.indexes[i - input.entries.len()].as_str()),
        }
    }
    let missing = (gone_entries.len() + gone_indexes.len()) as u64;
    if missing == 0 {
        return Ok(0);
    }
    let mut p = redis::pipe();
    for (set, gone) in [
        (keys::master_index(ds, Gen::Live), &gone_entries),
        (keys::index_list(ds, Gen::Live), &gone_indexes),
    ] {
        for batch in gone.chunks(UNLINK_BATCH) {
            p.cmd("SREM").arg(&set).arg(batch).ignore();
            p.cmd("UNLINK").arg(batch).ignore();
        }
    }
    p.query_async::<()>(conn)
        .await
        .map_err(|e| Error::redis("removing vanished shadow keys from the live generation", e))?;
    Ok(missing)
}
