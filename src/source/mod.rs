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

/// A connection to where a datasource's rows live.
#[derive(Clone, Debug)]
pub enum Source {
    Pg(sqlx::PgPool),
    Lite(sqlx::SqlitePool),
}

fn connect_err(url: &str, e: impl std::fmt::Display) -> Error {
    Error::DbConnect {
        url: crate::redact::redact(url),
        reason: e.to_string(),
    }
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
    /// Opens a small pool on the source database.
    pub async fn open(url: &str) -> Result<Source> {
        if url.starts_with("sqlite:") {
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .map_err(|e| connect_err(url, e))?;
            Ok(Source::Lite(pool))
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(3)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| connect_err(url, e))?;
            Ok(Source::Pg(pool))
        }
    }

    /// Describes the query without running it and checks the required columns.
    /// Returns the column names.
    pub async fn validate(&self, ds: DsId, sql: &str) -> Result<Vec<String>> {
        use sqlx::{Column, Executor};
        let wrapped = format!("SELECT * FROM ({}) AS cachedeck_src", clean_sql(sql));
        let columns: Vec<String> = match self {
            Source::Pg(p) => p
                .describe(&wrapped)
                .await
                .map(|d| d.columns().iter().map(|c| c.name().to_string()).collect()),
            Source::Lite(p) => p
                .describe(&wrapped)
                .await
                .map(|d| d.columns().iter().map(|c| c.name().to_string()).collect()),
        }
        .map_err(|e| source_err(ds, e))?;
        check_columns(ds, &columns)?;
        Ok(columns)
    }

    /// Counts the query's rows (run beside the stream for progress).
    pub async fn count(&self, ds: DsId, sql: &str) -> Result<i64> {
        let q = count_sql(sql);
        match self {
            Source::Pg(p) => sqlx::query_scalar::<_, i64>(&q).fetch_one(p).await,
            Source::Lite(p) => sqlx::query_scalar::<_, i64>(&q).fetch_one(p).await,
        }
        .map_err(|e| source_err(ds, e))
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
            Source::Pg(p) => {
                use sqlx::{Column, Executor, TypeInfo};
                let d = p
                    .describe(clean_sql(sql))
                    .await
                    .map_err(|e| source_err(ds, e))?;
                let columns = d
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect();
                Ok(pg_copy::rows(
                    p.clone(),
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
            Source::Pg(p) => {
                let plan: serde_json::Value =
                    sqlx::query_scalar(&format!("EXPLAIN (FORMAT JSON) {}", clean_sql(sql)))
                        .fetch_one(p)
                        .await
                        .map_err(|e| source_err(ds, e))?;
                Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0) as i64)
            }
            Source::Lite(_) => self.count(ds, sql).await,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match self {
            Source::Pg(p) => p.close().await,
            Source::Lite(p) => p.close().await,
        }
    }
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
