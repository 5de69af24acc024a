//! A datasource's query runs read-only with its statement timeout: a query
//! that tries to write fails the warm with a clear message and writes
//! nothing; a slow one stops at the timeout; a SQLite source cannot be
//! written.

use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::JobState;
use cachedeck::keys::{self, Gen};
use cachedeck::source::Source;
use cachedeck::store::DatasourceInput;
use futures::StreamExt;
use std::time::Duration;

use crate::support::{AnyRedis, CliRunner, SqliteFile, WarmFixture};

const COLUMNS: &str = "measure, practice_uid, provider_uid, frequency";

async fn add(f: &WarmFixture, id: i64, sql: &str, timeout_secs: i64) {
    // Straight into the store: `datasource add` would refuse some of these
    // when it checks the query, and the warm must hold on its own.
    f.store
        .add_datasource(&DatasourceInput {
            id,
            name: format!("ds{id}"),
            source_url: None,
            source_password: None,
            sql: sql.into(),
            stale_after_secs: 3600,
            ttl_secs: 3600,
            enabled: true,
            statement_timeout_secs: timeout_secs,
        })
        .await
        .expect("add datasource");
}

async fn victims(f: &WarmFixture) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM victim")
        .fetch_one(&f.pool)
        .await
        .expect("count victims")
}

#[tokio::test]
async fn postgres_source_queries_cannot_write_and_stop_at_their_timeout() {
    let r = AnyRedis::standalone();
    let f = WarmFixture::new(&r, WarmOptions::default(), Duration::ZERO).await;
    for sql in [
        "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, amount INT)",
        "INSERT INTO src SELECT 'Charges', p, NULL, 'Monthly', p FROM generate_series(1, 50) p",
        "CREATE TABLE victim (n INT)",
        "CREATE FUNCTION sneaky() RETURNS INT LANGUAGE sql VOLATILE AS $$ INSERT INTO victim VALUES (1) RETURNING 1 $$",
    ] {
        sqlx::query(sql).execute(&f.pool).await.expect(sql);
    }
    // A function that writes, a data-modifying CTE, a statement that sets
    // the session read-write before writing.
    add(
        &f,
        1,
        &format!("SELECT {COLUMNS}, sneaky() AS n FROM src"),
        600,
    )
    .await;
    add(
        &f,
        2,
        "WITH w AS (INSERT INTO victim VALUES (2) RETURNING n) \
             SELECT 'Charges' AS measure, n AS practice_uid, NULL::int AS provider_uid, 'Monthly' AS frequency FROM w",
        600,
    )
    .await;
    add(
        &f,
        3,
        &format!(
            "SELECT {COLUMNS}, set_config('default_transaction_read_only', 'off', false) AS a, \
             set_config('transaction_read_only', 'off', true) AS b, sneaky() AS n FROM src"
        ),
        600,
    )
    .await;
    for ds in [1, 2, 3] {
        let snap = f.warm(ds).await;
        assert_eq!(snap.state, JobState::Failed, "ds {ds}: {snap:?}");
        let err = snap.error.clone().unwrap_or_default();
        // Postgres refuses a data-modifying CTE inside the sample query
        // before the read-only transaction has to.
        assert!(
            (err.contains("read-only") && err.contains("may not write"))
                || err.contains("data-modifying statement"),
            "ds {ds}: {err}"
        );
        assert!(err.contains(&format!("datasource {ds}")), "{err}");
        let cached: bool = f
            .redis
            .query(
                "EXISTS",
                redis::cmd("EXISTS").arg(keys::master_index(ds, Gen::Live)),
            )
            .await
            .expect("exists");
        assert!(!cached, "ds {ds} has a cache");
    }
    assert_eq!(victims(&f).await, 0, "a source query wrote");

    // A query slower than its 1 s timeout stops with a message that names it.
    add(
        &f,
        4,
        &format!("SELECT {COLUMNS}, pg_sleep(0.2) AS z FROM src"),
        1,
    )
    .await;
    let started = std::time::Instant::now();
    let snap = f.warm(4).await;
    assert_eq!(snap.state, JobState::Failed, "{snap:?}");
    let err = snap.error.unwrap_or_default();
    assert!(err.contains("statement timeout of 1s"), "{err}");
    assert!(err.contains("--statement-timeout"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // The same query with room to run warms (the source is fine, only the
    // limits bit).
    add(&f, 5, &format!("SELECT {COLUMNS}, amount FROM src"), 600).await;
    assert_eq!(f.warm(5).await.state, JobState::Succeeded);

    // The CLI sets, shows and checks the timeout.
    let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
    let sql = format!("SELECT {COLUMNS}, amount FROM src");
    cli.run_async(&[
        "datasource",
        "add",
        "--id",
        "6",
        "--name",
        "Six",
        "--sql",
        &sql,
        "--statement-timeout",
        "90s",
    ])
    .await
    .success();
    let list = cli.run_async(&["datasource", "list"]).await.success();
    assert!(list.stdout.contains("timeout 1m 30s"), "{list}");
    let json = cli
        .run_async(&["datasource", "list", "--json"])
        .await
        .success()
        .json();
    let six = json
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["id"] == 6)
        .expect("ds 6");
    assert_eq!(six["statementTimeoutSecs"], 90);
    assert_eq!(
        json[0]["statementTimeoutSecs"], 600,
        "the default is 10 min"
    );
    cli.run_async(&[
        "datasource",
        "edit",
        "--id",
        "6",
        "--statement-timeout",
        "2s",
    ])
    .await
    .success();
    let o = cli
        .run_async(&[
            "datasource",
            "edit",
            "--id",
            "6",
            "--statement-timeout",
            "0s",
        ])
        .await
        .failure_one_line();
    assert!(o.stderr.contains("statement timeout"), "{o}");
    // `datasource add` checks the query read-only too: the CTE is refused
    // and nothing is written.
    let o = cli
        .run_async(&[
            "datasource", "add", "--id", "7", "--name", "Seven", "--sql",
            "WITH w AS (INSERT INTO victim VALUES (7) RETURNING n) SELECT 'M' AS measure, n AS practice_uid, n AS provider_uid, 'Monthly' AS frequency FROM w",
        ])
        .await
        .failure_one_line();
    assert!(o.stderr.contains("datasource 7"), "{o}");
    assert_eq!(victims(&f).await, 0, "checking a query wrote");
    f.pool.close().await;
}

#[tokio::test]
async fn a_sqlite_source_is_opened_read_only() {
    let file = SqliteFile::create();
    let pool = file.pool().await;
    sqlx::query(
        "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT)",
    )
    .execute(&pool)
    .await
    .expect("create");
    sqlx::query(
        "INSERT INTO src VALUES ('Charges', 1, NULL, 'Monthly'), ('Charges', 2, NULL, 'Monthly')",
    )
    .execute(&pool)
    .await
    .expect("insert");
    // The URL asks for read-write-create; the source opens it read-only anyway.
    let source = Source::open(&file.url(), Duration::from_secs(5))
        .await
        .expect("open");
    for sql in [
        "DELETE FROM src RETURNING measure, practice_uid, provider_uid, frequency",
        "UPDATE src SET practice_uid = 9 RETURNING measure, practice_uid, provider_uid, frequency",
        "SELECT measure, practice_uid, provider_uid, frequency FROM src; DELETE FROM src",
    ] {
        let mut stream = source.rows(8, sql, 1 << 20).await.expect("stream");
        let mut failure = None;
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                failure = Some(e.to_string());
                break;
            }
        }
        let err = failure.unwrap_or_else(|| panic!("`{sql}` ran"));
        assert!(err.contains("may not write"), "{sql}: {err}");
        assert!(err.contains("datasource 8"), "{err}");
    }
    source.close().await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM src WHERE practice_uid IN (1, 2)")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 2, "the SQLite source was written");

    // A source file that does not exist is not created.
    let missing = file.path().with_file_name("missing.db");
    let url = format!("sqlite://{}?mode=rwc", missing.display());
    assert!(Source::open(&url, Duration::from_secs(5)).await.is_err());
    assert!(
        !missing.exists(),
        "opening a source created {}",
        missing.display()
    );
}

/// Whether another session can take advisory lock 4242 (and lets it go).
/// Whether advisory lock 4242 can be taken, asked for up to 10 s: the
/// released source connection is closed by a background task of the pool,
/// which a loaded machine may run a moment later.
async fn lock_is_free(pool: &sqlx::PgPool) -> bool {
    for _ in 0..100 {
        if lock_is_free_now(pool).await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

async fn lock_is_free_now(pool: &sqlx::PgPool) -> bool {
    let mut conn = pool.acquire().await.expect("acquire");
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(4242)")
        .fetch_one(&mut *conn)
        .await
        .expect("try lock");
    if free {
        sqlx::query("SELECT pg_advisory_unlock(4242)")
            .execute(&mut *conn)
            .await
            .expect("unlock");
    }
    free
}

#[tokio::test]
async fn a_session_lock_taken_by_a_source_query_does_not_outlive_it() {
    let r = AnyRedis::standalone();
    let f = WarmFixture::new(&r, WarmOptions::default(), Duration::ZERO).await;
    sqlx::query(
        "CREATE TABLE src AS SELECT 'Charges'::text AS measure, p AS practice_uid, \
         NULL::int AS provider_uid, 'Monthly'::text AS frequency FROM generate_series(1, 5) p",
    )
    .execute(&f.pool)
    .await
    .expect("create src");
    // The lock is session-level: the rollback of the read-only transaction
    // does not release it.
    let sql = format!(
        "SELECT {COLUMNS} FROM src WHERE (SELECT pg_advisory_lock(4242)::text) IS NOT NULL"
    );
    add(&f, 1, &sql, 600).await;

    // While the source is still open (its pool alive), the query's
    // connection must not be holding the lock.
    let source = Source::open(f.db.url(), Duration::from_secs(30))
        .await
        .expect("open source");
    let mut stream = source.rows(1, &sql, 1 << 20).await.expect("stream");
    let mut groups = 0;
    while let Some(chunk) = stream.next().await {
        groups += chunk.expect("chunk").groups.len();
    }
    assert_eq!(groups, 5);
    source.count(1, &sql).await.expect("count");
    assert!(
        lock_is_free(&f.pool).await,
        "a source query's advisory lock survived on its pooled connection"
    );
    source.close().await;

    // And after a warm through the CLI.
    let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
    cli.run_async(&["warm", "--datasource", "1"])
        .await
        .success();
    assert!(lock_is_free(&f.pool).await, "the warm left the lock held");
    assert_eq!(f.warm(1).await.state, JobState::Succeeded);
    assert!(lock_is_free(&f.pool).await, "the warm left the lock held");
    f.pool.close().await;
}
