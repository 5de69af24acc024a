//! The durable app state: datasources, schedules, warm history, audit log and
//! permission grants. Postgres (schema `cachedeck`) for a shared deployment, a
//! SQLite file for a local or demo profile; the same tables and queries on both.

mod audit;
mod datasources;
mod grants;
mod history;
pub(crate) mod pg_tls;
mod schedules;

pub use audit::{AuditFilter, AuditInsert, AuditRow};
pub use datasources::{DEFAULT_STATEMENT_TIMEOUT_SECS, Datasource, DatasourceInput};
pub use grants::Grant;
pub use history::JobRecord;
pub use schedules::{Schedule, ScheduleInput};

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::error::{Error, Result};

static PG_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// The pool of one store backend.
#[derive(Clone, Debug)]
pub enum Pool {
    Pg(PgPool),
    Lite(SqlitePool),
}

/// Runs the same statement on whichever backend the store has.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Pg($pool) => $body,
            $crate::store::Pool::Lite($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A connected, migrated store.
#[derive(Clone, Debug)]
pub struct Store {
    /// Connection pool (Postgres or SQLite).
    pub(crate) pool: Pool,
    /// The database user (Postgres) or OS user@host (SQLite): the admin identity.
    identity: String,
    /// URL without password, for messages.
    label: String,
}

/// Milliseconds since the Unix epoch, from this machine's clock (store rows only;
/// anything several machines must agree on uses Redis TIME).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `user@host` of this process.
pub fn os_identity() -> String {
    let host = whoami::fallible::hostname().unwrap_or_else(|_| "localhost".into());
    format!("{}@{}", whoami::username(), host)
}

fn connect_err(label: &str, e: impl std::fmt::Display) -> Error {
    Error::DbConnect {
        url: label.to_string(),
        reason: tls_hint(e.to_string()),
    }
}

/// A TLS failure says what to check: the CA file and the sslmode.
pub(crate) fn tls_hint(reason: String) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
        format!(
            "{reason}; the server's TLS certificate was not accepted: check database.tls_ca_file (or sslrootcert in the URL) and sslmode (verify-full also checks the host name)"
        )
    } else {
        reason
    }
}

/// Creates the SQLite store file with mode 0600 before SQLite opens it (so
/// it is never readable by others, not even for a moment), or narrows an
/// existing one to 0600. Failing to is an error.
fn create_private(path: &std::path::Path) -> Result<()> {
    // Like SQLite, it creates the file, never its folder.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::DbConnect {
                url: crate::redact::redact(&path.display().to_string()),
                reason: e.to_string(),
            });
        }
    }
    make_private(path)
}

/// Sets mode 0600 on `path`; failing to is an error.
fn make_private(path: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
            Error::io(
                format!("making {} readable by its owner only", path.display()),
                e,
            )
        })?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl Store {
    /// Connects and brings the schema up to date where this user may.
    pub async fn connect(url: &str) -> Result<Store> {
        let label = crate::redact::url(url);
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url).map_err(|e| connect_err(&label, e))?;
            let file = opts.get_filename().to_path_buf();
            let on_disk = file.as_os_str() != ":memory:" && !file.as_os_str().is_empty();
            if on_disk {
                create_private(&file)?;
            }
            let opts = opts
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .map_err(|e| connect_err(&label, e))?;
            SQLITE_MIGRATIONS
                .run(&pool)
                .await
                .map_err(|e| Error::MigrationsNeeded(e.to_string()))?;
            if on_disk {
                // SQLite gives its -wal and -shm files the main file's mode;
                // make sure, now that the first write made them.
                for suffix in ["-wal", "-shm"] {
                    let mut side = file.clone().into_os_string();
                    side.push(suffix);
                    let side = std::path::PathBuf::from(side);
                    if side.exists() {
                        make_private(&side)?;
                    }
                }
            }
            return Ok(Store {
                pool: Pool::Lite(pool),
                identity: os_identity(),
                label,
            });
        }
        let opts = pg_tls::options(url)
            .map_err(|e| connect_err(&label, e))?
            .options([("search_path", "cachedeck")]);
        // One plain connection first: a refused or failed login says why at
        // once, where the pool would only report a timeout.
        {
            use sqlx::Connection;
            let probe = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                sqlx::PgConnection::connect_with(&opts),
            )
            .await
            .map_err(|_| connect_err(&label, "no answer within 5 s"))?
            .map_err(|e| connect_err(&label, e))?;
            let _ = probe.close().await;
        }
        let pool = PgPoolOptions::new()
            .max_connections(6)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(opts)
            .await
            .map_err(|e| connect_err(&label, e))?;
        let identity: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&pool)
            .await
            .map_err(|e| Error::db("reading current_user", e))?;
        let store = Store {
            pool: Pool::Pg(pool),
            identity,
            label,
        };
        store.migrate(false).await?;
        Ok(store)
    }

    /// Creates or upgrades the schema. With `explicit` (the `migrate`
    /// subcommand) a refusal is an error; on connect, a user who may not
    /// migrate is fine as long as the schema is already current.
    pub async fn migrate(&self, explicit: bool) -> Result<()> {
        let Pool::Pg(pool) = &self.pool else {
            return Ok(());
        };
        if !explicit && self.pg_schema_current(pool).await {
            return Ok(());
        }
        let result = async {
            sqlx::query("CREATE SCHEMA IF NOT EXISTS cachedeck")
                .execute(pool)
                .await?;
            PG_MIGRATIONS.run(pool).await.map_err(sqlx::Error::from)
        }
        .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let denied = e
                    .as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "42501");
                if denied || matches!(e, sqlx::Error::Migrate(_)) {
                    Err(Error::MigrationsNeeded(format!("{} on {}", e, self.label)))
                } else {
                    Err(Error::db("creating the cachedeck schema", e))
                }
            }
        }
    }

    async fn pg_schema_current(&self, pool: &PgPool) -> bool {
        let applied: std::result::Result<Vec<i64>, _> =
            sqlx::query_scalar("SELECT version FROM cachedeck._sqlx_migrations WHERE success")
                .fetch_all(pool)
                .await;
        match applied {
            Ok(v) => PG_MIGRATIONS.iter().all(|m| v.contains(&m.version)),
            Err(_) => false,
        }
    }

    /// The admin identity: database user, or OS user@host for SQLite.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// URL without password.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// True for a local SQLite store.
    pub fn is_local(&self) -> bool {
        matches!(self.pool, Pool::Lite(_))
    }
}
