//! Taking over a cache the seed's application warmed (issue 15 §2).
//!
//! - **Unknown index sets.** The application keeps no index list, so the
//!   swap's comparison of index lists cannot see its index sets; before the
//!   swap of an adopting warm they are found by SCAN of `idx:{ds:N}:*` (TYPE
//!   set, on the master of the datasource's slot, in paced batches), leaving
//!   out cachedeck's own bookkeeping keys and the new generation's index
//!   names, and the swap UNLINKs them inside its MULTI/EXEC.
//! - **The application's shadow keys** (`cache:shadow:{ds:N}:m:…`,
//!   `idx:shadow:{ds:N}:…`, without cachedeck's fencing number) are counted
//!   for the health check, and removed in UNLINK batches only by a warm that
//!   holds cachedeck's lock (and found the application's lock free).
//!
//! A warm adopts when the live generation is not the one cachedeck's last
//! swap wrote: no meta hash with a generation, or `last_warm` differs from
//! the meta's `warmedAt` (the application warmed since).

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::written::Written;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;

/// SCAN COUNT hint.
const SCAN_COUNT: usize = 1000;
/// Pause between SCAN calls, so a walk never crowds out the application.
const PACE: Duration = Duration::from_millis(1);
/// Keys per UNLINK of the application's shadow keys.
const UNLINK_BATCH: usize = 500;

/// A SCAN of the master serving the datasource's `{ds:N}` slot, batch by
/// batch.
struct SlotScan {
    /// Connection to that master.
    conn: MultiplexedConnection,
    /// Its address, for errors.
    addr: String,
    /// SCAN MATCH glob.
    pattern: String,
    /// SCAN TYPE, when given.
    kind: Option<&'static str>,
    /// The next cursor; `None` once the scan is complete.
    cursor: Option<u64>,
}

impl SlotScan {
    async fn new(
        redis: &Redis,
        ds: DsId,
        pattern: String,
        kind: Option<&'static str>,
    ) -> Result<SlotScan> {
        let node = redis.master_of(&keys::master_index(ds, Gen::Live)).await?;
        Ok(SlotScan {
            conn: node.conn,
            addr: node.addr,
            pattern,
            kind,
            cursor: Some(0),
        })
    }

    /// The next batch of UTF-8 names (names that are not UTF-8 were written
    /// by something else: never ours); `None` when done.
    async fn next(&mut self) -> Result<Option<Vec<String>>> {
        let Some(cursor) = self.cursor else {
            return Ok(None);
        };
        if cursor != 0 {
            tokio::time::sleep(PACE).await;
        }
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        if let Some(k) = self.kind {
            cmd.arg("TYPE").arg(k);
        }
        let (next, batch): (u64, Vec<Vec<u8>>) = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(|e| Error::redis(format!("scanning {} on {}", self.pattern, self.addr), e))?;
        self.cursor = (next != 0).then_some(next);
        Ok(Some(
            batch
                .into_iter()
                .filter_map(|k| String::from_utf8(k).ok())
                .collect(),
        ))
    }
}

/// Whether a warm of `ds` starting now adopts the live generation: it
/// exists, and cachedeck's last swap did not write it (no meta generation,
/// or `last_warm` moved since).
pub(crate) async fn adopting(redis: &Redis, ds: DsId) -> Result<bool> {
    let mut p = redis::pipe();
    p.cmd("EXISTS").arg(keys::master_index(ds, Gen::Live));
    p.cmd("HMGET")
        .arg(keys::meta(ds))
        .arg("generation")
        .arg("warmedAt");
    p.cmd("GET").arg(keys::last_warm(ds));
    let (live, (generation, warmed_at), last_warm): (
        u64,
        (Option<String>, Option<String>),
        Option<String>,
    ) = redis
        .pipe("reading who wrote the live generation", &p)
        .await?;
    if live == 0 {
        return Ok(false);
    }
    let ours = generation.is_some_and(|g| g.parse::<u64>().is_ok_and(|g| g > 0));
    Ok(!ours || (last_warm.is_some() && last_warm != warmed_at))
}

/// Live index sets of `ds` the new generation lacks, by SCAN: every set
/// under `idx:{ds:N}:` that is neither cachedeck's bookkeeping nor an index
/// of the new generation (`written`).
pub(crate) async fn unknown_index_sets(
    redis: &Redis,
    ds: DsId,
    written: &Written,
) -> Result<Vec<String>> {
    let pattern = format!("{}*", keys::index_prefix(ds, Gen::Live));
    let mut scan = SlotScan::new(redis, ds, pattern, Some("set")).await?;
    let mut found = Vec::new();
    while let Some(batch) = scan.next().await? {
        found.extend(
            batch.into_iter().filter(|k| {
                !keys::is_index_bookkeeping(ds, k) && written.index_number(k).is_none()
            }),
        );
    }
    // SCAN may return a key twice.
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// The SCANs that find the application's shadow keys of `ds` (filter each
/// batch with [`keys::is_app_shadow`]): one pass over the slot's master
/// matching both `cache:shadow:{ds:N}:` and `idx:shadow:{ds:N}:`.
async fn app_shadow_scans(redis: &Redis, ds: DsId) -> Result<Vec<SlotScan>> {
    let pattern = format!("*shadow:{{ds:{ds}}}:*");
    Ok(vec![SlotScan::new(redis, ds, pattern, None).await?])
}

/// How many shadow keys the application's warmer left for `ds` (SCAN; read
/// only).
pub async fn count_app_shadow(redis: &Redis, ds: DsId) -> Result<u64> {
    let mut n = 0u64;
    for mut scan in app_shadow_scans(redis, ds).await? {
        while let Some(batch) = scan.next().await? {
            n += batch.iter().filter(|k| keys::is_app_shadow(ds, k)).count() as u64;
        }
    }
    Ok(n)
}

/// UNLINKs the application's shadow keys of `ds` in batches; returns how
/// many were removed. Only for a warm holding cachedeck's lock that found
/// the application's lock free.
pub(crate) async fn remove_app_shadow(redis: &Redis, ds: DsId) -> Result<u64> {
    let mut removed = 0u64;
    for mut scan in app_shadow_scans(redis, ds).await? {
        while let Some(batch) = scan.next().await? {
            let app: Vec<&String> = batch
                .iter()
                .filter(|k| keys::is_app_shadow(ds, k))
                .collect();
            for chunk in app.chunks(UNLINK_BATCH) {
                // The application's warmer does not know cachedeck's lock:
                // if it started meanwhile, these keys are its work now.
                crate::cache::lock::check_app_lock(redis, ds).await?;
                let n: u64 = redis
                    .query(
                        "deleting the application's shadow keys",
                        redis::cmd("UNLINK").arg(chunk),
                    )
                    .await?;
                removed += n;
            }
        }
    }
    Ok(removed)
}
