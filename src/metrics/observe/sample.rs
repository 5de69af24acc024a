//! The quick part of observing a cache cachedeck did not write: up to
//! [`ENTRY_SAMPLE`] random entries (SRANDMEMBER of the master set), their
//! MEMORY USAGE and remaining PTTL, the master set's and a few implied index
//! sets' MEMORY USAGE: two round trips in the datasource's slot, read only.

use serde::Serialize;

use crate::error::Result;
use crate::keys::{self, DsId, Gen, SecondaryIndex};
use crate::redis_conn::Redis;

/// Entries sampled for memory and TTL.
pub const ENTRY_SAMPLE: usize = 200;
/// Index sets sampled for memory (named from the sampled entries).
pub const INDEX_SAMPLE: usize = 50;

/// What the sample read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntrySample {
    /// The sampled entry names (kept for the first coverage estimate).
    #[serde(skip)]
    pub names: Vec<String>,
    /// Sampled entries that still existed when measured.
    pub measured: u64,
    /// Mean MEMORY USAGE of a sampled entry, bytes.
    pub entry_bytes: f64,
    /// Mean MEMORY USAGE of a sampled index set, bytes (0 when none found).
    pub index_bytes: f64,
    /// MEMORY USAGE of the master set, bytes.
    pub master_bytes: u64,
    /// The largest remaining time to live among the sampled entries (ms):
    /// the most recently written one tells when the warm ran.
    pub max_pttl_ms: Option<i64>,
}

/// Samples the live entries of `ds`.
pub async fn sample(redis: &Redis, ds: DsId) -> Result<EntrySample> {
    let master = keys::master_index(ds, Gen::Live);
    let names: Vec<String> = redis
        .query(
            "sampling the entries of an observed cache",
            redis::cmd("SRANDMEMBER").arg(&master).arg(ENTRY_SAMPLE),
        )
        .await?;
    let mut indexes: Vec<String> = Vec::new();
    for n in &names {
        if indexes.len() >= INDEX_SAMPLE {
            break;
        }
        if let Some(g) = keys::parse_observed_entry(ds, n) {
            // One of each kind per entry, in turn, so every kind is measured.
            let kind = indexes.len() % 3;
            let name = SecondaryIndex::for_group(&g)[kind].key(ds, Gen::Live);
            if !indexes.contains(&name) {
                indexes.push(name);
            }
        }
    }
    let mut p = redis::pipe();
    p.cmd("MEMORY").arg("USAGE").arg(&master);
    for n in &names {
        p.cmd("MEMORY").arg("USAGE").arg(n);
        p.cmd("PTTL").arg(n);
    }
    for n in &indexes {
        p.cmd("MEMORY").arg("USAGE").arg(n);
    }
    let replies: Vec<redis::Value> = redis
        .pipe("measuring sampled entries of an observed cache", &p)
        .await?;
    let as_u64 = |v: &redis::Value| -> Option<u64> {
        match v {
            redis::Value::Int(n) if *n >= 0 => Some(*n as u64),
            _ => None,
        }
    };
    let as_i64 = |v: &redis::Value| -> Option<i64> {
        match v {
            redis::Value::Int(n) => Some(*n),
            _ => None,
        }
    };
    let mut it = replies.iter();
    let master_bytes = it.next().and_then(as_u64).unwrap_or(0);
    let (mut measured, mut entry_total, mut max_pttl) = (0u64, 0u64, None::<i64>);
    for _ in &names {
        let mem = it.next().and_then(as_u64);
        let pttl = it.next().and_then(as_i64);
        if let Some(m) = mem {
            measured += 1;
            entry_total += m;
        }
        if let Some(t) = pttl.filter(|t| *t > 0) {
            max_pttl = Some(max_pttl.map_or(t, |m: i64| m.max(t)));
        }
    }
    let (mut idx_n, mut idx_total) = (0u64, 0u64);
    for _ in &indexes {
        if let Some(m) = it.next().and_then(as_u64) {
            idx_n += 1;
            idx_total += m;
        }
    }
    let mean = |total: u64, n: u64| if n == 0 { 0.0 } else { total as f64 / n as f64 };
    Ok(EntrySample {
        names,
        measured,
        entry_bytes: mean(entry_total, measured),
        index_bytes: mean(idx_total, idx_n),
        master_bytes,
        max_pttl_ms: max_pttl,
    })
}
