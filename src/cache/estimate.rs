//! The memory a new generation will take, estimated right before the swap
//! for the meta hash (so stats never ask Redis to recount).

use super::written::Written;
use crate::error::Result;
use crate::keys::{self, DsId, Fence, Gen};
use crate::redis_conn::Redis;

/// Entries (and indexes) sampled with MEMORY USAGE.
const MEMORY_SAMPLE: usize = 256;
/// Up to this many indexes, every one is measured instead of a sample.
const INDEX_MEASURE_ALL: usize = 1000;

/// Estimates the bytes of the new generation: the exact byte length of every
/// entry's JSON and of every index's member names (known from the writes)
/// times the ratio of `MEMORY USAGE` to that length over a random sample of
/// each, so uneven key sizes do not make the figure jump between warms of the
/// same data. An index is measured under its shadow name when the swap wrote
/// it there (`shadowed`, by index number), else under its live name, which
/// then holds the same members. Returns (bytes, keys sampled).
pub(crate) async fn generation_memory(
    redis: &Redis,
    (ds, fence): (DsId, Fence),
    written: &Written,
    shadowed: &[bool],
) -> Result<(u64, u64)> {
    if written.entry_count() == 0 {
        return Ok((0, 0));
    }
    let sample: Vec<String> = redis
        .query(
            "sampling shadow entries",
            redis::cmd("SRANDMEMBER")
                .arg(keys::master_index(ds, Gen::Shadow(fence)))
                .arg(MEMORY_SAMPLE),
        )
        .await?;
    // Index sets differ most (a few large, many small): measure them all
    // when there are not many.
    let idx_sample: Vec<String> = if written.index_count() <= INDEX_MEASURE_ALL {
        (0..written.index_count() as u32)
            .map(|i| written.index_name(i).to_string())
            .collect()
    } else {
        redis
            .query(
                "sampling shadow indexes",
                redis::cmd("SRANDMEMBER")
                    .arg(keys::index_list(ds, Gen::Shadow(fence)))
                    .arg(MEMORY_SAMPLE),
            )
            .await?
    };
    let mut p = redis::pipe();
    for k in &sample {
        p.cmd("MEMORY")
            .arg("USAGE")
            .arg(keys::shadow_of_entry(ds, fence, k).unwrap_or_default());
    }
    // Every member counted (a set's usage is otherwise a 5-member guess).
    for name in &idx_sample {
        let in_shadow = written
            .index_number(name)
            .is_some_and(|i| shadowed.get(i as usize).copied().unwrap_or(false));
        let key = if in_shadow {
            keys::shadow_of_index(ds, fence, name).unwrap_or_default()
        } else {
            name.clone()
        };
        p.cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0);
    }
    p.cmd("MEMORY")
        .arg("USAGE")
        .arg(keys::master_index(ds, Gen::Shadow(fence)))
        .arg("SAMPLES")
        .arg(0);
    let sizes: Vec<Option<u64>> = redis.pipe("MEMORY USAGE", &p).await?;
    let (entry_sizes, rest) = sizes.split_at(sample.len().min(sizes.len()));
    let (idx_sizes, master) = rest.split_at(idx_sample.len().min(rest.len()));
    // Bytes of Redis memory per byte of entry JSON (of member names for
    // indexes), over the sample, applied to the exact byte totals.
    let ratio = |names: &[String], used: &[Option<u64>], length: &dyn Fn(&str) -> Option<u64>| {
        let (mut m, mut l) = (0u64, 0u64);
        for (k, u) in names.iter().zip(used) {
            if let (Some(u), Some(n)) = (u, length(k)) {
                m += u;
                l += n;
            }
        }
        if l > 0 { m as f64 / l as f64 } else { 1.0 }
    };
    let total = written.entry_bytes_total() as f64
        * ratio(&sample, entry_sizes, &|k| written.entry_len(k))
        + written.index_bytes_total() as f64
            * ratio(&idx_sample, idx_sizes, &|k| written.index_bytes(k))
        + master.iter().flatten().sum::<u64>() as f64;
    Ok((
        total.round() as u64,
        (sample.len() + idx_sample.len() + 1) as u64,
    ))
}
