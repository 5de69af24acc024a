//! The datasource registry.

use serde::Serialize;

use super::{Store, now_ms, on_pool};
use crate::error::{Error, Result};
use crate::keys::DsId;

/// A registered datasource.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Datasource {
    pub id: DsId,
    pub name: String,
    /// Where the rows come from; `None` means the profile's database.
    /// Never carries a password (refused when saved); one stored before
    /// that is redacted when serialized.
    #[serde(serialize_with = "redacted")]
    pub source_url: Option<String>,
    /// Where the source's password comes from: `keyring:NAME`, `env:VAR`
    /// or `profile` (see `source::password`); `None`: no password.
    pub source_password: Option<String>,
    /// The query returning measure, practice_uid, provider_uid, frequency, ….
    pub sql: String,
    /// Age after which the cache counts as stale.
    pub stale_after_secs: i64,
    /// Lifetime of each generation's entries and indexes.
    pub ttl_secs: i64,
    pub enabled: bool,
    /// How long one query on the source may run (Postgres `statement_timeout`).
    pub statement_timeout_secs: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Serializes a URL without its password.
fn redacted<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_some(&crate::redact::url(u)),
        None => s.serialize_none(),
    }
}

/// What `datasource add|edit` and the Configure dialog send.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasourceInput {
    pub id: DsId,
    pub name: String,
    /// Without a password (checked by `validate`).
    pub source_url: Option<String>,
    /// `keyring:NAME`, `env:VAR` or `profile`: the source's password reference.
    pub source_password: Option<String>,
    pub sql: String,
    pub stale_after_secs: i64,
    pub ttl_secs: i64,
    pub enabled: bool,
    /// How long one query on the source may run (Postgres `statement_timeout`).
    pub statement_timeout_secs: i64,
}

impl From<Datasource> for DatasourceInput {
    fn from(d: Datasource) -> DatasourceInput {
        DatasourceInput {
            id: d.id,
            name: d.name,
            source_url: d.source_url,
            source_password: d.source_password,
            sql: d.sql,
            stale_after_secs: d.stale_after_secs,
            ttl_secs: d.ttl_secs,
            enabled: d.enabled,
            statement_timeout_secs: d.statement_timeout_secs,
        }
    }
}

const COLUMNS: &str = "id, name, source_url, source_password, sql, stale_after_secs, ttl_secs, enabled, \
                       statement_timeout_secs, created_at_ms, updated_at_ms";

/// The statement timeout of a datasource that does not set one (seconds).
pub const DEFAULT_STATEMENT_TIMEOUT_SECS: i64 = 600;

impl Datasource {
    /// The statement timeout of its source queries.
    pub fn statement_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.statement_timeout_secs.max(1) as u64)
    }
}

impl DatasourceInput {
    /// The statement timeout of its source queries.
    pub fn statement_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.statement_timeout_secs.max(1) as u64)
    }
}

impl DatasourceInput {
    fn validate(&self) -> Result<()> {
        if self.id <= 0 {
            return Err(Error::Invalid(
                "a datasource id is a positive number".into(),
            ));
        }
        if self.name.trim().is_empty() {
            return Err(Error::Invalid("a datasource needs a name".into()));
        }
        if self.sql.trim().is_empty() {
            return Err(Error::Invalid("a datasource needs a source query".into()));
        }
        if self.stale_after_secs <= 0 || self.ttl_secs <= 0 {
            return Err(Error::Invalid(
                "stale-after and TTL must be positive".into(),
            ));
        }
        if !(1..=24 * 3600).contains(&self.statement_timeout_secs) {
            return Err(Error::Invalid(
                "the statement timeout is between 1s and 24h".into(),
            ));
        }
        if let Some(url) = &self.source_url {
            crate::source::password::check_source_url(url)?;
        }
        if let Some(reference) = &self.source_password {
            reference.parse::<crate::source::password::SourcePassword>()?;
        }
        Ok(())
    }
}

impl Store {
    /// Every datasource, by id.
    pub async fn datasources(&self) -> Result<Vec<Datasource>> {
        let sql = format!("SELECT {COLUMNS} FROM datasources ORDER BY id");
        on_pool!(self, p => sqlx::query_as::<_, Datasource>(&sql).fetch_all(p).await)
            .map_err(|e| Error::db("listing datasources", e))
    }

    /// One datasource.
    pub async fn datasource(&self, id: DsId) -> Result<Datasource> {
        let sql = format!("SELECT {COLUMNS} FROM datasources WHERE id = $1");
        on_pool!(self, p => sqlx::query_as::<_, Datasource>(&sql).bind(id).fetch_optional(p).await)
            .map_err(|e| Error::db("reading a datasource", e))?
            .ok_or(Error::NoSuchDatasource(id))
    }

    /// Adds a datasource; an existing id is refused.
    pub async fn add_datasource(&self, d: &DatasourceInput) -> Result<Datasource> {
        d.validate()?;
        let now = now_ms();
        let sql = "INSERT INTO datasources (id, name, source_url, sql, stale_after_secs, ttl_secs, enabled, created_at_ms, updated_at_ms, statement_timeout_secs, source_password) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
        let res = on_pool!(self, p => sqlx::query(sql)
            .bind(d.id).bind(&d.name).bind(&d.source_url).bind(&d.sql)
            .bind(d.stale_after_secs).bind(d.ttl_secs).bind(d.enabled).bind(now).bind(now)
            .bind(d.statement_timeout_secs)
            .bind(&d.source_password)
            .execute(p).await.map(|_| ()));
        match res {
            Ok(()) => self.datasource(d.id).await,
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(Error::Invalid(format!(
                    "datasource {} exists already (use `datasource edit`)",
                    d.id
                )))
            }
            Err(e) => Err(Error::db("adding a datasource", e)),
        }
    }

    /// Replaces a datasource's settings.
    pub async fn update_datasource(&self, d: &DatasourceInput) -> Result<Datasource> {
        d.validate()?;
        let sql = "UPDATE datasources SET name = $1, source_url = $2, sql = $3, stale_after_secs = $4, ttl_secs = $5, enabled = $6, updated_at_ms = $7, statement_timeout_secs = $9, source_password = $10 WHERE id = $8";
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(&d.name).bind(&d.source_url).bind(&d.sql).bind(d.stale_after_secs)
            .bind(d.ttl_secs).bind(d.enabled).bind(now_ms()).bind(d.id)
            .bind(d.statement_timeout_secs)
            .bind(&d.source_password)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| Error::db("updating a datasource", e))?;
        if n == 0 {
            return Err(Error::NoSuchDatasource(d.id));
        }
        self.datasource(d.id).await
    }

    /// Removes a datasource from the registry (its cache is left to `invalidate`).
    pub async fn remove_datasource(&self, id: DsId) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM datasources WHERE id = $1")
            .bind(id).execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| Error::db("removing a datasource", e))?;
        if n == 0 {
            return Err(Error::NoSuchDatasource(id));
        }
        Ok(())
    }
}
