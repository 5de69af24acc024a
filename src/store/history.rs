//! Warm job history: one row per job, written when it is queued and when it ends.

use serde::Serialize;

use super::{Store, on_pool};
use crate::error::{Error, Result};
use crate::keys::DsId;

/// One warm job as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub job_id: String,
    pub datasource_id: DsId,
    pub datasource_name: String,
    /// queued, running, succeeded, failed, cancelled, skipped.
    pub state: String,
    pub queued_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub rows_processed: i64,
    pub entries_cached: i64,
    pub indexes_cached: i64,
    pub forced: bool,
    /// Admin identity that started it.
    pub actor: String,
    /// gui, cli, agent or schedule.
    pub origin: String,
    pub error: Option<String>,
}

const COLUMNS: &str = "job_id, datasource_id, datasource_name, state, queued_at_ms, started_at_ms, completed_at_ms, duration_ms, rows_processed, entries_cached, indexes_cached, forced, actor, origin, error";

impl Store {
    /// Inserts or replaces a job's history row.
    pub async fn save_job(&self, j: &JobRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO warm_jobs ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
             ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, started_at_ms = excluded.started_at_ms, \
             completed_at_ms = excluded.completed_at_ms, duration_ms = excluded.duration_ms, \
             rows_processed = excluded.rows_processed, entries_cached = excluded.entries_cached, \
             indexes_cached = excluded.indexes_cached, error = excluded.error"
        );
        on_pool!(self, p => sqlx::query(&sql)
            .bind(&j.job_id).bind(j.datasource_id).bind(&j.datasource_name).bind(&j.state)
            .bind(j.queued_at_ms).bind(j.started_at_ms).bind(j.completed_at_ms).bind(j.duration_ms)
            .bind(j.rows_processed).bind(j.entries_cached).bind(j.indexes_cached).bind(j.forced)
            .bind(&j.actor).bind(&j.origin).bind(j.error.as_deref().map(crate::redact::redact))
            .execute(p).await.map(|_| ()))
        .map_err(|e| Error::db("recording warm job history", e))
    }

    /// The most recent jobs, newest first, optionally of one datasource.
    pub async fn recent_jobs(&self, ds: Option<DsId>, limit: i64) -> Result<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM warm_jobs WHERE ($1 IS NULL OR datasource_id = $1) ORDER BY queued_at_ms DESC LIMIT $2"
        );
        on_pool!(self, p => sqlx::query_as::<_, JobRecord>(&sql).bind(ds).bind(limit).fetch_all(p).await)
            .map_err(|e| Error::db("reading warm job history", e))
    }

    /// Jobs that ended within `[from_ms, to_ms)`, oldest first (trends, reports).
    pub async fn jobs_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<JobRecord>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM warm_jobs WHERE queued_at_ms >= $1 AND queued_at_ms < $2 ORDER BY queued_at_ms"
        );
        on_pool!(self, p => sqlx::query_as::<_, JobRecord>(&sql).bind(from_ms).bind(to_ms).fetch_all(p).await)
            .map_err(|e| Error::db("reading warm job history", e))
    }
}
