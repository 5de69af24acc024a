//! Permission grants: which admin identity holds which permission. An empty
//! table is the bootstrap state in which every identity may write (see
//! `governance::permissions`).

use serde::Serialize;

use super::{Store, now_ms, on_pool};
use crate::error::{Error, Result};

/// One grant row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Grant {
    /// The admin identity it is for (database user, or OS user@host).
    pub identity: String,
    /// `settings:write:all` or `settings:read:all`.
    pub permission: String,
    /// When it was granted (ms since the epoch), for the list and the audit.
    pub granted_at_ms: i64,
    /// The identity that granted it.
    pub granted_by: String,
}

impl Store {
    /// Every grant, by identity then permission.
    pub async fn grants(&self) -> Result<Vec<Grant>> {
        let sql = "SELECT identity, permission, granted_at_ms, granted_by FROM grants ORDER BY identity, permission";
        on_pool!(self, p => sqlx::query_as::<_, Grant>(sql).fetch_all(p).await)
            .map_err(|e| Error::db("reading grants", e))
    }

    /// How many grants of `permission` exist (0 means the bootstrap state).
    pub async fn grant_count(&self, permission: &str) -> Result<i64> {
        on_pool!(self, p => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM grants WHERE permission = $1")
            .bind(permission).fetch_one(p).await)
        .map_err(|e| Error::db("counting grants", e))
    }

    /// Whether `identity` holds `permission`.
    pub async fn has_grant(&self, identity: &str, permission: &str) -> Result<bool> {
        let n = on_pool!(self, p => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM grants WHERE identity = $1 AND permission = $2")
            .bind(identity).bind(permission).fetch_one(p).await)
        .map_err(|e| Error::db("reading grants", e))?;
        Ok(n > 0)
    }

    /// Grants `permission` to `identity`; `false` when it was held already.
    pub async fn add_grant(
        &self,
        identity: &str,
        permission: &str,
        granted_by: &str,
    ) -> Result<bool> {
        let sql = "INSERT INTO grants (identity, permission, granted_at_ms, granted_by) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (identity, permission) DO NOTHING";
        on_pool!(self, p => sqlx::query(sql)
            .bind(identity).bind(permission).bind(now_ms()).bind(granted_by)
            .execute(p).await.map(|r| r.rows_affected() > 0))
        .map_err(|e| Error::db("adding a grant", e))
    }

    /// Withdraws a grant; `false` when there was none.
    pub async fn remove_grant(&self, identity: &str, permission: &str) -> Result<bool> {
        on_pool!(self, p => sqlx::query("DELETE FROM grants WHERE identity = $1 AND permission = $2")
            .bind(identity).bind(permission).execute(p).await.map(|r| r.rows_affected() > 0))
        .map_err(|e| Error::db("removing a grant", e))
    }
}
