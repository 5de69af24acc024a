//! Reading the cache: one generation per query (the index read and the entry
//! fetch run in one script), with hits, misses and time recorded after the
//! answer is back.

use std::time::Instant;

use serde::Serialize;

use super::{scripts, stats};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen, SecondaryIndex};
use crate::redis_conn::Redis;

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
    /// True when the cache answered (false: cold, or an indexed entry is gone).
    pub hit: bool,
    /// The generation every returned entry belongs to.
    pub generation: u64,
    /// Entry keys read.
    pub entries: usize,
    /// The rows of every entry, in key order.
    pub rows: Vec<serde_json::Value>,
    pub duration_ms: f64,
}

/// Runs one query and records its statistics in the background.
pub async fn query(redis: &Redis, req: &QueryRequest) -> Result<QueryResult> {
    let (result, recording) = run(redis, req).await?;
    drop(recording);
    Ok(result)
}

/// Runs one query and waits until its statistics are recorded (the CLI,
/// which exits right after, and tests).
pub async fn query_recorded(redis: &Redis, req: &QueryRequest) -> Result<QueryResult> {
    let (result, recording) = run(redis, req).await?;
    let _ = recording.await;
    Ok(result)
}

async fn run(
    redis: &Redis,
    req: &QueryRequest,
) -> Result<(QueryResult, tokio::task::JoinHandle<()>)> {
    let started = Instant::now();
    let ds = req.datasource;
    let mut inv = scripts::QUERY.prepare_invoke();
    inv.key(keys::master_index(ds, Gen::Live))
        .key(keys::meta(ds))
        .key(
            SecondaryIndex::MeasureFreq {
                measure: req.measure.clone(),
                frequency: req.frequency.clone(),
            }
            .key(ds, Gen::Live),
        );
    for p in &req.practices {
        inv.key(
            SecondaryIndex::Practice {
                measure: req.measure.clone(),
                practice: p.clone(),
                frequency: req.frequency.clone(),
            }
            .key(ds, Gen::Live),
        );
    }
    for p in &req.providers {
        inv.key(
            SecondaryIndex::Provider {
                measure: req.measure.clone(),
                provider: p.clone(),
                frequency: req.frequency.clone(),
            }
            .key(ds, Gen::Live),
        );
    }
    inv.arg(req.practices.len()).arg(req.providers.len());
    let mut conn = redis.conn();
    let reply: Vec<redis::Value> = inv
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("querying the cache", e))?;
    let text = super::value_text;
    let status = reply.first().map(text).unwrap_or_default();
    let generation = reply
        .get(1)
        .map(text)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let n: usize = reply
        .get(2)
        .map(text)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let mut hit = status == "hit";
    let mut rows = Vec::new();
    for v in reply.iter().skip(3 + n) {
        match serde_json::from_str::<serde_json::Value>(&text(v)) {
            Ok(serde_json::Value::Array(a)) => rows.extend(a),
            Ok(other) => rows.push(other),
            Err(_) => hit = false,
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
            entries: n,
            rows,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
        },
        recording,
    ))
}
