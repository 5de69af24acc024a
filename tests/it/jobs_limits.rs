//! Warm rate limits as the seed counts them: one submission is one
//! operation however many datasources it names, and a warm skipped because
//! the cache is recent costs nothing. Real `cachedeck` processes, real
//! Redis (standalone and cluster) and Postgres.

use cachedeck::cache::{lock, shadow};

use crate::jobs::{active_of, cli_for, cli_with, exec, slow_datasources, status};
use crate::support::{AnyRedis, TestDb};

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn standalone() {
                $body(&AnyRedis::standalone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                $body(&AnyRedis::cluster()).await;
            }
        }
    };
}

/// Under a limit of 10 warms an hour: a Warm All of 12 datasources runs,
/// Warm Alls that only skip cost nothing, and nine more warms of a list of
/// two datasources fill the budget exactly; the next is refused (exit 5).
async fn warm_all_is_one_operation(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 4).env("CACHEDECK_WARM_RATE_LIMIT", "10");
    cli.run_async(&["demo-data", "--rows", "200"])
        .await
        .success();
    exec(
        db.url(),
        "INSERT INTO cachedeck.datasources \
         (id, name, source_url, sql, stale_after_secs, ttl_secs, enabled, created_at_ms, updated_at_ms) \
         SELECT g, 'Copy ' || g, source_url, sql, stale_after_secs, ttl_secs, enabled, created_at_ms, updated_at_ms \
         FROM cachedeck.datasources, generate_series(2, 12) AS g WHERE id = 1",
    )
    .await;

    let out = cli
        .run_async(&["warm", "--all", "--json"])
        .await
        .success()
        .json();
    let jobs = out["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 12, "{out:#}");
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{out:#}");

    // Everything was warmed a moment ago: skipped, and free.
    for _ in 0..3 {
        let out = cli
            .run_async(&["warm", "--all", "--json"])
            .await
            .success()
            .json();
        let jobs = out["jobs"].as_array().expect("jobs");
        assert!(jobs.iter().all(|j| j["state"] == "skipped"), "{out:#}");
    }

    // One Warm All spent one of ten: nine more operations pass.
    for i in 0..9 {
        let out = cli
            .run_async(&[
                "warm",
                "--datasource",
                "1",
                "--datasource",
                "2",
                "--force",
                "--json",
            ])
            .await;
        assert_eq!(out.code, 0, "forced warm {} of 9: {out}", i + 1);
    }
    let refused = cli
        .run_async(&["warm", "--datasource", "3", "--force"])
        .await
        .code(5);
    assert!(refused.stderr.contains("allowed again in"), "{refused}");
}

both!(
    a_warm_all_is_one_operation_and_skips_are_free,
    warm_all_is_one_operation
);

/// A warm that runs past `defaults.warm_timeout` (here 2 s, against a
/// source that takes about 6 s) ends failed with that cause, leaves no
/// shadow keys and frees the datasource's lock; the next warm may start.
async fn warm_past_its_timeout(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_with(r, &db, 2, "defaults.warm_timeout = \"2s\"\n");
    slow_datasources(&cli, &db, &[2]).await;
    let redis = r.connect().await;

    let out = cli
        .run_async(&["warm", "--datasource", "2", "--json"])
        .await
        .code(1)
        .json();
    let job = &out["jobs"][0];
    assert_eq!(job["state"], "failed", "{out:#}");
    let cause = job["error"].as_str().unwrap_or("");
    assert!(
        cause.contains("warm timeout of 2s") && cause.contains("defaults.warm_timeout"),
        "{cause}"
    );
    assert!(
        !shadow::exists(&redis, 2).await.expect("shadow"),
        "shadow keys left behind"
    );
    assert_eq!(lock::holder(&redis, 2).await.expect("lock"), None);
    let st = status(&cli).await;
    assert!(active_of(&st, 2).is_none(), "{st:#}");
    let audit = cli
        .run_async(&[
            "audit",
            "--since",
            "1h",
            "--action",
            "cache_warm_failed",
            "--json",
        ])
        .await
        .success()
        .json();
    let rows = audit.as_array().expect("audit rows");
    assert_eq!(rows.len(), 1, "{audit:#}");
    assert!(audit.to_string().contains("warm timeout"), "{audit:#}");
}

both!(a_warm_past_its_timeout_ends_cleanly, warm_past_its_timeout);
