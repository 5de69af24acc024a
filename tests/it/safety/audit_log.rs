//! The audit log fails closed and is kept: a write whose audit row cannot
//! be written is refused before it changes anything; a retention below 30
//! days is refused; rows carry the database's own time and user.

use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::JobState;
use cachedeck::keys::{self, Gen};
use std::time::Duration;

use crate::support::{AnyRedis, CliRunner, WarmFixture, each_topology};

const TRIGGER: &str = "CREATE FUNCTION cachedeck.refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
     $$ BEGIN RAISE EXCEPTION 'audit_log is closed for this test'; END $$; \
     CREATE TRIGGER refuse_audit BEFORE INSERT ON cachedeck.audit_log \
     FOR EACH ROW EXECUTE FUNCTION cachedeck.refuse_audit()";

async fn fixture(r: &AnyRedis) -> WarmFixture {
    let f = WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await;
    sqlx::raw_sql(
        "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, amount INT); \
         INSERT INTO src SELECT 'Charges', p, NULL, 'Monthly', p FROM generate_series(1, 40) p",
    )
    .execute(&f.pool)
    .await
    .expect("source table");
    f.add_ds(1, "One", "SELECT * FROM src", 3600, true).await;
    assert_eq!(f.warm(1).await.state, JobState::Succeeded);
    f
}

#[tokio::test]
async fn a_write_whose_audit_row_cannot_be_written_is_refused() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
        let master = keys::master_index(1, Gen::Live);
        let entries = || -> i64 { r.query(redis::cmd("SCARD").arg(&master)) };
        let epoch = || -> Option<i64> { r.query(redis::cmd("GET").arg(keys::epoch(1))) };
        let generation = || -> Option<String> {
            r.query(redis::cmd("HGET").arg(keys::meta(1)).arg("generation"))
        };
        let (n, e, g) = (entries(), epoch(), generation());
        assert_eq!(n, 40);
        let rows_before: i64 = sqlx::query_scalar("SELECT count(*) FROM cachedeck.audit_log")
            .fetch_one(&f.pool)
            .await
            .expect("count");

        sqlx::raw_sql(TRIGGER)
            .execute(&f.pool)
            .await
            .expect("trigger");
        for args in [
            vec!["invalidate", "--datasource", "1"],
            vec!["invalidate", "--datasource", "1", "--measure", "Charges"],
            vec!["warm", "--datasource", "1", "--force"],
            vec!["datasource", "edit", "--id", "1", "--name", "Renamed"],
            vec![
                "schedule",
                "add",
                "--datasource",
                "1",
                "--cron",
                "0 * * * *",
            ],
        ] {
            let o = cli.run_async(&args).await.failure_one_line();
            assert_eq!(o.code, 1, "{o}");
            assert!(
                o.stderr.contains("audit row cannot be written")
                    && o.stderr.contains("audit_log is closed for this test")
                    && o.stderr.contains("nothing was changed"),
                "{args:?}: {o}"
            );
        }
        assert_eq!(entries(), n, "the cache was touched");
        assert_eq!(epoch(), e, "the epoch moved");
        assert_eq!(generation(), g, "a warm swapped");
        let live: i64 = r.query(redis::cmd("SCARD").arg(keys::jobs_live()));
        assert_eq!(live, 0, "a warm job was queued");
        assert_eq!(f.store.datasource(1).await.expect("ds").name, "One");
        assert!(f.store.schedules().await.expect("schedules").is_empty());

        // With the log writable again, the same invalidation runs and its one
        // row ends `ok` (no `started` row is left behind).
        sqlx::raw_sql("DROP TRIGGER refuse_audit ON cachedeck.audit_log")
            .execute(&f.pool)
            .await
            .expect("drop trigger");
        cli.run_async(&["invalidate", "--datasource", "1"])
            .await
            .success();
        assert_eq!(entries(), 0);
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT action, result FROM cachedeck.audit_log ORDER BY id")
                .fetch_all(&f.pool)
                .await
                .expect("rows");
        assert_eq!(rows.len() as i64, rows_before + 1, "{rows:?}");
        assert_eq!(
            rows.last(),
            Some(&("cache_invalidated".to_string(), "ok".to_string()))
        );
        assert!(rows.iter().all(|(_, res)| res != "started"), "{rows:?}");
        f.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn audit_rows_carry_the_database_time_and_user_and_are_kept_30_days() {
    let r = AnyRedis::standalone();
    let f = fixture(&r).await;
    // The row's time and user are the database's: a client whose clock is
    // a year off, or that names someone else, cannot forge them.
    let mut actor = f.jc.actor.clone();
    actor.identity = "someone-else".into();
    cachedeck::governance::audit::record(
        &f.store,
        &actor,
        "cache_invalidated",
        Some(1),
        serde_json::json!({}),
        "ok",
    )
    .await
    .expect("row");
    let (at_ms, db_user, db_now, me): (i64, String, i64, String) = sqlx::query_as(
        "SELECT at_ms, db_user, (extract(epoch FROM now()) * 1000)::bigint, current_user::text \
         FROM cachedeck.audit_log ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.pool)
    .await
    .expect("row back");
    assert_eq!(db_user, me);
    assert!((db_now - at_ms).abs() < 60_000, "{at_ms} vs {db_now}");

    // A retention under 30 days is refused by the agent, with the reason.
    let cli = CliRunner::new();
    cli.write_profiles(&format!(
        "default_profile = \"p\"\n[profiles.p]\nredis.urls = [\"{}\"]\ndatabase.url = \"{}\"\n\
         [profiles.p.defaults]\naudit_retention = \"7d\"\n",
        r.url_arg(),
        f.db.url()
    ));
    let o = cli
        .run_async(&["agent", "--poll-secs", "1"])
        .await
        .failure_one_line();
    assert!(
        o.stderr.contains("audit_retention") && o.stderr.contains("30 days"),
        "{o}"
    );
    f.pool.close().await;
}
