//! Memory and big-key analysis (`cachedeck analyze`).
//!
//! A paced SCAN walks every master (a short sleep between SCAN calls, like
//! the browser, so other clients keep being served). For every batch of keys
//! one node returned, three pipelines on that node's own connection ask for
//! `TYPE` and `PTTL`, then the length (`STRLEN`/`LLEN`/`HLEN`/`SCARD`/
//! `ZCARD`/`XLEN`), then `MEMORY USAGE` (exact with `SAMPLES 0` up to
//! [`EXACT_UP_TO`] elements, sampled above it so a huge collection never
//! costs a long command).
//!
//! Memory for the result is fixed: two top-K lists (by memory and by
//! length), a namespace map capped at [`NAMESPACE_CAP`] prefixes (later
//! prefixes go to [`OTHER`]), a type map and a handful of TTL buckets. With
//! a sample, each node gives its share of the N keys (in proportion to its
//! `DBSIZE`) and totals are scaled to the keyspace and marked `sampled`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{Cmd, RedisResult, Value};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::scan::Seen;
use super::{KeyInfo, check_pattern, info::namespace_cuts, is_redirect};
use crate::error::{Error, Result};
use crate::keys;
use crate::redis_conn::Redis;

/// Collections with at most this many elements are measured exactly
/// (`MEMORY USAGE … SAMPLES 0`); larger ones with [`LARGE_SAMPLES`].
pub const EXACT_UP_TO: i64 = 1000;
/// `SAMPLES` for collections above [`EXACT_UP_TO`].
const LARGE_SAMPLES: u32 = 64;
/// Most namespaces kept apart; later ones are summed in [`OTHER`].
pub const NAMESPACE_CAP: usize = 10_000;
/// The bucket of namespaces beyond [`NAMESPACE_CAP`].
pub const OTHER: &str = "(other)";
/// The namespace of keys without a `:`.
pub const NO_PREFIX: &str = "(no prefix)";
/// SCAN COUNT per call: the browser's default.
const SCAN_COUNT: usize = super::scan::COUNT_DEFAULT;
/// A string above this size is a big key.
pub const BIG_STRING_BYTES: u64 = 10 * 1024 * 1024;
/// A collection with more elements than this is a big key.
pub const BIG_COLLECTION_LEN: u64 = 1_000_000;
/// TTL bucket bounds (ms): a minute, an hour, a day, a week; the last
/// bucket (`upToMs: null`) holds longer TTLs.
const TTL_BOUNDS: [u64; 4] = [60_000, 3_600_000, 86_400_000, 604_800_000];
/// A namespace whose keys mostly expire within this many ms is reported.
const HOUR_MS: u64 = 3_600_000;

/// What to analyse.
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// SCAN MATCH glob; `*` means every key.
    pub pattern: Vec<u8>,
    /// Only keys of this Redis type (SCAN's `TYPE` option).
    pub type_filter: Option<String>,
    /// Stop after about this many keys and scale to the keyspace; `None`
    /// scans every key (`--full`).
    pub sample: Option<u64>,
    /// Length of each top-keys list.
    pub top: usize,
    /// How many `:` segments make a namespace.
    pub depth: usize,
    /// Sleep between SCAN calls, leaving the server to other clients (the
    /// browser's `BROWSE_PACE` by default).
    pub pace: Duration,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            pattern: b"*".to_vec(),
            type_filter: None,
            sample: None,
            top: 20,
            depth: 2,
            pace: crate::backend::BROWSE_PACE,
        }
    }
}

/// Progress of a running analysis.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalyzeProgress {
    /// Keys analysed so far.
    pub scanned: u64,
    /// Keys in the keyspace (DBSIZE over every master), for "N of M".
    pub keyspace: u64,
}

/// One key of a top list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopKey {
    /// The printable name and its hex (see [`KeyInfo`]).
    #[serde(flatten)]
    pub key: KeyInfo,
    /// Redis type (`string`, `hash`, …).
    #[serde(rename = "type")]
    pub key_type: String,
    /// `MEMORY USAGE` in bytes (estimated for large collections).
    pub memory_bytes: u64,
    /// Bytes of a string, elements of a collection.
    pub length: u64,
    /// Remaining time to live in ms; `None` when the key never expires.
    pub ttl_ms: Option<u64>,
}

/// Totals of one namespace.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// The namespace as a glob (`cache:{ds:1}:*`), [`NO_PREFIX`] or [`OTHER`].
    pub prefix: String,
    /// Keys (scaled when sampled).
    pub keys: u64,
    /// Memory in bytes (scaled when sampled).
    pub memory_bytes: u64,
    /// Mean TTL of the keys that expire; `None` when none does.
    pub avg_ttl_ms: Option<u64>,
    /// Keys without expiry (scaled when sampled).
    pub no_expiry: u64,
    /// Sum of TTLs of expiring keys, for the mean.
    #[serde(skip)]
    ttl_sum: u128,
    /// Expiring keys seen, for the mean.
    #[serde(skip)]
    ttl_count: u64,
    /// Keys expiring within the hour, for the recommendation.
    #[serde(skip)]
    within_hour: u64,
}

/// Totals of one type.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeTotals {
    /// Keys of the type (scaled when sampled).
    pub keys: u64,
    /// Their memory in bytes (scaled when sampled).
    pub memory_bytes: u64,
}

/// One TTL bucket.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlBucket {
    /// Upper bound of the remaining TTL; `None` for the open last bucket.
    pub up_to_ms: Option<u64>,
    /// Keys in it (scaled when sampled).
    pub keys: u64,
    /// Their memory in bytes (scaled when sampled).
    pub memory_bytes: u64,
}

/// The TTL histogram.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlSummary {
    /// Keys that never expire (scaled when sampled).
    pub no_expiry: u64,
    /// Expiring keys by remaining TTL.
    pub buckets: Vec<TtlBucket>,
}

/// One piece of advice, with the figures behind it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// Stable name: `no-expiry-in-cache`, `big-key`, `short-lived-namespace`,
    /// `analytics-cache-share`, `leftover-shadow-keys`.
    pub kind: String,
    /// The advice for a person, with numbers.
    pub message: String,
    /// A command to look further, when there is one.
    pub command: Option<String>,
}

/// The result of an analysis (the JSON of `cachedeck analyze --json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Keys actually analysed.
    pub keys_scanned: u64,
    /// DBSIZE over every master when the analysis began.
    pub keys_in_keyspace: u64,
    /// True when figures are scaled from a sample (estimates).
    pub sampled: bool,
    /// True when a cancel stopped the scan early.
    pub cancelled: bool,
    /// Memory of the analysed keys (scaled when sampled).
    pub total_memory_bytes: u64,
    /// Largest keys by memory, largest first.
    pub top_keys: Vec<TopKey>,
    /// Longest collections/strings by length, longest first.
    pub top_keys_by_length: Vec<TopKey>,
    /// Namespaces by memory, largest first.
    pub namespaces: Vec<Namespace>,
    /// Totals per Redis type.
    pub types: BTreeMap<String, TypeTotals>,
    /// TTL histogram.
    pub ttl: TtlSummary,
    /// Advice with numbers.
    pub recommendations: Vec<Recommendation>,
    /// RFC 3339 start time.
    pub started_at: String,
    /// Wall time of the analysis.
    pub duration_ms: u64,
}

/// Running totals (unscaled) while the scan goes on.
struct Acc {
    /// Options (top, depth).
    top: usize,
    depth: usize,
    scanned: u64,
    memory: u64,
    by_memory: Vec<TopKey>,
    by_length: Vec<TopKey>,
    namespaces: HashMap<String, Namespace>,
    types: BTreeMap<String, TypeTotals>,
    no_expiry: u64,
    buckets: Vec<TtlBucket>,
    /// Keys of Analytics Cache (`cache:`/`idx:`) and their memory.
    ac_keys: u64,
    ac_memory: u64,
    /// Analytics Cache data keys (not meta/epoch) without expiry.
    ac_no_expiry: u64,
    ac_no_expiry_memory: u64,
    /// Shadow-generation keys and their memory.
    shadow_keys: u64,
    shadow_memory: u64,
}

impl Acc {
    fn new(top: usize, depth: usize) -> Acc {
        let mut buckets: Vec<TtlBucket> = TTL_BOUNDS
            .iter()
            .map(|&b| TtlBucket {
                up_to_ms: Some(b),
                keys: 0,
                memory_bytes: 0,
            })
            .collect();
        buckets.push(TtlBucket {
            up_to_ms: None,
            keys: 0,
            memory_bytes: 0,
        });
        Acc {
            top: top.max(1),
            depth: depth.max(1),
            scanned: 0,
            memory: 0,
            by_memory: Vec::new(),
            by_length: Vec::new(),
            namespaces: HashMap::new(),
            types: BTreeMap::new(),
            no_expiry: 0,
            buckets,
            ac_keys: 0,
            ac_memory: 0,
            ac_no_expiry: 0,
            ac_no_expiry_memory: 0,
            shadow_keys: 0,
            shadow_memory: 0,
        }
    }

    fn add(&mut self, k: TopKey) {
        self.scanned += 1;
        self.memory += k.memory_bytes;
        let t = self.types.entry(k.key_type.clone()).or_default();
        t.keys += 1;
        t.memory_bytes += k.memory_bytes;
        match k.ttl_ms {
            None => self.no_expiry += 1,
            Some(ms) => {
                let i = TTL_BOUNDS
                    .iter()
                    .position(|&b| ms <= b)
                    .unwrap_or(TTL_BOUNDS.len());
                self.buckets[i].keys += 1;
                self.buckets[i].memory_bytes += k.memory_bytes;
            }
        }
        let prefix = namespace_of(&k.key.key, self.depth);
        let cap_reached = self.namespaces.len() >= NAMESPACE_CAP;
        let name = if cap_reached && !self.namespaces.contains_key(&prefix) {
            OTHER.to_string()
        } else {
            prefix
        };
        let ns = self.namespaces.entry(name.clone()).or_default();
        ns.prefix = name;
        ns.keys += 1;
        ns.memory_bytes += k.memory_bytes;
        match k.ttl_ms {
            None => ns.no_expiry += 1,
            Some(ms) => {
                ns.ttl_sum += u128::from(ms);
                ns.ttl_count += 1;
                if ms <= HOUR_MS {
                    ns.within_hour += 1;
                }
            }
        }
        let raw = &k.key.key;
        if raw.starts_with(b"cache:") || raw.starts_with(b"idx:") {
            self.ac_keys += 1;
            self.ac_memory += k.memory_bytes;
            if raw.starts_with(b"cache:shadow:") || raw.starts_with(b"idx:shadow:") {
                self.shadow_keys += 1;
                self.shadow_memory += k.memory_bytes;
            }
            if k.ttl_ms.is_none() && is_cache_data(raw) {
                self.ac_no_expiry += 1;
                self.ac_no_expiry_memory += k.memory_bytes;
            }
        }
        push_top(&mut self.by_length, k.clone(), self.top, |k| k.length);
        push_top(&mut self.by_memory, k, self.top, |k| k.memory_bytes);
    }
}

/// Whether a `cache:`/`idx:` key holds cached data (not a datasource's meta,
/// last-warm, epoch or invalidation marker, which live without expiry on
/// purpose).
fn is_cache_data(key: &[u8]) -> bool {
    match std::str::from_utf8(key).ok().and_then(keys::parse) {
        Some(
            keys::ParsedKey::Meta { .. }
            | keys::ParsedKey::LastWarm { .. }
            | keys::ParsedKey::Epoch { .. }
            | keys::ParsedKey::Invalidated { .. },
        ) => false,
        Some(_) => true,
        None => !key.starts_with(b"cache:meta:"),
    }
}

/// Keeps the `top` largest by `score` (ties: by key bytes) in `list`,
/// sorting only when it doubled, so memory stays O(top).
fn push_top(list: &mut Vec<TopKey>, k: TopKey, top: usize, score: fn(&TopKey) -> u64) {
    list.push(k);
    if list.len() >= top * 2 {
        sort_top(list, score);
        list.truncate(top);
    }
}

fn sort_top(list: &mut [TopKey], score: fn(&TopKey) -> u64) {
    list.sort_by(|a, b| {
        score(b)
            .cmp(&score(a))
            .then_with(|| a.key.key.cmp(&b.key.key))
    });
}

/// The namespace of `key` at `depth` segments, as a glob: the key up to its
/// last separator within the first `depth` ones (a `{…}` hash tag is never
/// split — the key tree's rule), `NO_PREFIX` without any separator.
pub fn namespace_of(key: &[u8], depth: usize) -> String {
    match namespace_cuts(key, depth.max(1)).last() {
        None => NO_PREFIX.to_string(),
        Some(&cut) => format!("{}:*", keys::display_bytes(&key[..cut])),
    }
}

/// The length command for a Redis type, if it has one.
fn length_cmd(key_type: &str) -> Option<&'static str> {
    Some(match key_type {
        "string" => "STRLEN",
        "list" => "LLEN",
        "hash" => "HLEN",
        "set" => "SCARD",
        "zset" => "ZCARD",
        "stream" => "XLEN",
        _ => return None,
    })
}

/// Runs `cmds` in one pipeline on a node's connection, re-running through
/// the routed connection any command the cluster redirected (see
/// [`super::run_on_node`]).
async fn pipeline(
    redis: &Redis,
    conn: &MultiplexedConnection,
    cmds: &[Cmd],
    context: &str,
) -> Result<Vec<Value>> {
    if cmds.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for c in cmds {
        pipe.add_command(c.clone());
    }
    pipe.ignore_errors();
    let mut conn = conn.clone();
    let replies: Vec<RedisResult<Value>> = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| Error::redis(context, e))?;
    let mut out = Vec::with_capacity(replies.len());
    for (reply, cmd) in replies.into_iter().zip(cmds) {
        match reply {
            Ok(v) => out.push(v),
            Err(e) if is_redirect(&e) => out.push(redis.query(context, cmd).await?),
            Err(e) => return Err(Error::redis(context, e)),
        }
    }
    Ok(out)
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Measures one batch of keys of one node: TYPE+PTTL, length, MEMORY USAGE.
/// Keys deleted meanwhile are left out.
async fn measure(
    redis: &Redis,
    conn: &MultiplexedConnection,
    addr: &str,
    batch: Vec<Vec<u8>>,
) -> Result<Vec<TopKey>> {
    let ctx = format!("analysing keys on {addr}");
    let mut first = Vec::with_capacity(batch.len() * 2);
    for k in &batch {
        first.push(redis::cmd("TYPE").arg(k.as_slice()).clone());
        first.push(redis::cmd("PTTL").arg(k.as_slice()).clone());
    }
    let r1 = pipeline(redis, conn, &first, &ctx).await?;
    let mut live = Vec::new();
    for (i, k) in batch.into_iter().enumerate() {
        let t = as_text(&r1[2 * i]).unwrap_or_default();
        let pttl = as_int(&r1[2 * i + 1]).unwrap_or(-2);
        if t == "none" || t.is_empty() || pttl == -2 {
            continue;
        }
        live.push((k, t, pttl));
    }
    let lens_cmds: Vec<Cmd> = live
        .iter()
        .filter_map(|(k, t, _)| length_cmd(t).map(|c| redis::cmd(c).arg(k.as_slice()).clone()))
        .collect();
    let r2 = pipeline(redis, conn, &lens_cmds, &ctx).await?;
    let mut r2 = r2.into_iter();
    let mut lens = Vec::with_capacity(live.len());
    for (_, t, _) in &live {
        let n = if length_cmd(t).is_some() {
            r2.next().as_ref().and_then(as_int).unwrap_or(0)
        } else {
            0
        };
        lens.push(n);
    }
    let mem_cmds: Vec<Cmd> = live
        .iter()
        .zip(&lens)
        .map(|((k, t, _), &n)| {
            let samples = if t == "string" || n <= EXACT_UP_TO {
                0
            } else {
                LARGE_SAMPLES
            };
            redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(k.as_slice())
                .arg("SAMPLES")
                .arg(samples)
                .clone()
        })
        .collect();
    let r3 = pipeline(redis, conn, &mem_cmds, &ctx).await?;
    let mut out = Vec::with_capacity(live.len());
    for (((k, t, pttl), n), mem) in live.into_iter().zip(lens).zip(r3) {
        let Some(mem) = as_int(&mem) else {
            continue; // deleted between the pipelines
        };
        out.push(TopKey {
            key: KeyInfo::new(k),
            key_type: t,
            memory_bytes: mem.max(0) as u64,
            length: n.max(0) as u64,
            ttl_ms: (pttl >= 0).then_some(pttl as u64),
        });
    }
    Ok(out)
}

/// Runs an analysis; see the module docs. `progress` is called after every
/// batch. Cancelling stops after the current batch and returns what was
/// analysed so far with `cancelled: true`.
pub async fn analyze(
    redis: &Redis,
    opts: &AnalyzeOptions,
    cancel: &CancellationToken,
    mut progress: impl FnMut(&AnalyzeProgress) + Send,
) -> Result<Analysis> {
    check_pattern(&opts.pattern)?;
    if let Some(t) = &opts.type_filter
        && (t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace()))
    {
        return Err(Error::Invalid(format!("`{t}` is not a Redis type name")));
    }
    if opts.sample == Some(0) {
        return Err(Error::Invalid("--sample needs at least 1 key".into()));
    }
    let started_at = chrono::Utc::now().to_rfc3339();
    let clock = Instant::now();
    let nodes = redis.masters().await?;
    let mut sizes = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let mut conn = node.conn.clone();
        let n: u64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("DBSIZE on {}", node.addr), e))?;
        sizes.push(n);
    }
    let keyspace: u64 = sizes.iter().sum();
    let mut acc = Acc::new(opts.top, opts.depth);
    let mut seen = Seen::new();
    let mut cancelled = false;
    let mut stopped_early = false;
    let mut first_call = true;
    'nodes: for (node, &size) in nodes.iter().zip(&sizes) {
        // Each node's share of a sample, in proportion to its keys.
        let quota = opts.sample.map(|n| {
            if keyspace == 0 {
                n
            } else {
                ((n as u128 * size as u128).div_ceil(keyspace as u128)) as u64
            }
        });
        let mut taken = 0u64;
        let mut cursor = 0u64;
        loop {
            if cancel.is_cancelled() {
                cancelled = true;
                break 'nodes;
            }
            if quota.is_some_and(|q| taken >= q) {
                stopped_early = true;
                break;
            }
            if !first_call && !opts.pace.is_zero() {
                tokio::time::sleep(opts.pace).await;
            }
            first_call = false;
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor);
            if opts.pattern.as_slice() != b"*" {
                cmd.arg("MATCH").arg(opts.pattern.as_slice());
            }
            cmd.arg("COUNT").arg(SCAN_COUNT);
            if let Some(t) = &opts.type_filter {
                cmd.arg("TYPE").arg(t.as_str());
            }
            let mut conn = node.conn.clone();
            let (next, found): (u64, Vec<Vec<u8>>) = cmd
                .query_async(&mut conn)
                .await
                .map_err(|e| Error::redis(format!("SCAN on {}", node.addr), e))?;
            let mut batch: Vec<Vec<u8>> = found.into_iter().filter(|k| seen.insert(k)).collect();
            if let Some(q) = quota {
                batch.truncate((q - taken) as usize);
            }
            taken += batch.len() as u64;
            for k in measure(redis, &node.conn, &node.addr, batch).await? {
                acc.add(k);
            }
            progress(&AnalyzeProgress {
                scanned: acc.scanned,
                keyspace,
            });
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    let sampled = opts.sample.is_some() && stopped_early && !cancelled;
    Ok(finish(
        acc,
        keyspace,
        sampled,
        cancelled,
        started_at,
        clock.elapsed(),
    ))
}

/// Scales, sorts and advises.
fn finish(
    mut acc: Acc,
    keyspace: u64,
    sampled: bool,
    cancelled: bool,
    started_at: String,
    took: Duration,
) -> Analysis {
    let factor = if sampled && acc.scanned > 0 {
        keyspace as f64 / acc.scanned as f64
    } else {
        1.0
    };
    let scale = |n: u64| (n as f64 * factor).round() as u64;
    let top = acc.top;
    let mut by_memory = std::mem::take(&mut acc.by_memory);
    sort_top(&mut by_memory, |k| k.memory_bytes);
    by_memory.truncate(top);
    let mut by_length = std::mem::take(&mut acc.by_length);
    sort_top(&mut by_length, |k| k.length);
    by_length.truncate(top);

    let recommendations = advise(
        &acc_view(&acc.namespaces),
        &by_memory,
        &by_length,
        &acc,
        factor,
    );
    let mut namespaces: Vec<Namespace> = acc
        .namespaces
        .into_values()
        .map(|mut n| {
            n.avg_ttl_ms = (n.ttl_count > 0).then(|| (n.ttl_sum / u128::from(n.ttl_count)) as u64);
            n.keys = scale(n.keys);
            n.memory_bytes = scale(n.memory_bytes);
            n.no_expiry = scale(n.no_expiry);
            n
        })
        .collect();
    namespaces.sort_by(|a, b| {
        b.memory_bytes
            .cmp(&a.memory_bytes)
            .then_with(|| a.prefix.cmp(&b.prefix))
    });
    let types = acc
        .types
        .into_iter()
        .map(|(t, v)| {
            (
                t,
                TypeTotals {
                    keys: scale(v.keys),
                    memory_bytes: scale(v.memory_bytes),
                },
            )
        })
        .collect();
    let buckets = acc
        .buckets
        .into_iter()
        .map(|b| TtlBucket {
            keys: scale(b.keys),
            memory_bytes: scale(b.memory_bytes),
            ..b
        })
        .collect();
    Analysis {
        keys_scanned: acc.scanned,
        keys_in_keyspace: keyspace,
        sampled,
        cancelled,
        total_memory_bytes: scale(acc.memory),
        top_keys: by_memory,
        top_keys_by_length: by_length,
        namespaces,
        types,
        ttl: TtlSummary {
            no_expiry: scale(acc.no_expiry),
            buckets,
        },
        recommendations,
        started_at,
        duration_ms: took.as_millis() as u64,
    }
}

/// Namespaces sorted by memory, for the advice.
fn acc_view(map: &HashMap<String, Namespace>) -> Vec<&Namespace> {
    let mut v: Vec<&Namespace> = map.values().collect();
    v.sort_by(|a, b| {
        b.memory_bytes
            .cmp(&a.memory_bytes)
            .then_with(|| a.prefix.cmp(&b.prefix))
    });
    v
}

/// `n` bytes as MB with two decimals.
fn mb(n: u64) -> String {
    format!("{:.2} MB", n as f64 / 1_048_576.0)
}

/// The recommendations, figures scaled by `factor` when sampled.
fn advise(
    namespaces: &[&Namespace],
    by_memory: &[TopKey],
    by_length: &[TopKey],
    acc: &Acc,
    factor: f64,
) -> Vec<Recommendation> {
    let scale = |n: u64| (n as f64 * factor).round() as u64;
    let mut out = Vec::new();
    if acc.ac_no_expiry > 0 {
        out.push(Recommendation {
            kind: "no-expiry-in-cache".into(),
            message: format!(
                "{} Analytics Cache keys (cache:/idx:) have no expiry, holding {}; they stay until the next warm or invalidation replaces them",
                scale(acc.ac_no_expiry),
                mb(scale(acc.ac_no_expiry_memory))
            ),
            command: Some("cachedeck analyze --pattern 'cache:*' --depth 2".into()),
        });
    }
    let mut big: Vec<&TopKey> = by_memory
        .iter()
        .filter(|k| k.key_type == "string" && k.memory_bytes > BIG_STRING_BYTES)
        .collect();
    for k in by_length {
        if k.key_type != "string"
            && k.length > BIG_COLLECTION_LEN
            && !big.iter().any(|b| b.key.key == k.key.key)
        {
            big.push(k);
        }
    }
    for k in big {
        let what = if k.key_type == "string" {
            format!("a {} string", mb(k.memory_bytes))
        } else {
            format!(
                "a {} with {} elements ({})",
                k.key_type,
                k.length,
                mb(k.memory_bytes)
            )
        };
        out.push(Recommendation {
            kind: "big-key".into(),
            message: format!(
                "`{}` is {what}; big keys block Redis when read or deleted whole",
                k.key.display
            ),
            command: Some(format!("cachedeck inspect --key-hex {}", k.key.key_hex)),
        });
    }
    for ns in namespaces.iter().take(50) {
        if ns.keys >= 10 && ns.within_hour * 2 > ns.keys {
            out.push(Recommendation {
                kind: "short-lived-namespace".into(),
                message: format!(
                    "{} of {} keys of `{}` expire within the hour; if they are recomputed often, a longer TTL may save work",
                    scale(ns.within_hour),
                    scale(ns.keys),
                    ns.prefix
                ),
                command: None,
            });
        }
    }
    if acc.scanned > 0 {
        let other = acc.memory.saturating_sub(acc.ac_memory);
        out.push(Recommendation {
            kind: "analytics-cache-share".into(),
            message: format!(
                "Analytics Cache datasources hold {} in {} keys; everything else holds {} in {} keys",
                mb(scale(acc.ac_memory)),
                scale(acc.ac_keys),
                mb(scale(other)),
                scale(acc.scanned - acc.ac_keys)
            ),
            command: None,
        });
    }
    if acc.shadow_keys > 0 {
        out.push(Recommendation {
            kind: "leftover-shadow-keys".into(),
            message: format!(
                "{} shadow-generation keys hold {}; unless a warm is running now, they are leftovers of an interrupted warm",
                scale(acc.shadow_keys),
                mb(scale(acc.shadow_memory))
            ),
            command: Some("cachedeck status".into()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_keep_hash_tags_whole() {
        assert_eq!(namespace_of(b"cache:{ds:1}:m:x", 2), "cache:{ds:1}:*");
        assert_eq!(namespace_of(b"cache:{ds:1}:m:x", 1), "cache:*");
        assert_eq!(namespace_of(b"a:b", 3), "a:*");
        assert_eq!(namespace_of(b"plain", 2), NO_PREFIX);
        assert_eq!(namespace_of(b"\xff:x", 2), "\\xff:*");
    }

    fn key(name: &str, mem: u64, len: u64) -> TopKey {
        TopKey {
            key: KeyInfo::new(name.as_bytes().to_vec()),
            key_type: "string".into(),
            memory_bytes: mem,
            length: len,
            ttl_ms: None,
        }
    }

    #[test]
    fn top_lists_keep_the_largest_only() {
        let mut acc = Acc::new(3, 2);
        for i in 0..100u64 {
            acc.add(key(&format!("k{i}"), i, 100 - i));
        }
        assert!(acc.by_memory.len() < 6);
        let a = finish(acc, 100, false, false, String::new(), Duration::ZERO);
        let mem: Vec<u64> = a.top_keys.iter().map(|k| k.memory_bytes).collect();
        assert_eq!(mem, vec![99, 98, 97]);
        let len: Vec<u64> = a.top_keys_by_length.iter().map(|k| k.length).collect();
        assert_eq!(len, vec![100, 99, 98]);
        assert_eq!(a.total_memory_bytes, (0..100).sum::<u64>());
    }

    #[test]
    fn namespace_map_is_capped_with_other() {
        let mut acc = Acc::new(1, 1);
        for i in 0..NAMESPACE_CAP + 5 {
            acc.add(key(&format!("n{i}:x"), 1, 1));
        }
        assert_eq!(acc.namespaces.len(), NAMESPACE_CAP + 1);
        assert_eq!(acc.namespaces[OTHER].keys, 5);
    }
}
