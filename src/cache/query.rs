//! Reading the cache (README, "Reading"): one generation per query, and no
//! step that holds Redis for more than a few milliseconds whatever the
//! query's size.
//!
//! A script answers at once when the index sets to read hold at most
//! [`MEMBER_CAP`] members together. Otherwise it says `large` with the
//! generation and epoch, and the reader walks the sets with SSCAN, reads
//! the entries with MGET in chunks, then checks in one pipeline that the
//! master set still exists and the generation and epoch are unchanged;
//! if they changed it starts over (at most [`ATTEMPTS`] times, then a miss).
//! Hits, misses and time are recorded after the answer is back.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Instant;

use serde::Serialize;

use super::{scripts, stats};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen, SecondaryIndex};
use crate::redis_conn::Redis;

/// Members of the sets to read above which the script leaves the reading to
/// bounded steps.
pub const MEMBER_CAP: usize = 1000;
/// Members asked for per SSCAN of a large read.
pub const SCAN_COUNT: usize = 1000;
/// Keys per MGET of a large read.
pub const MGET_CHUNK: usize = 500;
/// Tries of a large read before it answers a miss.
pub const ATTEMPTS: u32 = 3;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    pub datasource: DsId,
    pub measure: String,
    pub frequency: String,
    /// Any of these practices (empty: all).
    pub practices: Vec<String>,
    /// Any of these providers; `None` stands for the NULL provider (empty: all).
    pub providers: Vec<Option<String>>,
}

/// The answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResult {
    /// True when the cache answered completely (false: cold, an entry is
    /// invalidated or gone, or a large read kept seeing swaps).
    pub hit: bool,
    /// The generation every returned entry belongs to.
    pub generation: u64,
    /// Entry keys read.
    pub entries: usize,
    /// The rows of every entry, in key order (empty on a miss).
    pub rows: Vec<serde_json::Value>,
    pub duration_ms: f64,
    /// True when the sets were larger than [`MEMBER_CAP`] and were read in
    /// bounded steps.
    pub large: bool,
    /// Reads started (more than one when a swap or an invalidation came
    /// between the steps of a large read).
    pub attempts: u32,
}

/// Runs one query and records its statistics in the background.
pub async fn query(redis: &Redis, req: &QueryRequest) -> Result<QueryResult> {
    let (result, recording) = run(redis, req, |_| async {}).await?;
    drop(recording);
    Ok(result)
}

/// Runs one query and waits until its statistics are recorded (the CLI,
/// which exits right after, and tests).
pub async fn query_recorded(redis: &Redis, req: &QueryRequest) -> Result<QueryResult> {
    let (result, recording) = run(redis, req, |_| async {}).await?;
    let _ = recording.await;
    Ok(result)
}

/// [`query`] that runs `between(attempt)` in a large read after the entries
/// were read and before the final check (tests put a swap there).
#[doc(hidden)]
pub async fn query_with_pause<F, Fut>(
    redis: &Redis,
    req: &QueryRequest,
    between: F,
) -> Result<QueryResult>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let (result, recording) = run(redis, req, between).await?;
    drop(recording);
    Ok(result)
}

/// The index sets a query reads: the practice indexes, the provider indexes
/// and the measure+frequency index, by live name.
struct Sets {
    measure_freq: String,
    practices: Vec<String>,
    providers: Vec<String>,
}

impl Sets {
    fn of(req: &QueryRequest) -> Sets {
        let ds = req.datasource;
        Sets {
            measure_freq: SecondaryIndex::MeasureFreq {
                measure: req.measure.clone(),
                frequency: req.frequency.clone(),
            }
            .key(ds, Gen::Live),
            practices: req
                .practices
                .iter()
                .map(|p| {
                    SecondaryIndex::Practice {
                        measure: req.measure.clone(),
                        practice: p.clone(),
                        frequency: req.frequency.clone(),
                    }
                    .key(ds, Gen::Live)
                })
                .collect(),
            providers: req
                .providers
                .iter()
                .map(|p| {
                    SecondaryIndex::Provider {
                        measure: req.measure.clone(),
                        provider: p.clone(),
                        frequency: req.frequency.clone(),
                    }
                    .key(ds, Gen::Live)
                })
                .collect(),
        }
    }
}

/// What one attempt found.
enum Step {
    /// Answered: hit or miss, generation, keys, values (`None`: missing).
    Done {
        hit: bool,
        generation: u64,
        entries: usize,
        values: Vec<Option<Vec<u8>>>,
    },
    /// The generation or epoch changed during a large read: start over.
    Changed,
}

async fn run<F, Fut>(
    redis: &Redis,
    req: &QueryRequest,
    mut between: F,
) -> Result<(QueryResult, tokio::task::JoinHandle<()>)>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    let ds = req.datasource;
    let sets = Sets::of(req);
    let mut large = false;
    let mut attempts = 0;
    let mut answer = None;
    while attempts < ATTEMPTS {
        attempts += 1;
        let step = match script(redis, req, &sets).await? {
            Scripted::Answer(step) => step,
            Scripted::Large { generation, epoch } => {
                large = true;
                read_large(redis, ds, &sets, generation, epoch, || between(attempts)).await?
            }
        };
        if let Step::Done { .. } = step {
            answer = Some(step);
            break;
        }
    }
    let (mut hit, generation, entries, values) = match answer {
        Some(Step::Done {
            hit,
            generation,
            entries,
            values,
        }) => (hit, generation, entries, values),
        // Swapped under every attempt: the application asks the database.
        _ => (false, 0, 0, Vec::new()),
    };
    let mut rows = Vec::new();
    if hit {
        for v in values.iter().flatten() {
            match serde_json::from_slice::<serde_json::Value>(v) {
                Ok(serde_json::Value::Array(a)) => rows.extend(a),
                // An entry holds a JSON array of rows; anything else was
                // not written by a warm and cannot answer the query.
                _ => {
                    hit = false;
                    break;
                }
            }
        }
        if !hit {
            rows.clear();
        }
    }
    let elapsed = started.elapsed();
    let us = elapsed.as_micros() as u64;
    // Recording is off the hot path: the answer does not wait for it.
    let r = redis.clone();
    let recording = tokio::spawn(async move {
        if let Err(e) = stats::record(&r, ds, hit, us).await {
            tracing::debug!("could not record query statistics: {e}");
        }
    });
    Ok((
        QueryResult {
            hit,
            generation,
            entries,
            rows,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            large,
            attempts,
        },
        recording,
    ))
}

/// What the script answered.
enum Scripted {
    Answer(Step),
    Large { generation: String, epoch: String },
}

fn bytes(v: &redis::Value) -> Option<Vec<u8>> {
    match v {
        redis::Value::BulkString(b) => Some(b.clone()),
        redis::Value::SimpleString(s) => Some(s.clone().into_bytes()),
        redis::Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Runs the query script: the whole answer when the sets are small.
async fn script(redis: &Redis, req: &QueryRequest, sets: &Sets) -> Result<Scripted> {
    let ds = req.datasource;
    let mut inv = scripts::QUERY.prepare_invoke();
    inv.key(keys::master_index(ds, Gen::Live))
        .key(keys::meta(ds))
        .key(keys::epoch(ds))
        .key(&sets.measure_freq);
    for k in sets.practices.iter().chain(&sets.providers) {
        inv.key(k);
    }
    // [read contract] A listed index that does not exist vanished: a miss.
    inv.key(keys::index_list(ds, Gen::Live));
    inv.arg(sets.practices.len())
        .arg(sets.providers.len())
        .arg(MEMBER_CAP);
    let mut conn = redis.conn();
    let reply: Vec<redis::Value> = inv
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("querying the cache", e))?;
    let text = super::value_text;
    let status = reply.first().map(text).unwrap_or_default();
    let generation = reply.get(1).map(text).unwrap_or_else(|| "0".into());
    let epoch = reply.get(2).map(text).unwrap_or_else(|| "0".into());
    if status == "large" {
        return Ok(Scripted::Large { generation, epoch });
    }
    let n: usize = reply
        .get(3)
        .map(text)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let values: Vec<Option<Vec<u8>>> = reply.iter().skip(4 + n).map(bytes).collect();
    Ok(Scripted::Answer(Step::Done {
        hit: status == "hit" && values.len() == n,
        generation: generation.parse().unwrap_or(0),
        entries: n,
        values,
    }))
}

/// Every member of `set`, read with SSCAN COUNT [`SCAN_COUNT`] as bytes (the
/// caller keeps only the datasource's entry names).
async fn members(redis: &Redis, set: &str) -> Result<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis
            .query(
                "reading an index set",
                redis::cmd("SSCAN")
                    .arg(set)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT),
            )
            .await?;
        out.extend(batch);
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

/// The union of the members of `sets`.
async fn union(redis: &Redis, sets: &[String]) -> Result<BTreeSet<Vec<u8>>> {
    let mut out = BTreeSet::new();
    for s in sets {
        out.append(&mut members(redis, s).await?);
    }
    Ok(out)
}

/// A large read: the sets in SSCAN steps, the entries in MGET chunks, then
/// the check that nothing was swapped or invalidated meanwhile.
async fn read_large<B, Fut>(
    redis: &Redis,
    ds: DsId,
    sets: &Sets,
    generation: String,
    epoch: String,
    between: B,
) -> Result<Step>
where
    B: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let chosen = match (sets.practices.is_empty(), sets.providers.is_empty()) {
        (true, true) => members(redis, &sets.measure_freq).await?,
        (false, true) => union(redis, &sets.practices).await?,
        (true, false) => union(redis, &sets.providers).await?,
        (false, false) => {
            let a = union(redis, &sets.practices).await?;
            let b = union(redis, &sets.providers).await?;
            a.intersection(&b).cloned().collect()
        }
    };
    // Only entry keys of this datasource (as the script): anything else in
    // an index set was written by something else.
    let prefix = keys::entry_prefix(ds, Gen::Live);
    let chosen: Vec<Vec<u8>> = chosen
        .into_iter()
        .filter(|k| k.starts_with(prefix.as_bytes()))
        .collect();
    let mut values: Vec<Option<Vec<u8>>> = Vec::with_capacity(chosen.len());
    for chunk in chosen.chunks(MGET_CHUNK) {
        let mut mget = redis::cmd("MGET");
        for k in chunk {
            mget.arg(k.as_slice());
        }
        let got: Vec<Option<Vec<u8>>> = redis.query("reading cache entries", &mget).await?;
        values.extend(got);
    }
    between().await;
    let mut p = redis::pipe();
    p.cmd("EXISTS").arg(keys::master_index(ds, Gen::Live));
    p.cmd("HGET").arg(keys::meta(ds)).arg("generation");
    p.cmd("GET").arg(keys::epoch(ds));
    // [read contract] Every set read must still exist unless the index
    // list does not name it (a value the source never had); one that
    // vanished (evicted, deleted) would make the answer shorter.
    let read: Vec<&String> = if sets.practices.is_empty() && sets.providers.is_empty() {
        vec![&sets.measure_freq]
    } else {
        sets.practices.iter().chain(&sets.providers).collect()
    };
    for k in &read {
        p.cmd("EXISTS").arg(k.as_str());
        p.cmd("SISMEMBER")
            .arg(keys::index_list(ds, Gen::Live))
            .arg(k.as_str());
    }
    let reply: Vec<redis::Value> = redis
        .pipe("checking the generation after a large read", &p)
        .await?;
    let text = |i: usize| reply.get(i).map(super::value_text).unwrap_or_default();
    let (exists, g, e) = (text(0) == "1", text(1), text(2));
    let none_as_zero = |t: String| if t.is_empty() { "0".to_string() } else { t };
    if none_as_zero(g) != generation || none_as_zero(e) != epoch {
        return Ok(Step::Changed);
    }
    let vanished = (0..read.len()).any(|i| text(3 + 2 * i) == "0" && text(4 + 2 * i) == "1");
    let hit =
        exists && !vanished && values.len() == chosen.len() && values.iter().all(Option::is_some);
    Ok(Step::Done {
        hit,
        generation: generation.parse().unwrap_or(0),
        entries: chosen.len(),
        values,
    })
}
