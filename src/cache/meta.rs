//! The meta hash `cache:meta:{ds:N}` written by the swap, so that stats never
//! recount a datasource's keys.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Result;
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;

/// What the last swap recorded about the live generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub schema_version: u32,
    /// Incremented by every swap; readers compare it.
    pub generation: u64,
    pub job_id: String,
    /// ISO-8601 UTC time of the swap.
    pub warmed_at: String,
    pub warmed_at_ms: i64,
    /// When entries and indexes of this generation expire (ms since epoch).
    pub expires_at_ms: i64,
    pub rows: u64,
    pub entries: u64,
    pub indexes: u64,
    pub unique_measures: u64,
    pub unique_practices: u64,
    pub unique_providers: u64,
    pub frequencies: Vec<String>,
    /// Estimated bytes of entries and indexes (MEMORY USAGE over a sample).
    pub memory_bytes: u64,
    /// How many keys the memory estimate sampled.
    pub memory_sample_size: u64,
    pub duration_ms: u64,
}

impl Meta {
    /// Field/value pairs for the swap script's HSET.
    pub fn to_fields(&self) -> Vec<(String, String)> {
        vec![
            ("schemaVersion".into(), self.schema_version.to_string()),
            ("jobId".into(), self.job_id.clone()),
            ("warmedAt".into(), self.warmed_at.clone()),
            ("warmedAtMs".into(), self.warmed_at_ms.to_string()),
            ("expiresAtMs".into(), self.expires_at_ms.to_string()),
            ("rows".into(), self.rows.to_string()),
            ("entries".into(), self.entries.to_string()),
            ("indexes".into(), self.indexes.to_string()),
            ("uniqueMeasures".into(), self.unique_measures.to_string()),
            ("uniquePractices".into(), self.unique_practices.to_string()),
            ("uniqueProviders".into(), self.unique_providers.to_string()),
            (
                "frequencies".into(),
                serde_json::to_string(&self.frequencies).unwrap_or_else(|_| "[]".into()),
            ),
            ("memoryBytes".into(), self.memory_bytes.to_string()),
            (
                "memorySampleSize".into(),
                self.memory_sample_size.to_string(),
            ),
            ("durationMs".into(), self.duration_ms.to_string()),
        ]
    }

    /// Parses HGETALL; `None` when the hash is absent (never warmed).
    pub fn from_hash(h: &HashMap<String, String>) -> Option<Meta> {
        if h.is_empty() {
            return None;
        }
        let n = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let i = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Some(Meta {
            schema_version: n("schemaVersion") as u32,
            generation: n("generation"),
            job_id: h.get("jobId").cloned().unwrap_or_default(),
            warmed_at: h.get("warmedAt").cloned().unwrap_or_default(),
            warmed_at_ms: i("warmedAtMs"),
            expires_at_ms: i("expiresAtMs"),
            rows: n("rows"),
            entries: n("entries"),
            indexes: n("indexes"),
            unique_measures: n("uniqueMeasures"),
            unique_practices: n("uniquePractices"),
            unique_providers: n("uniqueProviders"),
            frequencies: h
                .get("frequencies")
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default(),
            memory_bytes: n("memoryBytes"),
            memory_sample_size: n("memorySampleSize"),
            duration_ms: n("durationMs"),
        })
    }
}

/// Reads the meta hash of `ds`.
pub async fn read(redis: &Redis, ds: DsId) -> Result<Option<Meta>> {
    let h: HashMap<String, String> = redis
        .query(
            "reading cache meta",
            redis::cmd("HGETALL").arg(keys::meta(ds)),
        )
        .await?;
    Ok(Meta::from_hash(&h))
}

/// The datasource's invalidation epoch (0 when never invalidated).
pub async fn epoch(redis: &Redis, ds: DsId) -> Result<i64> {
    let v: Option<i64> = redis
        .query("reading the epoch", redis::cmd("GET").arg(keys::epoch(ds)))
        .await?;
    Ok(v.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_through_hash_fields() {
        let m = Meta {
            schema_version: 1,
            generation: 0,
            job_id: "j".into(),
            warmed_at: "2026-01-01T00:00:00Z".into(),
            warmed_at_ms: 5,
            expires_at_ms: 9,
            rows: 10,
            entries: 3,
            indexes: 7,
            unique_measures: 1,
            unique_practices: 2,
            unique_providers: 2,
            frequencies: vec!["Monthly".into()],
            memory_bytes: 1234,
            memory_sample_size: 3,
            duration_ms: 40,
        };
        let h: HashMap<String, String> = m.to_fields().into_iter().collect();
        assert_eq!(Meta::from_hash(&h), Some(m));
    }
}
