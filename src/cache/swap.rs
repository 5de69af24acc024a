//! The atomic swap of a warmed shadow generation over the live one, as one
//! MULTI/EXEC on a connection of its own to the master of the datasource's
//! `{ds:N}` slot, guarded by WATCH:
//!
//! 1. WATCH the fencing counter, the epoch, both master sets and both index
//!    lists — not the lock itself, whose lease the warm's guard keeps
//!    renewing (a PEXPIRE on a watched key would void every EXEC of a swap
//!    that takes longer than a renewal interval). Every acquisition of the
//!    lock increments the fencing counter, so a new holder voids the EXEC.
//! 2. Check (outside the transaction, nothing blocks other clients) that this
//!    job holds the lock under its fencing number, the epoch is the one the
//!    warm began with and the shadow sets exist.
//! 3. Find how the generations differ: live entries and indexes the new
//!    generation lacks, entries and indexes it adds. On a refresh the write
//!    pipelines already noted (SMISMEMBER) which new entries and indexes the
//!    live sets lacked, and the live sets' member counts tell whether
//!    anything was removed; only then, or when the counts do not add up, does
//!    Redis compare whole sets (SDIFFSTORE into scratch sets read back in
//!    SSCAN batches).
//! 4. Write the sets of the indexes the live generation lacks under their
//!    shadow names — every index when there is no live generation, when it
//!    expires too soon to rely on, or when the warm was forced (which also
//!    repairs index sets damaged by hand). Every other index keeps its live
//!    set.
//! 5. Estimate the generation's memory for the meta hash.
//! 6. MULTI: UNLINK the removed entries and indexes, RENAME every shadow
//!    entry and every written index over its live key; give every kept
//!    index the new generation's expiry (PEXPIREAT) and, when an added or
//!    removed entry belongs to it, SADD / SREM just those members (adds
//!    first, so a set never empties and loses its expiry); RENAME the shadow
//!    sets over the live ones, write meta and `last_warm`, reset
//!    `since_warm`; EXEC.
//!
//! If a watched key changed between 1 and EXEC, EXEC does nothing and the
//! swap starts over from 1, where a failed check aborts it with the reason
//! (a new lock holder, an invalidation): the live cache is unchanged. When
//! the checks pass again, the live or shadow sets themselves were changed
//! by someone else; after the last attempt the error says so.
//!
//! Why not a Lua script: the script ran the same renames through Lua's
//! `redis.call`, holding the server 2–3 × longer than the MULTI/EXEC of the
//! same RENAMEs (BENCHMARKS.md), and computed the stale keys inside the
//! atomic window; here only the renames, expiries and deletes are inside it.
//! Why indexes are written here and not while rows stream in: a refresh then
//! sends only the memberships that changed (none when the groups did not),
//! and gives each index a PEXPIREAT instead of a RENAME.
//!
//! MULTI/EXEC does not roll back: a shadow entry deleted behind the warm's back
//! (eviction, by hand) makes its RENAME fail alone; such a key is then taken
//! out of the live master set and of every secondary index it belongs to
//! (an index left empty leaves the index list too), and counted. An index
//! set that vanished (its shadow copy, or a kept live set) is written again
//! under its live name. Both repairs run only while the fencing counter is
//! still this warm's, so they never touch a later holder's generation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};

use super::estimate;
use super::meta::Meta;
use super::scripts;
use super::set_scan::SetScan;
use super::written::{IndexChange, Written};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Fence, Gen, ParsedKey};
use crate::redis_conn::Redis;

/// Times the swap starts over when a watched key changed under it.
const ATTEMPTS: usize = 5;
/// Vanished entries per repair script call.
const REPAIR_BATCH: usize = 100;
/// Keys per UNLINK of stale live keys.
const UNLINK_BATCH: usize = 500;
/// Members per SADD when an index set is written.
const SADD_BATCH: usize = 1000;
/// Commands per pipeline when index sets are written.
const PIPELINE_COMMANDS: usize = 2000;
/// Lifetime of the scratch sets of the comparison, should the swap never get
/// to delete them.
const SCRATCH_TTL_MS: u64 = 60_000;
/// A live generation expiring sooner than this is not relied on: every index
/// is written anew instead of keeping live sets that could expire before
/// the EXEC.
const LIVE_MARGIN_MS: i64 = 5 * 60_000;

/// What the swap puts in place.
pub(crate) struct SwapInput<'a> {
    /// The datasource.
    pub ds: DsId,
    /// The job that must hold the warm lock.
    pub job_id: &'a str,
    /// The fencing number it took the lock with (names its shadow keys).
    pub fence: Fence,
    /// The epoch seen when the warm began.
    pub epoch: i64,
    /// The generation's absolute expiry (ms), given to the index sets.
    pub expire_at: i64,
    /// Write every index set under its shadow name and rename it, whatever
    /// the live generation holds.
    pub rebuild_indexes: bool,
    /// What the warm's write pipelines saw the live sets lack, when they
    /// looked (SMISMEMBER).
    pub observed: Option<&'a Observed>,
    /// Every entry and index of the new generation.
    pub written: &'a Written,
    /// Live index sets no index list names and the new generation lacks
    /// (an adopted cache's, found by SCAN before the swap): UNLINKed in
    /// the MULTI/EXEC with the other removed keys.
    pub unknown_indexes: &'a [String],
}

/// New entries and indexes of a warm that the live sets did not hold when
/// they were written (live names).
#[derive(Debug, Default, Clone)]
pub(crate) struct Observed {
    pub added_entries: Vec<String>,
    pub added_indexes: Vec<String>,
}

/// The live generation as the swap finds it.
struct LiveState {
    /// PTTL of the live master set (-2: no live generation, -1: no expiry).
    ttl: i64,
    /// Members of the live master set and of the live index list.
    entries: usize,
    indexes: usize,
}

/// How the two generations differ (live names).
struct Differences<'a> {
    /// Live entries the new generation lacks.
    removed_entries: Vec<String>,
    /// Live indexes the new generation lacks.
    removed_indexes: Vec<String>,
    /// Entries and indexes of the new generation the live one lacks: what
    /// the write pipelines noted, or what Redis compared.
    added: Cow<'a, Observed>,
}

/// Swaps the generation in, filling in the meta's memory estimate. Returns
/// the new generation number and how many shadow entries had vanished (left
/// out of the new generation).
pub(crate) async fn swap(
    redis: &Redis,
    input: &SwapInput<'_>,
    meta: &mut Meta,
) -> Result<(u64, u64)> {
    let ds = input.ds;
    let written = input.written;
    let node = redis.dedicated_master_of(&keys::warm_lock(ds)).await?;
    let mut conn = node.conn;
    let started = std::time::Instant::now();
    // Index sets written under their shadow name, by index number (kept
    // across attempts: a written set is renamed even if a later comparison
    // finds it unchanged).
    let mut shadowed = vec![false; written.index_count()];
    for _ in 0..ATTEMPTS {
        let live = watch_and_check(&mut conn, input).await?;
        let generation = next_generation(&mut conn, ds).await?;
        // Keep live index sets only when the live generation exists and
        // outlives the swap; otherwise every set is written and renamed, and
        // what the new generation adds need not be read.
        let keep_live = reliable(live.ttl) && !input.rebuild_indexes;
        let diff = compare(redis, &mut conn, input, &live, keep_live).await?;
        let rewrite: Vec<u32> = if keep_live {
            diff.added
                .added_indexes
                .iter()
                .filter_map(|n| written.index_number(n))
                .collect()
        } else {
            (0..written.index_count() as u32).collect()
        };
        let fresh: Vec<u32> = rewrite
            .into_iter()
            .filter(|&i| !std::mem::replace(&mut shadowed[i as usize], true))
            .collect();
        write_shadow_indexes(redis, input, &fresh).await?;
        // Members changed in place only in kept sets; with none kept there
        // is nothing to work out.
        let changes = if keep_live {
            written.changes(&diff.added.added_entries, &diff.removed_entries)
        } else {
            BTreeMap::new()
        };
        tracing::debug!(
            ds,
            ms = started.elapsed().as_millis() as u64,
            rewritten = fresh.len(),
            "swap: compared and indexes written"
        );
        let (bytes, sample) =
            estimate::generation_memory(redis, (ds, input.fence), written, &shadowed).await?;
        meta.memory_bytes = bytes;
        meta.memory_sample_size = sample;
        // The application's warm lock, right before the EXEC (a command of
        // its own: another slot in a cluster). Between this read and the
        // EXEC (a few milliseconds) the application could still take it;
        // its own swap, later, then replaces this generation.
        super::lock::check_app_lock(redis, ds).await?;
        let tx = Transaction::build(input, meta, generation, &diff, &shadowed, &changes);
        let reply: Option<Vec<RedisResult<Value>>> = tx
            .pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis("swapping the new generation in", e))?;
        tracing::debug!(
            ds,
            ms = started.elapsed().as_millis() as u64,
            "swap: executed"
        );
        let Some(results) = reply else {
            // A watched key changed: the next check names a new holder or
            // an invalidation; if it passes, the sets themselves changed.
            continue;
        };
        let missing = repair(&mut conn, input, &tx, &results).await?;
        return Ok((generation, missing));
    }
    Err(Error::SwapAborted {
        ds,
        reason: format!(
            "the live sets (master set or index list) were changed by another client during each of {ATTEMPTS} attempts; find what writes idx:{{ds:{ds}}}:master or :indexes, then warm again"
        ),
    })
}

/// WATCHes the keys the swap depends on, then checks lock, fence, epoch and
/// shadow sets. A failed check UNWATCHes and aborts. Returns the live
/// master set's state.
async fn watch_and_check(
    conn: &mut MultiplexedConnection,
    input: &SwapInput<'_>,
) -> Result<LiveState> {
    let ds = input.ds;
    let shadow = Gen::Shadow(input.fence);
    let ctx = |e| Error::redis("checking the warm before the swap", e);
    redis::cmd("WATCH")
        .arg(keys::warm_fence(ds))
        .arg(keys::epoch(ds))
        .arg(keys::master_index(ds, shadow))
        .arg(keys::master_index(ds, Gen::Live))
        .arg(keys::index_list(ds, shadow))
        .arg(keys::index_list(ds, Gen::Live))
        .query_async::<()>(conn)
        .await
        .map_err(ctx)?;
    let (holder, fence, epoch, shadow_sets, ttl, entries, indexes): (
        Option<String>,
        Option<String>,
        Option<String>,
        u64,
        i64,
        usize,
        usize,
    ) = redis::pipe()
        .cmd("GET")
        .arg(keys::warm_lock(ds))
        .cmd("GET")
        .arg(keys::warm_fence(ds))
        .cmd("GET")
        .arg(keys::epoch(ds))
        .cmd("EXISTS")
        .arg(keys::master_index(ds, shadow))
        .arg(keys::index_list(ds, shadow))
        .cmd("PTTL")
        .arg(keys::master_index(ds, Gen::Live))
        .cmd("SCARD")
        .arg(keys::master_index(ds, Gen::Live))
        .cmd("SCARD")
        .arg(keys::index_list(ds, Gen::Live))
        .query_async(conn)
        .await
        .map_err(ctx)?;
    let w = input.written;
    let expected_sets = u64::from(w.entry_count() > 0) + u64::from(w.index_count() > 0);
    let ours = holder.as_deref() == Some(input.job_id)
        && fence.as_deref() == Some(itoa::Buffer::new().format(input.fence));
    let failure = if !ours {
        Some(Error::LostLock {
            ds,
            holder: match holder {
                Some(h) if h != input.job_id => h,
                Some(_) => "a later acquisition by this same job".into(),
                None => "nobody (its lease expired)".into(),
            },
        })
    } else if epoch.as_deref().unwrap_or("0") != input.epoch.to_string() {
        Some(Error::SwapAborted {
            ds,
            reason: "the datasource was invalidated while it was being warmed".into(),
        })
    } else if shadow_sets < expected_sets {
        Some(Error::SwapAborted {
            ds,
            reason: "the shadow generation was deleted during the warm".into(),
        })
    } else {
        None
    };
    match failure {
        None => Ok(LiveState {
            ttl,
            entries,
            indexes,
        }),
        Some(e) => {
            let _ = redis::cmd("UNWATCH").query_async::<()>(conn).await;
            Err(e)
        }
    }
}

/// Whether a live generation whose master set has this PTTL can keep its
/// index sets through a warm and its swap: it exists and does not expire
/// within [`LIVE_MARGIN_MS`].
fn reliable(live_ttl: i64) -> bool {
    live_ttl == -1 || live_ttl > LIVE_MARGIN_MS
}

/// Whether the live generation of `ds` exists and will not expire before a
/// warm starting now could swap (then the warm notes what it adds to it).
pub(crate) async fn live_is_reliable(redis: &Redis, ds: DsId) -> Result<bool> {
    let ttl: i64 = redis
        .query(
            "reading the live generation's expiry",
            redis::cmd("PTTL").arg(keys::master_index(ds, Gen::Live)),
        )
        .await?;
    Ok(reliable(ttl))
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

/// Compares the generations in Redis: each difference is computed into a
/// scratch set (≈ 20 ms of server time per 35,000 members, and no reply the
/// size of a set, against a round trip per few thousand to read whole sets),
/// read back in SSCAN batches when not empty, and deleted. The scratch sets
/// are not watched, so writing them keeps the transaction valid; the live and
/// shadow sets are, so EXEC fails if any changes after this. Only the
/// comparisons `which` asks for run (removed entries, removed indexes, added
/// entries, added indexes); the others come back empty.
async fn differences(
    redis: &Redis,
    conn: &mut MultiplexedConnection,
    (ds, fence): (DsId, Fence),
    which: [bool; 4],
) -> Result<Differences<'static>> {
    let (live_m, shadow_m) = (
        keys::master_index(ds, Gen::Live),
        keys::master_index(ds, Gen::Shadow(fence)),
    );
    let (live_l, shadow_l) = (
        keys::index_list(ds, Gen::Live),
        keys::index_list(ds, Gen::Shadow(fence)),
    );
    let all = [
        ("removed:master", &live_m, &shadow_m),
        ("removed:indexes", &live_l, &shadow_l),
        ("added:master", &shadow_m, &live_m),
        ("added:indexes", &shadow_l, &live_l),
    ];
    let plan: Vec<_> = all
        .iter()
        .zip(which)
        .filter(|(_, run)| *run)
        .map(|(p, _)| *p)
        .collect();
    let ctx = |e| Error::redis("comparing the new generation with the live one", e);
    let mut p = redis::pipe();
    for (what, from, minus) in &plan {
        let scratch = keys::swap_diff(ds, fence, what);
        p.cmd("SDIFFSTORE").arg(&scratch).arg(from).arg(minus);
        p.cmd("PEXPIRE").arg(&scratch).arg(SCRATCH_TTL_MS).ignore();
    }
    let counts: Vec<u64> = p.query_async(conn).await.map_err(ctx)?;
    let mut found = std::collections::HashMap::new();
    for ((what, _, _), count) in plan.iter().zip(counts) {
        let scratch = keys::swap_diff(ds, fence, what);
        let mut members = Vec::with_capacity(count as usize);
        if count > 0 {
            // [read contract] Only names of this datasource (same slot, own
            // namespace): a foreign member (another prefix or datasource,
            // not UTF-8) is skipped, never UNLINKed nor an error.
            // A prefix is not enough: `idx:{ds:N}:` also starts the shadow
            // registry, the scratch sets and the trash, which a member
            // planted in the index list would make the MULTI UNLINK.
            let entries = what.ends_with("master");
            let mut scan =
                SetScan::new(redis, scratch.as_str(), "reading the compared keys").only(move |k| {
                    match keys::parse(k) {
                        Some(ParsedKey::Entry {
                            ds: d,
                            generation: Gen::Live,
                            ..
                        }) => entries && d == ds,
                        Some(ParsedKey::Secondary {
                            ds: d,
                            generation: Gen::Live,
                            ..
                        }) => !entries && d == ds,
                        _ => false,
                    }
                });
            while let Some(batch) = scan.next().await? {
                members.extend(batch);
            }
            // SSCAN may return a member twice; each key once.
            members.sort_unstable();
            members.dedup();
        }
        found.insert(*what, members);
    }
    let mut unlink = redis::cmd("UNLINK");
    for (what, _, _) in &plan {
        unlink.arg(keys::swap_diff(ds, fence, what));
    }
    unlink.query_async::<()>(conn).await.map_err(ctx)?;
    let mut take = |what: &str| found.remove(what).unwrap_or_default();
    Ok(Differences {
        removed_entries: take("removed:master"),
        removed_indexes: take("removed:indexes"),
        added: Cow::Owned(Observed {
            added_entries: take("added:master"),
            added_indexes: take("added:indexes"),
        }),
    })
}

/// How the generations differ. When the live index sets are kept and the
/// write pipelines noted what the live sets lacked, that is what the new
/// generation adds, and the member counts tell whether anything was removed
/// (live members − members the new generation shares with it): only those
/// comparisons run, usually none. Counts that do not add up (the live sets
/// changed by hand since) fall back to comparing everything.
async fn compare<'a>(
    redis: &Redis,
    conn: &mut MultiplexedConnection,
    input: &SwapInput<'a>,
    live: &LiveState,
    keep_live: bool,
) -> Result<Differences<'a>> {
    let ds = (input.ds, input.fence);
    let w = input.written;
    let observed = input.observed.filter(|_| keep_live);
    let Some(o) = observed else {
        return differences(redis, conn, ds, [true, true, keep_live, keep_live]).await;
    };
    let shared_entries = w.entry_count().saturating_sub(o.added_entries.len());
    let shared_indexes = w.index_count().saturating_sub(o.added_indexes.len());
    if live.entries < shared_entries || live.indexes < shared_indexes {
        return differences(redis, conn, ds, [true; 4]).await;
    }
    let which = [
        live.entries > shared_entries,
        live.indexes > shared_indexes,
        false,
        false,
    ];
    let (removed_entries, removed_indexes) = if which.contains(&true) {
        let d = differences(redis, conn, ds, which).await?;
        (d.removed_entries, d.removed_indexes)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Differences {
        removed_entries,
        removed_indexes,
        added: Cow::Borrowed(o),
    })
}

/// Queues the commands that write index number `i`'s set under `key` with
/// the generation's expiry. Returns how many commands.
fn index_set(p: &mut redis::Pipeline, input: &SwapInput<'_>, i: u32, key: &str) -> usize {
    let members: Vec<&str> = input.written.members(i).collect();
    for batch in members.chunks(SADD_BATCH) {
        p.cmd("SADD").arg(key).arg(batch).ignore();
    }
    p.cmd("PEXPIREAT").arg(key).arg(input.expire_at).ignore();
    1 + members.len().div_ceil(SADD_BATCH)
}

/// Writes the sets of the given indexes (by number) under their shadow
/// names, in pipelines.
async fn write_shadow_indexes(redis: &Redis, input: &SwapInput<'_>, numbers: &[u32]) -> Result<()> {
    let mut p = redis::pipe();
    let mut commands = 0;
    for &i in numbers {
        let key = keys::shadow_of_index(input.ds, input.fence, input.written.index_name(i))
            .unwrap_or_default();
        commands += index_set(&mut p, input, i, &key);
        if commands >= PIPELINE_COMMANDS {
            redis.pipe::<()>("writing index sets", &p).await?;
            p = redis::pipe();
            commands = 0;
        }
    }
    if commands > 0 {
        redis.pipe::<()>("writing index sets", &p).await?;
    }
    Ok(())
}

/// Writes the sets of the given indexes again under their live names, each
/// replaced as a whole in a MULTI/EXEC of its own (on the slot master's
/// connection), for live sets that vanished during the warm. Each runs only
/// while the fencing counter is still this warm's; returns `false` (and
/// stops) when it is not.
async fn rewrite_live_indexes(
    conn: &mut MultiplexedConnection,
    input: &SwapInput<'_>,
    numbers: &[u32],
) -> Result<bool> {
    let ctx = |e| Error::redis("writing a vanished index set again", e);
    for &i in numbers {
        let key = input.written.index_name(i);
        let fence = keys::warm_fence(input.ds);
        redis::cmd("WATCH")
            .arg(&fence)
            .query_async::<()>(conn)
            .await
            .map_err(ctx)?;
        let current: Option<Fence> = redis::cmd("GET")
            .arg(&fence)
            .query_async(conn)
            .await
            .map_err(ctx)?;
        if current != Some(input.fence) {
            let _ = redis::cmd("UNWATCH").query_async::<()>(conn).await;
            return Ok(false);
        }
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("UNLINK").arg(key).ignore();
        index_set(&mut p, input, i, key);
        let done: Option<()> = p.query_async(conn).await.map_err(ctx)?;
        if done.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The MULTI/EXEC body and where each command's reply lands.
struct Transaction {
    pipe: redis::Pipeline,
    /// Replies before the first RENAME (the UNLINKs).
    unlinks: usize,
    /// Index numbers renamed from their shadow name, in reply order after
    /// the entries' RENAMEs.
    renamed: Vec<u32>,
    /// Index numbers given the new expiry, in reply order after those (the
    /// SADD / SREM of changed members answer nothing: ignored).
    kept: Vec<u32>,
}

impl Transaction {
    fn build(
        input: &SwapInput<'_>,
        meta: &Meta,
        generation: u64,
        diff: &Differences<'_>,
        shadowed: &[bool],
        changes: &BTreeMap<u32, IndexChange<'_>>,
    ) -> Transaction {
        let ds = input.ds;
        let written = input.written;
        let mut p =
            redis::Pipeline::with_capacity(written.entry_count() + written.index_count() + 8);
        p.atomic().ignore_errors();
        let mut unlinks = 0;
        for stale in [
            &diff.removed_entries[..],
            &diff.removed_indexes[..],
            input.unknown_indexes,
        ] {
            for batch in stale.chunks(UNLINK_BATCH) {
                p.cmd("UNLINK").arg(batch);
                unlinks += 1;
            }
        }
        for k in written.entry_names() {
            let shadow = keys::shadow_of_entry(ds, input.fence, k).unwrap_or_default();
            // Sized up front: tens of thousands of these are built while
            // Redis waits.
            let mut rename = redis::Cmd::with_capacity(3, 6 + shadow.len() + k.len());
            rename.arg("RENAME").arg(shadow).arg(k);
            p.add_command(rename);
        }
        let (renamed, kept): (Vec<u32>, Vec<u32>) =
            (0..written.index_count() as u32).partition(|&i| shadowed[i as usize]);
        for &i in &renamed {
            let k = written.index_name(i);
            p.cmd("RENAME")
                .arg(keys::shadow_of_index(ds, input.fence, k).unwrap_or_default())
                .arg(k);
        }
        for &i in &kept {
            let key = written.index_name(i);
            let mut expire = redis::Cmd::with_capacity(3, 32 + key.len());
            expire.arg("PEXPIREAT").arg(key).arg(input.expire_at);
            p.add_command(expire);
            if let Some(c) = changes.get(&i) {
                for batch in c.added.chunks(SADD_BATCH) {
                    p.cmd("SADD").arg(key).arg(batch).ignore();
                }
                for batch in c.removed.chunks(SADD_BATCH) {
                    p.cmd("SREM").arg(key).arg(batch).ignore();
                }
            }
        }
        for (shadow, live, any) in [
            (
                keys::master_index(ds, Gen::Shadow(input.fence)),
                keys::master_index(ds, Gen::Live),
                written.entry_count() > 0,
            ),
            (
                keys::index_list(ds, Gen::Shadow(input.fence)),
                keys::index_list(ds, Gen::Live),
                written.index_count() > 0,
            ),
        ] {
            if any {
                // RENAME over the old set would free its million members
                // on the main thread inside the EXEC (lazyfree-lazy-server-del
                // is off by default); UNLINK frees it in the background.
                p.cmd("UNLINK").arg(&live);
                p.cmd("RENAME").arg(shadow).arg(live);
            } else {
                // UNLINK: a live set of a million members is freed off
                // the main thread, not inside the EXEC.
                p.cmd("UNLINK").arg(live);
            }
        }
        p.cmd("DEL").arg(keys::meta(ds));
        let mut hset = redis::cmd("HSET");
        hset.arg(keys::meta(ds))
            .arg("generation")
            .arg(generation.to_string());
        for (k, v) in meta.to_fields() {
            hset.arg(k).arg(v);
        }
        p.add_command(hset);
        p.cmd("SET").arg(keys::last_warm(ds)).arg(&meta.warmed_at);
        p.cmd("DEL").arg(keys::stats_since_warm(ds));
        // [read contract] Entries a selective invalidation deleted but kept
        // listed are back in this generation: nothing waits for a warm now.
        p.cmd("UNLINK").arg(keys::invalidated(ds));
        // The generation is live: it is no shadow left to clean up.
        p.cmd("ZREM")
            .arg(keys::shadow_registry(ds))
            .arg(input.fence);
        Transaction {
            pipe: p,
            unlinks,
            renamed,
            kept,
        }
    }
}

/// After EXEC: every entry whose RENAME failed (its shadow key had vanished)
/// has no value in the new generation: it stays listed in the master and
/// index sets, its live key (the previous generation's value) is deleted and
/// it is recorded in `cache:meta:{ds:N}:invalidated`, so queries touching it
/// miss until the next warm (which a recent warm does not skip then). Every
/// index whose shadow copy or kept live set had vanished is written again
/// under its live name. Nothing is repaired once another holder took the
/// lock (its generation replaces this one anyway). Returns how many entries
/// were missing.
async fn repair(
    conn: &mut MultiplexedConnection,
    input: &SwapInput<'_>,
    tx: &Transaction,
    results: &[RedisResult<Value>],
) -> Result<u64> {
    let ds = input.ds;
    let written = input.written;
    let failed = |r: &RedisResult<Value>| r.is_err() || matches!(r, Ok(Value::ServerError(_)));
    let mut replies = results.iter().skip(tx.unlinks);
    let gone_entries: Vec<usize> = written
        .entry_names()
        .zip(replies.by_ref())
        .enumerate()
        .filter(|(_, (_, r))| failed(r))
        .map(|(e, _)| e)
        .collect();
    let mut rewrite: Vec<u32> = tx
        .renamed
        .iter()
        .zip(replies.by_ref())
        .filter(|(_, r)| failed(r))
        .map(|(&i, _)| i)
        .collect();
    // PEXPIREAT answers 0 when the key does not exist (a kept index whose
    // changed members were then added to a new set without expiry: the
    // rewrite replaces it as a whole).
    rewrite.extend(
        tx.kept
            .iter()
            .zip(replies)
            .filter(|(_, r)| failed(r) || matches!(r, Ok(Value::Int(0))))
            .map(|(&i, _)| i),
    );
    if !rewrite.is_empty() {
        tracing::warn!(
            "datasource {ds}: {} index sets had vanished during the warm and were written again",
            rewrite.len()
        );
        if !rewrite_live_indexes(conn, input, &rewrite).await? {
            return Ok(gone_entries.len() as u64);
        }
    }
    for batch in gone_entries.chunks(REPAIR_BATCH) {
        let mut inv = scripts::REPAIR.prepare_invoke();
        inv.key(keys::warm_fence(ds))
            .key(keys::master_index(ds, Gen::Live))
            .key(keys::invalidated(ds))
            .arg(input.fence)
            .arg(input.expire_at);
        for &e in batch {
            inv.key(written.entry_name(e));
        }
        let applied: i64 = inv
            .invoke_async(conn)
            .await
            .map_err(|e| Error::redis("recording vanished entries as invalidated", e))?;
        if applied < 0 {
            break;
        }
    }
    Ok(gone_entries.len() as u64)
}
