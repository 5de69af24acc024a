//! `cachedeck:trend:{ds:N}`: bounded samples of memory and entry count over
//! time, written at every swap (and periodically by an instance that may write).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;

/// Samples kept per datasource.
pub const MAX_SAMPLES: i64 = 5000;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendSample {
    /// Milliseconds since the epoch (Redis TIME).
    pub t: i64,
    pub memory_bytes: u64,
    pub entries: u64,
}

/// Appends a sample and trims the oldest beyond [`MAX_SAMPLES`].
pub async fn record(redis: &Redis, ds: DsId, s: TrendSample) -> Result<()> {
    let member = serde_json::to_string(&s).unwrap_or_default();
    let key = keys::trend(ds);
    let mut p = redis::pipe();
    p.cmd("ZADD").arg(&key).arg(s.t).arg(member).ignore();
    p.cmd("ZREMRANGEBYRANK")
        .arg(&key)
        .arg(0)
        .arg(-(MAX_SAMPLES + 1))
        .ignore();
    redis.pipe::<()>("recording a trend sample", &p).await
}

/// Samples with `from_ms <= t <= to_ms`, oldest first (at most MAX_SAMPLES).
pub async fn read(redis: &Redis, ds: DsId, from_ms: i64, to_ms: i64) -> Result<Vec<TrendSample>> {
    let raw: Vec<String> = redis
        .query(
            "reading trend samples",
            redis::cmd("ZRANGE")
                .arg(keys::trend(ds))
                .arg(from_ms)
                .arg(to_ms)
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(MAX_SAMPLES),
        )
        .await?;
    Ok(raw
        .iter()
        .filter_map(|r| serde_json::from_str(r).ok())
        .collect())
}
