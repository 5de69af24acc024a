//! How long a warm should take: the datasource's recent successful warms
//! give a time per row, scaled by the source's row estimate now.

use std::time::Duration;

use crate::source::Source;
use crate::store::{Datasource, Store};

/// Successful warms the estimate averages over.
const HISTORY: usize = 5;
/// History rows read to find them.
const READ: i64 = 30;
/// The longest the source's row estimate may take before the last warm's
/// row count stands in for it.
const SOURCE_WAIT: Duration = Duration::from_secs(3);

/// Milliseconds a warm of `ds` should take; `None` when it never
/// succeeded with rows (no history to scale).
pub async fn estimate_ms(store: &Store, ds: &Datasource, default_source_url: &str) -> Option<u64> {
    let history = store.recent_jobs(Some(ds.id), READ).await.ok()?;
    let done: Vec<_> = history
        .iter()
        .filter(|r| r.state == "succeeded" && r.rows_processed > 0)
        .filter(|r| r.duration_ms.is_some_and(|d| d > 0))
        .take(HISTORY)
        .collect();
    let last_rows = done.first()?.rows_processed;
    let rows: i64 = done.iter().map(|r| r.rows_processed).sum();
    let ms: i64 = done.iter().filter_map(|r| r.duration_ms).sum();
    let per_row = ms as f64 / rows as f64;
    let now_rows = tokio::time::timeout(SOURCE_WAIT, source_rows(ds, default_source_url))
        .await
        .ok()
        .flatten()
        .filter(|&n| n > 0)
        .unwrap_or(last_rows);
    Some((per_row * now_rows as f64).round().max(1.0) as u64)
}

/// The source's row estimate for the datasource's query, if it answers.
async fn source_rows(ds: &Datasource, default_source_url: &str) -> Option<i64> {
    let url = crate::source::password::source_url(
        ds.source_url.as_deref(),
        ds.source_password.as_deref(),
        default_source_url,
    )
    .await
    .ok()?;
    let source = Source::open(&url, ds.statement_timeout()).await.ok()?;
    let n = source.estimate(ds.id, &ds.sql).await.ok();
    source.close().await;
    n
}
