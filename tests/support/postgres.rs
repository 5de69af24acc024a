//! A fresh Postgres database per test, dropped afterwards.

use std::sync::Once;

use sqlx::{Connection, PgConnection};

/// The admin URL used when `CACHEDECK_TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of every test database (with the test process id after it, so a
/// later run can drop what a killed run left behind).
const PREFIX: &str = "cachedeck_test_";

/// The admin URL: `CACHEDECK_TEST_DATABASE_URL` or [`DEFAULT_ADMIN_URL`].
pub fn admin_url() -> String {
    std::env::var("CACHEDECK_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADMIN_URL.to_string())
}

/// Runs `fut` to completion on a fresh current-thread runtime in its own OS
/// thread: works from sync code, from inside a tokio test and from `Drop`.
pub fn block_on<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the test harness")
            .block_on(fut)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Opens an admin connection or panics saying what to start or fix.
async fn admin_connect(admin: &str) -> PgConnection {
    let shown = cachedeck::redact::redact(admin);
    match PgConnection::connect(admin).await {
        Ok(c) => c,
        Err(e) => {
            let code = e
                .as_database_error()
                .and_then(|d| d.code())
                .map(|c| c.to_string())
                .unwrap_or_default();
            if code.starts_with("28") {
                panic!(
                    "Postgres at {shown} refused the login ({e}). Let user postgres log in over TCP \
                     without a password (`host all all 127.0.0.1/32 trust` in pg_hba.conf; \
                     scripts/ensure-services.sh does this), or set CACHEDECK_TEST_DATABASE_URL to \
                     an admin URL with a password. Tests never skip for a missing server."
                );
            }
            if matches!(e, sqlx::Error::Io(_)) {
                panic!(
                    "Postgres is not answering at {shown} ({e}). Install and start PostgreSQL \
                     (run scripts/ensure-services.sh, or scripts/test.sh which calls it), or set \
                     CACHEDECK_TEST_DATABASE_URL to an admin URL of a running server. Tests never \
                     skip for a missing server."
                );
            }
            panic!(
                "cannot connect to Postgres at {shown}: {e} (run scripts/ensure-services.sh, or set \
                 CACHEDECK_TEST_DATABASE_URL to an admin URL of a running server)"
            );
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The URL of database `name` on the server of `admin`.
fn db_url(admin: &str, name: &str) -> String {
    let mut u = url::Url::parse(admin)
        .unwrap_or_else(|e| panic!("CACHEDECK_TEST_DATABASE_URL is not a URL ({e})"));
    u.set_path(&format!("/{name}"));
    u.to_string()
}

fn is_local(admin: &str) -> bool {
    url::Url::parse(admin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| matches!(h.as_str(), "127.0.0.1" | "localhost" | "[::1]" | "::1"))
}

/// Drops test databases whose process is gone (a run that was killed before
/// its `Drop`s ran). Only on a local server, where the pid means something.
async fn drop_orphans(conn: &mut PgConnection) {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'cachedeck\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&name)
            ))
            .execute(&mut *conn)
            .await;
        }
    }
}

/// A fresh, empty database `cachedeck_test_<pid>_<random>`; dropped (WITH
/// FORCE) on drop.
pub struct TestDb {
    name: String,
    url: String,
    admin: String,
}

impl TestDb {
    /// Creates the database (sync; fine to call inside a tokio test).
    pub fn create() -> TestDb {
        let admin = admin_url();
        let name = format!(
            "{PREFIX}{}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let (a, n) = (admin.clone(), name.clone());
        block_on(async move {
            let mut conn = admin_connect(&a).await;
            static CLEANUP: Once = Once::new();
            let mut first = false;
            CLEANUP.call_once(|| first = true);
            if first && is_local(&a) {
                drop_orphans(&mut conn).await;
            }
            let sql = format!("CREATE DATABASE {}", quote_ident(&n));
            let mut tries = 0;
            loop {
                match sqlx::query(&sql).execute(&mut conn).await {
                    Ok(_) => break,
                    // "source database template1 is being accessed by other users"
                    Err(e) if tries < 20 && e.to_string().contains("being accessed") => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(e) => panic!(
                        "cannot create the test database {n} on {}: {e} (the admin user needs \
                         CREATEDB; see CACHEDECK_TEST_DATABASE_URL)",
                        cachedeck::redact::redact(&a)
                    ),
                }
            }
            let _ = conn.close().await;
        });
        TestDb {
            url: db_url(&admin, &name),
            name,
            admin,
        }
    }

    /// `postgres://…/cachedeck_test_…`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin URL the database was created with.
    pub fn admin_url(&self) -> &str {
        &self.admin
    }

    /// A small pool on the test database, for setup and checks.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to the test database {}: {e}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Never panic in drop (the test may already be unwinding).
        let result = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                let res = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ))
                .execute(&mut conn)
                .await;
                let _ = conn.close().await;
                res.ok()
            })
        })
        .join();
        if !matches!(result, Ok(Some(_))) {
            eprintln!("note: could not drop the test database {}", self.name);
        }
    }
}
