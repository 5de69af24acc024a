//! The memory check before a warm: will the shadow copy fit beside the live
//! generation? The shadow generation lives on the one master that serves
//! the datasource's `{ds:N}` slot, so that master's `used_memory` and
//! `maxmemory` decide.
//!
//! The estimate is the live generation's own size when there is one (the
//! swap recorded it from `MEMORY USAGE` samples), else rows × the average
//! JSON size of a sample of rows × an overhead factor for keys and indexes.

use futures::StreamExt;

use super::meta;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;
use crate::source::Source;
use crate::store::Datasource;

/// Rows read to learn the average row size of a cold datasource.
const SAMPLE_ROWS: u64 = 500;
/// Redis bytes per byte of row JSON for a cold estimate: strings carry
/// allocator slack, and every entry adds a key and index memberships.
const COLD_OVERHEAD: f64 = 1.3;
/// Margin over a warm datasource's recorded size (it may have grown).
const WARM_MARGIN: f64 = 1.1;

/// What the check found.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryCheck {
    /// Estimated bytes the shadow generation will take.
    pub needed_bytes: u64,
    /// `used_memory` of the datasource's master.
    pub used_bytes: u64,
    /// `maxmemory` of that master; `None` when unlimited (no refusal then).
    pub max_bytes: Option<u64>,
    /// `host:port` of that master.
    pub node: String,
}

impl MemoryCheck {
    /// Bytes left below `percent` of maxmemory (`None` when unlimited).
    pub fn headroom(&self, percent: u32) -> Option<u64> {
        self.max_bytes
            .map(|max| (max as f64 * f64::from(percent) / 100.0) as u64)
            .map(|limit| limit.saturating_sub(self.used_bytes))
    }

    /// Refuses when the estimate does not fit below `percent` of maxmemory.
    pub fn enforce(&self, ds: DsId, percent: u32) -> Result<()> {
        let (Some(max), Some(free)) = (self.max_bytes, self.headroom(percent)) else {
            return Ok(());
        };
        if percent == 0 || self.needed_bytes <= free {
            return Ok(());
        }
        let mb = |b: u64| b as f64 / 1_048_576.0;
        Err(Error::NotEnoughMemory {
            ds,
            needed_mb: mb(self.needed_bytes),
            free_mb: mb(free),
            max_mb: mb(max),
            percent,
            node: self.node.clone(),
        })
    }
}

/// Estimates the shadow copy of `ds` and reads its master's memory.
pub async fn check(redis: &Redis, ds: &Datasource, source: &Source) -> Result<MemoryCheck> {
    let needed_bytes = match meta::read(redis, ds.id).await? {
        Some(m) if m.memory_bytes > 0 => (m.memory_bytes as f64 * WARM_MARGIN) as u64,
        _ => cold_estimate(ds, source).await?,
    };
    let node = redis
        .master_of(&keys::master_index(ds.id, Gen::Live))
        .await?
        .memory()
        .await?;
    Ok(MemoryCheck {
        needed_bytes,
        used_bytes: node.used,
        max_bytes: (node.max > 0).then_some(node.max),
        node: node.addr,
    })
}

/// rows (the planner's estimate) × average row JSON of a small sample.
async fn cold_estimate(ds: &Datasource, source: &Source) -> Result<u64> {
    let rows = source.estimate(ds.id, &ds.sql).await?.max(0) as u64;
    if rows == 0 {
        return Ok(0);
    }
    let sample_sql = format!(
        "SELECT * FROM ({}) AS cachedeck_sample LIMIT {SAMPLE_ROWS}",
        crate::source::clean_sql(&ds.sql)
    );
    let mut stream = source.rows(ds.id, &sample_sql, 1 << 20).await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.rows;
        bytes += chunk
            .groups
            .iter()
            .map(|(_, j)| j.len() as u64)
            .sum::<u64>();
    }
    if n == 0 {
        return Ok(0);
    }
    Ok((rows as f64 * (bytes as f64 / n as f64) * COLD_OVERHEAD) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(needed: u64, used: u64, max: Option<u64>) -> MemoryCheck {
        MemoryCheck {
            needed_bytes: needed,
            used_bytes: used,
            max_bytes: max,
            node: "127.0.0.1:6379".into(),
        }
    }

    #[test]
    fn a_copy_that_fits_below_the_threshold_passes() {
        assert!(check(10, 50, Some(100)).enforce(1, 90).is_ok());
        assert!(check(40, 50, Some(100)).enforce(1, 90).is_ok());
    }

    #[test]
    fn a_copy_that_would_pass_the_threshold_is_refused_with_figures() {
        let e = check(41 << 20, 50 << 20, Some(100 << 20))
            .enforce(7, 90)
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("datasource 7"), "{text}");
        assert!(text.contains("41.0 MB"), "{text}");
        assert!(text.contains("40.0 MB left below 90%"), "{text}");
    }

    #[test]
    fn no_maxmemory_or_no_threshold_never_refuses() {
        assert!(check(u64::MAX, 50, None).enforce(1, 90).is_ok());
        assert!(check(1000, 50, Some(100)).enforce(1, 0).is_ok());
    }
}
