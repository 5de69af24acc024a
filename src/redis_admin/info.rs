//! Generic Redis statistics (the seed's "Current Metrics"): hit rate, memory,
//! keys, ops/sec, clients, evictions and expirations from `INFO` on every
//! master, totalled for a cluster, plus the key distribution by pattern from
//! a bounded SCAN sample.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys;
use crate::redis_conn::{Redis, Topology};

/// Keys sampled for the distribution when the caller has no preference.
pub const DEFAULT_SAMPLE: usize = 10_000;
/// Most patterns listed; the rest are summed into one "(other patterns)" row.
const MAX_PATTERNS: usize = 50;
/// Label of keys without a `:` outside a hash tag.
const NO_PREFIX: &str = "(no prefix)";
/// Label of the row that sums the patterns beyond [`MAX_PATTERNS`].
const OTHER: &str = "(other patterns)";

/// Keys of one logical database (INFO keyspace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbKeys {
    /// Database number (`db0` → 0).
    pub db: u32,
    /// Keys in it.
    pub keys: u64,
    /// Keys in it that have an expiry.
    pub expires: u64,
}

/// The figures of one node, or their total over a cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    /// Successful key lookups since the stats were reset.
    pub keyspace_hits: u64,
    /// Failed key lookups since the stats were reset.
    pub keyspace_misses: u64,
    /// hits / (hits + misses) in percent 0–100; `null` when there were no
    /// lookups.
    pub hit_rate: Option<f64>,
    /// Memory Redis allocated (used_memory), exact, so totals add up.
    pub used_memory_bytes: u64,
    /// The same in MB, as the seed shows memory.
    #[serde(rename = "usedMemoryMB")]
    pub used_memory_mb: f64,
    /// Highest memory ever allocated (used_memory_peak; summed over nodes,
    /// whose peaks may have been at different times).
    pub peak_memory_bytes: u64,
    /// The same in MB.
    #[serde(rename = "peakMemoryMB")]
    pub peak_memory_mb: f64,
    /// The maxmemory limit; `null` when unlimited (on any node, for a total).
    pub max_memory_bytes: Option<u64>,
    /// The same in MB.
    #[serde(rename = "maxMemoryMB")]
    pub max_memory_mb: Option<f64>,
    /// Resident memory (used_memory_rss), the numerator of fragmentation.
    pub rss_memory_bytes: u64,
    /// rss / used: well above 1.5 means memory is wasted to fragmentation.
    pub fragmentation_ratio: Option<f64>,
    /// Keys over every database.
    pub keys: u64,
    /// Keys per database.
    pub keys_per_db: Vec<DbKeys>,
    /// Commands per second right now (instantaneous_ops_per_sec).
    pub ops_per_sec: u64,
    /// Client connections.
    pub connected_clients: u64,
    /// Keys removed to stay under maxmemory: non-zero means the cache is too
    /// small for its data.
    pub evicted_keys: u64,
    /// Keys removed because their TTL passed.
    pub expired_keys: u64,
    /// What Redis does at maxmemory (`noeviction`, `allkeys-lru`, …);
    /// `mixed` in a total when nodes differ.
    pub maxmemory_policy: Option<String>,
}

/// One master's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    /// `host:port` of the node.
    pub addr: String,
    /// Server version, e.g. `7.2.4`.
    pub redis_version: Option<String>,
    /// Seconds since the server started (counters restart then).
    pub uptime_seconds: Option<u64>,
    /// Its figures.
    #[serde(flatten)]
    pub stats: ServerStats,
}

/// Share of one key pattern in the sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternCount {
    /// The first two `:` segments of the keys (a `{…}` hash tag counts as
    /// part of a segment), e.g. `cache:{ds:1}:*`, or `(no prefix)`.
    pub pattern: String,
    /// Sampled keys with this pattern.
    pub sampled: u64,
    /// Their share of the sample in percent.
    pub percent: f64,
    /// Estimated keys with this pattern in the whole keyspace (each node's
    /// sample scaled to its DBSIZE; exact when the sample is complete).
    pub estimated_keys: u64,
}

/// Key distribution by pattern from a bounded sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyDistribution {
    /// Keys actually sampled.
    pub sample_size: u64,
    /// Keys in the selected database over every master (DBSIZE).
    pub keyspace_size: u64,
    /// The sample covered every key, so the counts are exact.
    pub complete: bool,
    /// Patterns, most frequent first (at most 50, then one row summing the rest).
    pub patterns: Vec<PatternCount>,
}

/// The Redis statistics page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisInfo {
    /// Standalone or cluster.
    pub topology: Topology,
    /// When the figures were read (ISO-8601 UTC).
    pub collected_at: String,
    /// Per master (one for a standalone server).
    pub nodes: Vec<NodeStats>,
    /// Sums over the masters (hit rate and fragmentation recomputed from
    /// the sums).
    pub total: ServerStats,
    /// Key distribution by pattern.
    pub key_distribution: KeyDistribution,
}

fn mb(bytes: u64) -> f64 {
    (bytes as f64 / (1024.0 * 1024.0) * 100.0).round() / 100.0
}

fn hit_rate(hits: u64, misses: u64) -> Option<f64> {
    let all = hits + misses;
    (all > 0).then(|| (hits as f64 / all as f64 * 10_000.0).round() / 100.0)
}

fn ratio(rss: u64, used: u64) -> Option<f64> {
    (used > 0).then(|| (rss as f64 / used as f64 * 100.0).round() / 100.0)
}

/// `key:value` lines of INFO, sections ignored.
fn info_fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .collect()
}

/// Parses one `INFO` reply.
fn parse_info(addr: &str, text: &str) -> NodeStats {
    let f = info_fields(text);
    let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut keys_per_db: Vec<DbKeys> = f
        .iter()
        .filter_map(|(k, v)| {
            let db = k.strip_prefix("db")?.parse::<u32>().ok()?;
            let mut keys = 0;
            let mut expires = 0;
            for part in v.split(',') {
                match part.split_once('=') {
                    Some(("keys", n)) => keys = n.parse().unwrap_or(0),
                    Some(("expires", n)) => expires = n.parse().unwrap_or(0),
                    _ => {}
                }
            }
            Some(DbKeys { db, keys, expires })
        })
        .collect();
    keys_per_db.sort_by_key(|d| d.db);
    let (hits, misses) = (num("keyspace_hits"), num("keyspace_misses"));
    let used = num("used_memory");
    let peak = num("used_memory_peak");
    let rss = num("used_memory_rss");
    let max = num("maxmemory");
    NodeStats {
        addr: addr.to_string(),
        redis_version: f.get("redis_version").map(|s| s.to_string()),
        uptime_seconds: f.get("uptime_in_seconds").and_then(|v| v.parse().ok()),
        stats: ServerStats {
            keyspace_hits: hits,
            keyspace_misses: misses,
            hit_rate: hit_rate(hits, misses),
            used_memory_bytes: used,
            used_memory_mb: mb(used),
            peak_memory_bytes: peak,
            peak_memory_mb: mb(peak),
            max_memory_bytes: (max > 0).then_some(max),
            max_memory_mb: (max > 0).then(|| mb(max)),
            rss_memory_bytes: rss,
            fragmentation_ratio: f
                .get("mem_fragmentation_ratio")
                .and_then(|v| v.parse().ok())
                .or_else(|| ratio(rss, used)),
            keys: keys_per_db.iter().map(|d| d.keys).sum(),
            keys_per_db,
            ops_per_sec: num("instantaneous_ops_per_sec"),
            connected_clients: num("connected_clients"),
            evicted_keys: num("evicted_keys"),
            expired_keys: num("expired_keys"),
            maxmemory_policy: f.get("maxmemory_policy").map(|s| s.to_string()),
        },
    }
}

/// Sums node figures.
fn total(nodes: &[NodeStats]) -> ServerStats {
    let sum = |f: fn(&ServerStats) -> u64| nodes.iter().map(|n| f(&n.stats)).sum::<u64>();
    let hits = sum(|s| s.keyspace_hits);
    let misses = sum(|s| s.keyspace_misses);
    let used = sum(|s| s.used_memory_bytes);
    let peak = sum(|s| s.peak_memory_bytes);
    let rss = sum(|s| s.rss_memory_bytes);
    let max = nodes
        .iter()
        .map(|n| n.stats.max_memory_bytes)
        .sum::<Option<u64>>()
        .filter(|_| !nodes.is_empty());
    let mut dbs: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for n in nodes {
        for d in &n.stats.keys_per_db {
            let e = dbs.entry(d.db).or_default();
            e.0 += d.keys;
            e.1 += d.expires;
        }
    }
    let policies: HashSet<Option<&str>> = nodes
        .iter()
        .map(|n| n.stats.maxmemory_policy.as_deref())
        .collect();
    let maxmemory_policy = match policies.len() {
        0 => None,
        1 => policies.into_iter().next().flatten().map(str::to_string),
        _ => Some("mixed".into()),
    };
    ServerStats {
        keyspace_hits: hits,
        keyspace_misses: misses,
        hit_rate: hit_rate(hits, misses),
        used_memory_bytes: used,
        used_memory_mb: mb(used),
        peak_memory_bytes: peak,
        peak_memory_mb: mb(peak),
        max_memory_bytes: max,
        max_memory_mb: max.map(mb),
        rss_memory_bytes: rss,
        fragmentation_ratio: ratio(rss, used),
        keys: sum(|s| s.keys),
        keys_per_db: dbs
            .into_iter()
            .map(|(db, (keys, expires))| DbKeys { db, keys, expires })
            .collect(),
        ops_per_sec: sum(|s| s.ops_per_sec),
        connected_clients: sum(|s| s.connected_clients),
        evicted_keys: sum(|s| s.evicted_keys),
        expired_keys: sum(|s| s.expired_keys),
        maxmemory_policy,
    }
}

/// The positions of the first `max` namespace separators (`:`) of `key`,
/// never inside a `{…}` hash tag (so `{ds:1}` stays one segment).
pub fn namespace_cuts(key: &[u8], max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_tag = false;
    for (i, &b) in key.iter().enumerate() {
        match b {
            b'{' if !in_tag => in_tag = true,
            b'}' if in_tag => in_tag = false,
            b':' if !in_tag => {
                out.push(i);
                if out.len() == max {
                    break;
                }
            }
            _ => {}
        }
    }
    out
}

/// The first two `:` segments of a key, a `{…}` hash tag never split, as a
/// glob: `cache:{ds:1}:m:…` → `cache:{ds:1}:*`; `session:abc` →
/// `session:*`; `plain` → `(no prefix)`.
pub fn key_pattern(key: &[u8]) -> String {
    match namespace_cuts(key, 2).as_slice() {
        [] => NO_PREFIX.to_string(),
        [one] => format!("{}:*", keys::display_bytes(&key[..*one])),
        [_, two, ..] => format!("{}:*", keys::display_bytes(&key[..*two])),
    }
}

/// Samples up to `quota` distinct keys of one node with SCAN (COUNT 1000).
async fn sample_node(
    conn: &redis::aio::MultiplexedConnection,
    addr: &str,
    quota: usize,
) -> Result<HashSet<Vec<u8>>> {
    let mut conn = conn.clone();
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    loop {
        let (next, found): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("SCAN on {addr}"), e))?;
        for k in found {
            if seen.len() >= quota {
                break;
            }
            seen.insert(k);
        }
        cursor = next;
        if cursor == 0 || seen.len() >= quota {
            return Ok(seen);
        }
    }
}

/// What is said where a figure needs INFO and the user may not run it.
pub const INFO_NOT_PERMITTED: &str = "not shown: INFO not permitted for this Redis user";

/// True when `e` is Redis refusing INFO to this user (a read-only ACL):
/// the figures are then not shown rather than an error.
pub fn info_refused(e: &Error) -> bool {
    matches!(e, Error::RedisPermission { what, .. } if what.starts_with("INFO"))
}

/// Reads INFO on every master, totals it, and samples up to `sample_cap`
/// keys (0 means [`DEFAULT_SAMPLE`]; split evenly over the masters) for the
/// key distribution.
pub async fn info(redis: &Redis, sample_cap: usize) -> Result<RedisInfo> {
    let cap = if sample_cap == 0 {
        DEFAULT_SAMPLE
    } else {
        sample_cap
    };
    let masters = redis.masters().await?;
    let quota = cap.div_ceil(masters.len().max(1));
    let mut nodes = Vec::with_capacity(masters.len());
    // pattern → (sampled, estimated keys as a fraction)
    let mut patterns: HashMap<String, (u64, f64)> = HashMap::new();
    let mut sample_size = 0u64;
    let mut keyspace_size = 0u64;
    for m in &masters {
        let mut conn = m.conn.clone();
        let text: String = redis::cmd("INFO")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("INFO on {}", m.addr), e))?;
        nodes.push(parse_info(&m.addr, &text));
        let dbsize: u64 = redis::cmd("DBSIZE")
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::redis(format!("DBSIZE on {}", m.addr), e))?;
        let sample = sample_node(&m.conn, &m.addr, quota).await?;
        let n = sample.len() as u64;
        // Scale this node's sample to its keyspace (exact when complete).
        let scale = if n == 0 {
            0.0
        } else {
            dbsize.max(n) as f64 / n as f64
        };
        for k in &sample {
            let e = patterns.entry(key_pattern(k)).or_default();
            e.0 += 1;
            e.1 += scale;
        }
        sample_size += n;
        keyspace_size += dbsize;
    }
    let mut rows: Vec<(String, u64, f64)> = patterns
        .into_iter()
        .map(|(p, (n, est))| (p, n, est))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    if rows.len() > MAX_PATTERNS {
        let rest = rows.split_off(MAX_PATTERNS - 1);
        let n = rest.iter().map(|r| r.1).sum();
        let est = rest.iter().map(|r| r.2).sum();
        rows.push((OTHER.to_string(), n, est));
    }
    let percent = |n: u64| {
        if sample_size == 0 {
            0.0
        } else {
            (n as f64 / sample_size as f64 * 10_000.0).round() / 100.0
        }
    };
    let key_distribution = KeyDistribution {
        sample_size,
        keyspace_size,
        complete: sample_size >= keyspace_size,
        patterns: rows
            .into_iter()
            .map(|(pattern, sampled, est)| PatternCount {
                pattern,
                sampled,
                percent: percent(sampled),
                estimated_keys: est.round() as u64,
            })
            .collect(),
    };
    Ok(RedisInfo {
        topology: redis.topology(),
        collected_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        total: total(&nodes),
        nodes,
        key_distribution,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_keep_hash_tags_whole() {
        assert_eq!(
            key_pattern(b"cache:{ds:1}:m:a:p:b:prov:c:freq:d"),
            "cache:{ds:1}:*"
        );
        assert_eq!(key_pattern(b"cache:meta:{ds:1}"), "cache:meta:*");
        assert_eq!(key_pattern(b"session:abc"), "session:*");
        assert_eq!(key_pattern(b"plain"), NO_PREFIX);
        assert_eq!(key_pattern(b"\xff:\x00:z"), "\\xff:\\x00:*");
    }

    #[test]
    fn info_text_is_parsed_and_totalled() {
        let text = "# Server\r\nredis_version:7.2.4\r\nuptime_in_seconds:10\r\n# Stats\r\n\
                    keyspace_hits:30\r\nkeyspace_misses:10\r\nused_memory:2097152\r\n\
                    used_memory_rss:4194304\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\
                    instantaneous_ops_per_sec:5\r\nconnected_clients:3\r\n\
                    # Keyspace\r\ndb0:keys=7,expires=2,avg_ttl=0\r\ndb2:keys=1,expires=0,avg_ttl=0\r\n";
        let a = parse_info("a:1", text);
        assert_eq!(a.stats.hit_rate, Some(75.0));
        assert_eq!(a.stats.keys, 8);
        assert_eq!(a.stats.used_memory_mb, 2.0);
        assert_eq!(a.stats.max_memory_bytes, None);
        assert_eq!(a.redis_version.as_deref(), Some("7.2.4"));
        let t = total(&[a.clone(), a]);
        assert_eq!(t.keys, 16);
        assert_eq!(
            t.keys_per_db[0],
            DbKeys {
                db: 0,
                keys: 14,
                expires: 4
            }
        );
        assert_eq!(t.fragmentation_ratio, Some(2.0));
        assert_eq!(t.maxmemory_policy.as_deref(), Some("noeviction"));
        assert_eq!(hit_rate(0, 0), None);
    }
}
