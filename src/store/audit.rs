//! The audit log table: append-only from the app's side. Rows are inserted;
//! a write action's row is inserted with result `started` before the action
//! runs and gets its outcome afterwards (only a `started` row is ever
//! updated); only the retention prune deletes rows. On Postgres the time and
//! the database identity of a row come from the database (`now()`,
//! `current_user`), not from the client.

use serde::Serialize;

use super::{Store, on_pool};
use crate::error::{Error, Result};
use crate::keys::DsId;

/// One audit row to append.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInsert {
    /// When it happened (ms since the epoch, UTC), so rows sort by time.
    /// Used on SQLite only: Postgres takes its own `now()`.
    pub at_ms: i64,
    /// What was done or refused, e.g. `cache_warm_initiated`, `permission_denied`.
    pub action: String,
    /// The datasource it concerned, when one.
    pub datasource_id: Option<DsId>,
    /// OS user@host of the process that acted.
    pub os_user: String,
    /// The admin identity (database user, or OS user@host for SQLite).
    /// Used on SQLite only: Postgres takes its own `current_user`.
    pub db_user: String,
    /// The Redis ACL user of the profile, when one is set.
    pub redis_user: Option<String>,
    /// Profile name, so rows of several deployments in one store stay apart.
    pub profile: String,
    /// gui, cli, agent or schedule.
    pub origin: String,
    /// The action's parameters as JSON text.
    pub params: String,
    /// ok, denied, rate_limited, failed, cancelled, skipped, missed, …
    pub result: String,
    /// A human sentence: the error, or what was found.
    pub detail: Option<String>,
}

/// One stored audit row, as `cachedeck audit --json` and the Audit tab show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    /// Row id: increasing, so ties in time keep their order.
    pub id: i64,
    /// ISO-8601 UTC time, for people and JSON consumers.
    pub at: String,
    /// The same time in ms since the epoch, for sorting and ranges.
    pub at_ms: i64,
    /// What was done or refused.
    pub action: String,
    /// The datasource it concerned, when one.
    pub datasource_id: Option<DsId>,
    /// OS user@host of the acting process.
    pub os_user: String,
    /// The admin identity (database user, or OS user@host for SQLite).
    pub db_user: String,
    /// The profile's Redis ACL user, when one is set.
    pub redis_user: Option<String>,
    /// Profile name.
    pub profile: String,
    /// gui, cli, agent or schedule.
    pub origin: String,
    /// Parameters as JSON (text that is not JSON is kept as a string).
    pub params: serde_json::Value,
    /// ok, denied, rate_limited, failed, …
    pub result: String,
    /// The error or finding, when there is one.
    pub detail: Option<String>,
}

/// What to read from the audit log; every `None` means "any".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Rows at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Rows before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this user: the database/admin identity, the Redis user, the OS
    /// user@host, or an OS user name without its `@host`.
    pub user: Option<String>,
    /// Only rows about this datasource.
    pub datasource_id: Option<DsId>,
    /// At most this many rows, newest first (`None`: 1000).
    pub limit: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RawRow {
    id: i64,
    at_ms: i64,
    action: String,
    datasource_id: Option<i64>,
    os_user: String,
    db_user: String,
    redis_user: Option<String>,
    profile: String,
    origin: String,
    params: String,
    result: String,
    detail: Option<String>,
}

impl From<RawRow> for AuditRow {
    fn from(r: RawRow) -> Self {
        let params = serde_json::from_str(&r.params).unwrap_or(serde_json::Value::String(r.params));
        AuditRow {
            id: r.id,
            at: crate::jobs::iso(r.at_ms),
            at_ms: r.at_ms,
            action: r.action,
            datasource_id: r.datasource_id,
            os_user: r.os_user,
            db_user: r.db_user,
            redis_user: r.redis_user,
            profile: r.profile,
            origin: r.origin,
            params,
            result: r.result,
            detail: r.detail,
        }
    }
}

impl Store {
    /// Appends one audit row; returns its id.
    pub async fn append_audit(&self, a: &AuditInsert) -> Result<i64> {
        const COLS: &str =
            "action, datasource_id, os_user, redis_user, profile, origin, params, result, detail";
        let ctx = |e| Error::db("writing the audit log", e);
        match &self.pool {
            // Postgres stamps the row itself: the client's clock and its idea
            // of who it is cannot be passed off as the database's.
            super::Pool::Pg(p) => {
                let sql = format!(
                    "INSERT INTO audit_log ({COLS}, at_ms, db_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                     (extract(epoch FROM now()) * 1000)::bigint, current_user) RETURNING id"
                );
                Self::bind_audit(sqlx::query_scalar::<_, i64>(&sql), a)
                    .fetch_one(p)
                    .await
                    .map_err(ctx)
            }
            super::Pool::Lite(p) => {
                let sql = format!(
                    "INSERT INTO audit_log ({COLS}, at_ms, db_user) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"
                );
                Self::bind_audit(sqlx::query_scalar::<_, i64>(&sql), a)
                    .bind(a.at_ms)
                    .bind(&a.db_user)
                    .fetch_one(p)
                    .await
                    .map_err(ctx)
            }
        }
    }

    fn bind_audit<'q, DB>(
        q: sqlx::query::QueryScalar<'q, DB, i64, <DB as sqlx::Database>::Arguments<'q>>,
        a: &'q AuditInsert,
    ) -> sqlx::query::QueryScalar<'q, DB, i64, <DB as sqlx::Database>::Arguments<'q>>
    where
        DB: sqlx::Database,
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        q.bind(&a.action)
            .bind(a.datasource_id)
            .bind(&a.os_user)
            .bind(&a.redis_user)
            .bind(&a.profile)
            .bind(&a.origin)
            .bind(crate::redact::redact(&a.params))
            .bind(&a.result)
            .bind(a.detail.as_deref().map(crate::redact::redact))
    }

    /// Gives a `started` row its outcome (action, parameters, result,
    /// detail). A row that already has one is left alone.
    pub async fn finish_audit(
        &self,
        id: i64,
        action: &str,
        params: &str,
        result: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        let sql = "UPDATE audit_log SET action = $1, params = $2, result = $3, detail = $4 \
                   WHERE id = $5 AND result = 'started'";
        on_pool!(self, p => sqlx::query(sql)
            .bind(action).bind(crate::redact::redact(params)).bind(result)
            .bind(detail.map(crate::redact::redact)).bind(id)
            .execute(p).await.map(|_| ()))
        .map_err(|e| Error::db("writing the audit log", e))
    }

    /// Audit rows matching `f`, newest first.
    pub async fn audit_rows(&self, f: &AuditFilter) -> Result<Vec<AuditRow>> {
        let sql = "SELECT id, at_ms, action, datasource_id, os_user, db_user, redis_user, profile, origin, params, result, detail \
                   FROM audit_log WHERE ($1 IS NULL OR at_ms >= $1) AND ($2 IS NULL OR at_ms < $2) \
                   AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR datasource_id = $4) \
                   AND ($5 IS NULL OR db_user = $5 OR redis_user = $5 OR os_user = $5 \
                        OR substr(os_user, 1, length($5) + 1) = ($5 || '@')) \
                   ORDER BY at_ms DESC, id DESC LIMIT $6";
        let limit = f.limit.unwrap_or(1000).max(0);
        let rows = on_pool!(self, p => sqlx::query_as::<_, RawRow>(sql)
            .bind(f.since_ms).bind(f.until_ms).bind(&f.action).bind(f.datasource_id)
            .bind(&f.user).bind(limit)
            .fetch_all(p).await)
        .map_err(|e| Error::db("reading the audit log", e))?;
        Ok(rows.into_iter().map(AuditRow::from).collect())
    }

    /// Deletes audit rows older than `before_ms` (retention); returns how many.
    pub async fn prune_audit(&self, before_ms: i64) -> Result<u64> {
        on_pool!(self, p => sqlx::query("DELETE FROM audit_log WHERE at_ms < $1")
            .bind(before_ms).execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| Error::db("pruning the audit log", e))
    }
}
