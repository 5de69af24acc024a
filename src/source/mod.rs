//! Row sources: a datasource's query run on Postgres or SQLite, streamed in
//! group-key order so that the warm can write each group as soon as it is
//! complete. Memory is bounded by the largest group, whatever the row count.

pub mod demo;
mod group;
mod json;
pub mod password;
mod pg_copy;
mod sqlite;

pub use group::GroupChunk;

use futures::stream::BoxStream;

use crate::error::{Error, Result};
use crate::keys::DsId;

/// Columns every source query must return (the group key).
pub const REQUIRED_COLUMNS: [&str; 4] = ["measure", "practice_uid", "provider_uid", "frequency"];

/// A read-only connection to where a datasource's rows live. Postgres
/// sessions start with `default_transaction_read_only` and the datasource's
/// `statement_timeout`, and every query runs in its own
/// `START TRANSACTION READ ONLY` that is rolled back afterwards, on a
/// connection that is then closed (so a query cannot leave anything in the
/// session for the next one, not even an advisory lock); SQLite files are
/// opened read-only. A datasource query can therefore never write.
#[derive(Clone, Debug)]
pub enum Source {
    Pg {
        pool: sqlx::PgPool,
        /// `statement_timeout` of every query, in milliseconds.
        timeout_ms: u64,
    },
    Lite(sqlx::SqlitePool),
}

/// A writable connection, for the demo table only (never a datasource's
/// query).
pub(crate) enum Writable {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

impl Writable {
    pub(crate) async fn open(url: &str) -> Result<Writable> {
        if url.starts_with("sqlite:") {
            let opts = lite_options(url)?;
            Ok(Writable::Lite(lite_pool(url, opts).await?))
        } else {
            let opts = pg_options(url)?;
            Ok(Writable::Pg(pg_pool(url, opts).await?))
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            Writable::Pg(p) => p.close().await,
            Writable::Lite(p) => p.close().await,
        }
    }
}

fn connect_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::DbConnect {
        url: crate::redact::url(url),
        reason: crate::store::tls_hint(e.to_string()),
    }
}

fn pg_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions> {
    crate::store::pg_tls::options(url).map_err(|e| connect_err(url, e))
}

fn lite_options(url: &str) -> Result<sqlx::sqlite::SqliteConnectOptions> {
    url.parse().map_err(|e| connect_err(url, e))
}

async fn pg_pool(url: &str, opts: sqlx::postgres::PgConnectOptions) -> Result<sqlx::PgPool> {
    pg_pool_options()
        .connect_with(opts)
        .await
        .map_err(|e| connect_err(url, e))
}

fn pg_pool_options() -> sqlx::postgres::PgPoolOptions {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(std::time::Duration::from_secs(5))
}

/// A datasource query's connection is closed when the query is done, never
/// returned to the pool. Rolling back its read-only transaction undoes the
/// transactional state only: a session-level advisory lock
/// (`pg_advisory_lock`), or anything an extension keeps per session, would
/// survive and go on to the next query still held. `DISCARD ALL` would also
/// drop sqlx's prepared statements and still leave extension state, and
/// `pg_advisory_unlock_all()` covers locks only; a fresh connection per query
/// costs a connect on a pool that lives for one warm, and is the only reset
/// that leaves nothing behind.
async fn pg_source_pool(url: &str, opts: sqlx::postgres::PgConnectOptions) -> Result<sqlx::PgPool> {
    pg_pool_options()
        .after_release(|_conn, _meta| Box::pin(async { Ok(false) }))
        .connect_with(opts)
        .await
        .map_err(|e| connect_err(url, e))
}

async fn lite_pool(
    url: &str,
    opts: sqlx::sqlite::SqliteConnectOptions,
) -> Result<sqlx::SqlitePool> {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
        .map_err(|e| connect_err(url, e))
}

/// A read-only transaction with the statement timeout, on a connection of
/// `pool`. Dropped without commit, it rolls back.
async fn pg_read(
    pool: &sqlx::PgPool,
    timeout_ms: u64,
) -> std::result::Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let mut tx = pool.begin_with("START TRANSACTION READ ONLY").await?;
    sqlx::query(&format!("SET LOCAL statement_timeout = {timeout_ms}"))
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Strips trailing semicolons and blanks so the query can be wrapped.
pub(crate) fn clean_sql(sql: &str) -> &str {
    sql.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// The datasource query counted, for progress.
pub fn count_sql(sql: &str) -> String {
    format!("SELECT COUNT(*) FROM ({}) AS cachedeck_src", clean_sql(sql))
}

/// Checks a column list for the group-key columns.
pub fn check_columns(ds: DsId, columns: &[String]) -> Result<()> {
    for need in REQUIRED_COLUMNS {
        if !columns.iter().any(|c| c == need) {
            return Err(Error::MissingColumn {
                ds,
                column: need.to_string(),
            });
        }
    }
    Ok(())
}

impl Source {
    /// Opens a small read-only pool on the source database; every query
    /// on it stops after `statement_timeout`.
    pub async fn open(url: &str, statement_timeout: std::time::Duration) -> Result<Source> {
        if url.starts_with("sqlite:") {
            let opts = lite_options(url)?.read_only(true);
            Ok(Source::Lite(lite_pool(url, opts).await?))
        } else {
            let timeout_ms = (statement_timeout.as_millis() as u64).clamp(1, i32::MAX as u64);
            let opts = pg_options(url)?.options([
                ("default_transaction_read_only", "on".to_string()),
                ("statement_timeout", timeout_ms.to_string()),
            ]);
            Ok(Source::Pg {
                pool: pg_source_pool(url, opts).await?,
                timeout_ms,
            })
        }
    }

    /// Describes the query without running it and checks the required columns.
    /// Returns the column names.
    pub async fn validate(&self, ds: DsId, sql: &str) -> Result<Vec<String>> {
        use sqlx::{Column, Executor};
        let wrapped = format!("SELECT * FROM ({}) AS cachedeck_src", clean_sql(sql));
        let columns: Vec<String> = match self {
            Source::Pg { pool, timeout_ms } => async {
                let mut tx = pg_read(pool, *timeout_ms).await?;
                let d = (&mut *tx).describe(&wrapped).await?;
                Ok(d.columns().iter().map(|c| c.name().to_string()).collect())
            }
            .await
            .map_err(|e| self.error(ds, e)),
            Source::Lite(p) => p
                .describe(&wrapped)
                .await
                .map(|d| d.columns().iter().map(|c| c.name().to_string()).collect())
                .map_err(|e| self.error(ds, e)),
        }?;
        check_columns(ds, &columns)?;
        Ok(columns)
    }

    /// Counts the query's rows (run beside the stream for progress).
    pub async fn count(&self, ds: DsId, sql: &str) -> Result<i64> {
        let q = count_sql(sql);
        match self {
            Source::Pg { pool, timeout_ms } => {
                async {
                    let mut tx = pg_read(pool, *timeout_ms).await?;
                    sqlx::query_scalar::<_, i64>(&q).fetch_one(&mut *tx).await
                }
                .await
            }
            Source::Lite(p) => sqlx::query_scalar::<_, i64>(&q).fetch_one(p).await,
        }
        .map_err(|e| self.error(ds, e))
    }

    /// Streams the rows gathered per group, in chunks of about `budget` bytes
    /// of row JSON, in whatever order the database returns them (Postgres
    /// through `COPY … TO STDOUT`). A group may span several chunks.
    pub async fn rows(
        &self,
        ds: DsId,
        sql: &str,
        budget: usize,
    ) -> Result<BoxStream<'static, Result<GroupChunk>>> {
        match self {
            Source::Pg { pool, timeout_ms } => {
                use sqlx::{Column, Executor, TypeInfo};
                let d = async {
                    let mut tx = pg_read(pool, *timeout_ms).await?;
                    (&mut *tx).describe(clean_sql(sql)).await
                }
                .await
                .map_err(|e| self.error(ds, e))?;
                let columns = d
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect();
                Ok(pg_copy::rows(
                    pool.clone(),
                    *timeout_ms,
                    ds,
                    clean_sql(sql).to_string(),
                    columns,
                    budget,
                ))
            }
            Source::Lite(p) => Ok(sqlite::rows(
                p.clone(),
                ds,
                clean_sql(sql).to_string(),
                budget,
            )),
        }
    }

    /// A row count for progress: the planner's estimate on Postgres (no
    /// second scan competing with the warm), an exact count on SQLite.
    pub async fn estimate(&self, ds: DsId, sql: &str) -> Result<i64> {
        match self {
            Source::Pg { pool, timeout_ms } => {
                let plan: serde_json::Value = async {
                    let mut tx = pg_read(pool, *timeout_ms).await?;
                    sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", clean_sql(sql)))
                        .fetch_one(&mut *tx)
                        .await
                }
                .await
                .map_err(|e| self.error(ds, e))?;
                Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64)
            }
            Source::Lite(_) => self.count(ds, sql).await,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Source::Pg { pool, .. } => pool.close().await,
            Source::Lite(p) => p.close().await,
        }
    }

    /// The statement timeout of a Postgres source (none on SQLite).
    fn timeout(&self) -> Option<std::time::Duration> {
        match self {
            Source::Pg { timeout_ms, .. } => Some(std::time::Duration::from_millis(*timeout_ms)),
            Source::Lite(_) => None,
        }
    }

    /// A database error of datasource `ds`'s query, said plainly when the
    /// query tried to write or ran out of time.
    fn error(&self, ds: DsId, e: sqlx::Error) -> Error {
        explain(ds, self.timeout(), e)
    }
}

/// Names the two refusals a person must understand: a write (read-only
/// transaction / read-only file) and the statement timeout.
pub(crate) fn explain(ds: DsId, timeout: Option<std::time::Duration>, e: sqlx::Error) -> Error {
    let db = e.as_database_error();
    let code = db.and_then(|d| d.code()).map(|c| c.into_owned());
    let message = db
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string());
    let reason = match code.as_deref() {
        // read_only_sql_transaction, or an attempt to turn the transaction
        // read-write (Postgres); SQLITE_READONLY (8) and its extended codes
        // end in 8 in the low byte.
        Some("25006" | "25001") => {
            format!("{message}: a datasource query runs read-only and may not write (use a SELECT)")
        }
        Some(c) if c.parse::<i64>().is_ok_and(|n| n & 0xff == 8) => {
            format!("{message}: a datasource query runs read-only and may not write (use a SELECT)")
        }
        // query_canceled: the statement timeout fired.
        Some("57014") if timeout.is_some() => format!(
            "{message}: the query ran longer than the datasource's statement timeout of {} \
             (raise it with `cachedeck datasource edit --statement-timeout`)",
            humantime::format_duration(timeout.unwrap_or_default())
        ),
        _ => return source_err(ds, e),
    };
    Error::SourceQuery { ds, reason }
}

pub(crate) fn source_err(ds: DsId, e: impl std::fmt::Display) -> Error {
    Error::SourceQuery {
        ds,
        reason: e.to_string(),
    }
}

/// Index of each group-key column in a row's columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyColumns {
    pub measure: usize,
    pub practice: usize,
    pub provider: usize,
    pub frequency: usize,
}

impl KeyColumns {
    pub(crate) fn find(ds: DsId, names: &[String]) -> Result<KeyColumns> {
        check_columns(ds, names)?;
        let pos = |n: &str| names.iter().position(|c| c == n).unwrap_or(0);
        Ok(KeyColumns {
            measure: pos("measure"),
            practice: pos("practice_uid"),
            provider: pos("provider_uid"),
            frequency: pos("frequency"),
        })
    }
}

/// Turns a channel receiver into a stream.
pub(crate) fn receiver_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> BoxStream<'static, T> {
    use futures::StreamExt;
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) }).boxed()
}
