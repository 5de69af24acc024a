//! Reader statistics: hits, misses and query time per datasource, in minute
//! buckets (kept 2 days), hour buckets (kept 90 days) and since the last swap.
//!
//! The rule, for readers in any language: after each query of datasource N,
//! `HINCRBY` `hits` or `misses` by 1 and `queryUs` by the query's duration in
//! microseconds on `cachedeck:stats:{ds:N}:m:<unix-minute>`,
//! `cachedeck:stats:{ds:N}:h:<unix-hour>` and `cachedeck:stats:{ds:N}:since_warm`,
//! setting a 2-day expiry on the minute bucket and a 90-day one on the hour
//! bucket. All in one pipeline, sent after the answer is returned.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
use crate::keys::{self, Bucket, DsId};
use crate::redis_conn::Redis;

/// Minute buckets live this long.
pub const MINUTE_TTL_SECS: i64 = 2 * 24 * 3600;
/// Hour buckets live this long.
pub const HOUR_TTL_SECS: i64 = 90 * 24 * 3600;

/// Counters of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub query_us: u64,
}

impl Counters {
    pub fn queries(&self) -> u64 {
        self.hits + self.misses
    }

    /// Percent 0–100, or `None` without queries.
    pub fn hit_rate(&self) -> Option<f64> {
        let q = self.queries();
        (q > 0).then(|| self.hits as f64 * 100.0 / q as f64)
    }

    /// Average query time in ms, or `None` without queries.
    pub fn avg_query_ms(&self) -> Option<f64> {
        let q = self.queries();
        (q > 0).then(|| self.query_us as f64 / 1000.0 / q as f64)
    }

    pub fn add(&mut self, o: &Counters) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.query_us += o.query_us;
    }

    fn from_hash(h: &HashMap<String, u64>) -> Counters {
        Counters {
            hits: h.get("hits").copied().unwrap_or(0),
            misses: h.get("misses").copied().unwrap_or(0),
            query_us: h.get("queryUs").copied().unwrap_or(0),
        }
    }
}

/// The pipeline that records one query (see the module docs).
pub fn record_pipeline(ds: DsId, hit: bool, query_us: u64, now_ms: i64) -> redis::Pipeline {
    let minute = now_ms.div_euclid(60_000);
    let hour = now_ms.div_euclid(3_600_000);
    let field = if hit { "hits" } else { "misses" };
    let mut p = redis::pipe();
    for (key, ttl) in [
        (
            keys::stats_bucket(ds, Bucket::Minute(minute)),
            Some(MINUTE_TTL_SECS),
        ),
        (
            keys::stats_bucket(ds, Bucket::Hour(hour)),
            Some(HOUR_TTL_SECS),
        ),
        (keys::stats_since_warm(ds), None),
    ] {
        p.cmd("HINCRBY").arg(&key).arg(field).arg(1).ignore();
        p.cmd("HINCRBY")
            .arg(&key)
            .arg("queryUs")
            .arg(query_us)
            .ignore();
        if let Some(ttl) = ttl {
            p.cmd("EXPIRE").arg(&key).arg(ttl).ignore();
        }
    }
    p
}

/// Records one query.
pub async fn record(redis: &Redis, ds: DsId, hit: bool, query_us: u64) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    redis
        .pipe::<()>(
            "recording query statistics",
            &record_pipeline(ds, hit, query_us, now),
        )
        .await
}

/// Counters since the last swap.
pub async fn since_warm(redis: &Redis, ds: DsId) -> Result<Counters> {
    let h: HashMap<String, u64> = redis
        .query(
            "reading query statistics",
            redis::cmd("HGETALL").arg(keys::stats_since_warm(ds)),
        )
        .await?;
    Ok(Counters::from_hash(&h))
}

/// Counters of consecutive buckets `[from, to]` (minutes or hours), oldest
/// first, read in pipelines of 500.
pub async fn buckets(
    redis: &Redis,
    ds: DsId,
    hourly: bool,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, Counters)>> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + 499).min(to);
        let mut p = redis::pipe();
        for b in start..=end {
            let bucket = if hourly {
                Bucket::Hour(b)
            } else {
                Bucket::Minute(b)
            };
            p.cmd("HGETALL").arg(keys::stats_bucket(ds, bucket));
        }
        let hs: Vec<HashMap<String, u64>> = redis.pipe("reading statistics buckets", &p).await?;
        for (i, h) in hs.iter().enumerate() {
            out.push((start + i as i64, Counters::from_hash(h)));
        }
        start = end + 1;
    }
    Ok(out)
}
