//! A SQLite database file in a temp dir, and a store-backend choice for tests
//! that must pass on Postgres and SQLite alike.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::postgres::TestDb;

/// A SQLite file (not created yet) in its own temp dir, removed on drop.
pub struct SqliteFile {
    _dir: TempDir,
    path: PathBuf,
}

impl SqliteFile {
    pub fn create() -> SqliteFile {
        let dir = tempfile::Builder::new()
            .prefix("cachedeck-sqlite-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for SQLite: {e}"));
        let path = dir.path().join("cachedeck.db");
        SqliteFile { _dir: dir, path }
    }

    /// `sqlite:///tmp/…/cachedeck.db?mode=rwc`
    pub fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A small pool on the file (created if missing), for setup and checks.
    pub async fn pool(&self) -> sqlx::SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(2)
            .connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.path.display()))
    }
}

/// One store backend: a fresh Postgres database or a SQLite file.
pub enum AnyDb {
    Postgres(TestDb),
    Sqlite(SqliteFile),
}

impl AnyDb {
    /// A fresh Postgres database and a fresh SQLite file, in that order.
    pub fn both() -> Vec<AnyDb> {
        vec![
            AnyDb::Postgres(TestDb::create()),
            AnyDb::Sqlite(SqliteFile::create()),
        ]
    }

    pub fn url(&self) -> String {
        match self {
            AnyDb::Postgres(db) => db.url().to_string(),
            AnyDb::Sqlite(f) => f.url(),
        }
    }

    /// "postgres" or "sqlite", for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyDb::Postgres(_) => "postgres",
            AnyDb::Sqlite(_) => "sqlite",
        }
    }

    /// Runs statements (`;`-separated, no `;` inside literals) for setup.
    pub async fn execute(&self, sql: &str) {
        let statements = sql.split(';').map(str::trim).filter(|s| !s.is_empty());
        match self {
            AnyDb::Postgres(db) => {
                let pool = db.pool().await;
                for s in statements {
                    sqlx::query(s)
                        .execute(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("postgres: {s}: {e}"));
                }
                pool.close().await;
            }
            AnyDb::Sqlite(f) => {
                let pool = f.pool().await;
                for s in statements {
                    sqlx::query(s)
                        .execute(&pool)
                        .await
                        .unwrap_or_else(|e| panic!("sqlite: {s}: {e}"));
                }
                pool.close().await;
            }
        }
    }

    /// One integer from a query, e.g. `SELECT COUNT(*) FROM t`.
    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        match self {
            AnyDb::Postgres(db) => {
                let pool = db.pool().await;
                let v = sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("postgres: {sql}: {e}"));
                pool.close().await;
                v
            }
            AnyDb::Sqlite(f) => {
                let pool = f.pool().await;
                let v = sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("sqlite: {sql}: {e}"));
                pool.close().await;
                v
            }
        }
    }
}
