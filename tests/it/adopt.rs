//! Living beside the seed application's warmer, then taking over (issue 15
//! §2), on caches written by `SeedCache`: the application's warm lock makes
//! a warm busy (exit 3, naming it) and shows in the health check; the first
//! cachedeck warm adopts the cache — stale entries and index sets no index
//! list names are gone after it, while readers on the seed's raw path (index
//! set → MGET) never miss during it; the application's leftover shadow keys
//! are reported, then removed by the warm. Standalone and 3-master cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::JobState;
use cachedeck::redis_conn::Redis;
use serde_json::Value;

use crate::support::{AnyRedis, CliRunner, SeedCache, WarmFixture, each_topology};

const HOUR_MS: i64 = 3_600_000;
/// The datasource's TTL: 48 h.
const TTL_SECS: i64 = 48 * 3600;

/// Datasource 1 over a source holding two of the seed cache's three
/// measures (Charges, Payments; no Adjustments), the seed's practices and
/// providers, and NULL providers (which cachedeck names `%N`, the seed
/// `null`).
async fn fixture(r: &AnyRedis) -> WarmFixture {
    let f = WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await;
    sqlx::query(
        "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, date_index TEXT, measure_value NUMERIC(10,2))",
    )
    .execute(&f.pool)
    .await
    .expect("create src");
    sqlx::query(
        "INSERT INTO src SELECT m, p, prov, f, '2025-10-01', 99.5 \
         FROM unnest(ARRAY['Charges','Payments']) m, generate_series(114, 121) p, \
         unnest(ARRAY[5, 6, 7, 8, NULL]) prov, unnest(ARRAY['Monthly','Weekly']) f",
    )
    .execute(&f.pool)
    .await
    .expect("fill src");
    f.add_ds(1, "Revenue", "SELECT * FROM src", TTL_SECS, true)
        .await;
    f
}

/// The standard seed cache of datasource 1, warmed three hours ago.
async fn seed(f: &WarmFixture) {
    let now = f.redis.time_ms().await.expect("time");
    SeedCache::standard(
        1,
        Some(now.saturating_sub(3 * HOUR_MS).to_string()),
        TTL_SECS * 1000 - 3 * HOUR_MS,
    )
    .write(&f.redis)
    .await;
}

/// One SCAN call on one node: the words in, (next cursor, keys) out.
type ScanCall<'a> = &'a dyn Fn(&[&str]) -> (String, Vec<String>);

/// Every key matching `pattern` over every master (SCAN).
fn scan(r: &AnyRedis, pattern: &str) -> Vec<String> {
    let one = |cmd: ScanCall| {
        let mut out = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, keys) = cmd(&["SCAN", &cursor, "MATCH", pattern, "COUNT", "1000"]);
            out.extend(keys);
            if next == "0" {
                return out;
            }
            cursor = next;
        }
    };
    let mut keys = match r {
        AnyRedis::Standalone(s) => one(&|w| s.cmd(w)),
        AnyRedis::Cluster(c) => c.nodes().iter().flat_map(|n| one(&|w| n.cmd(w))).collect(),
    };
    keys.sort();
    keys.dedup();
    keys
}

fn issue_codes(health: &Value) -> Vec<String> {
    health["issues"]
        .as_array()
        .expect("issues")
        .iter()
        .filter(|i| i["datasourceId"] == 1)
        .map(|i| i["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_applications_warm_lock_makes_a_warm_busy_and_shows_in_health() {
    each_topology(async |r| {
        let f = fixture(r).await;
        seed(&f).await;
        let _: () = r.cmd(&["SET", "lock:shadow:warm:1", "app-job-17", "PX", "300000"]);
        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());

        let out = cli.run(&["warm", "--datasource", "1"]).code(3);
        let line = out.stderr_lines().join("\n");
        assert!(
            line.contains("the application's warmer holds lock:shadow:warm:1 (expires in"),
            "{out}"
        );
        // A job that would start now is refused the same way, and nothing
        // of the cache changed.
        let snap = f.warm(1).await;
        assert_eq!(snap.state, JobState::Failed, "{snap:?}");
        assert_eq!(snap.error_kind.as_deref(), Some("busy"), "{snap:?}");
        let entries: u64 = r.cmd(&["SCARD", "idx:{ds:1}:master"]);
        assert_eq!(entries, crate::support::SEED_ENTRIES);
        let meta: i64 = r.cmd(&["EXISTS", "cache:meta:{ds:1}"]);
        assert_eq!(meta, 0, "no cachedeck meta written while the app warms");

        let health = cli.run(&["health", "--json"]).success().json();
        assert!(
            issue_codes(&health).contains(&"app_warming".to_string()),
            "{health:#}"
        );
        let text = health.to_string();
        assert!(text.contains("lock:shadow:warm:1"), "{health:#}");

        // Released: the warm runs.
        let _: () = r.cmd(&["DEL", "lock:shadow:warm:1"]);
        cli.run(&["warm", "--datasource", "1"]).success();
        let health = cli.run(&["health", "--json"]).success().json();
        assert!(
            !issue_codes(&health).contains(&"app_warming".to_string()),
            "{health:#}"
        );
    })
    .await;
}

/// One raw-path read as the seed's application does it: the members of an
/// index set (or the intersection of two), then MGET of them. Returns a
/// description of the miss, if any.
async fn raw_read(redis: &Redis, sets: &[String]) -> Option<String> {
    let cmd = if sets.len() == 1 {
        redis::cmd("SMEMBERS").arg(&sets[0]).clone()
    } else {
        redis::cmd("SINTER").arg(sets).clone()
    };
    let members: Vec<String> = redis.query("raw read", &cmd).await.expect("members");
    if members.is_empty() {
        return Some(format!("{sets:?} empty"));
    }
    let values: Vec<Option<String>> = redis
        .query("MGET", redis::cmd("MGET").arg(&members))
        .await
        .expect("mget");
    let missing: Vec<&String> = members
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(m, _)| m)
        .collect();
    (!missing.is_empty()).then(|| format!("{sets:?}: {missing:?} missing"))
}

#[tokio::test]
async fn the_first_warm_adopts_the_cache_without_a_miss_for_raw_readers() {
    each_topology(async |r| {
        let f = fixture(r).await;
        seed(&f).await;
        // An index kind cachedeck does not have, and leftovers of an
        // interrupted application warm.
        let _: () = r.cmd(&[
            "SADD",
            "idx:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly",
            "cache:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly",
        ]);
        let app_shadow = [
            "cache:shadow:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly",
            "idx:shadow:{ds:1}:master",
            "idx:shadow:{ds:1}:m:Charges:freq:Monthly",
        ];
        let _: () = r.cmd(&["SET", app_shadow[0], "[]"]);
        let _: () = r.cmd(&["SADD", app_shadow[1], "x"]);
        let _: () = r.cmd(&["SADD", app_shadow[2], "x"]);
        // Another datasource's cache, not registered: never touched.
        SeedCache {
            measures: &["Charges"],
            ..SeedCache::standard(2, None, HOUR_MS)
        }
        .write(&f.redis)
        .await;
        let other_before = scan(r, "*{ds:2}*");

        // Reported before the warm (stats warnings and health).
        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
        let health = cli.run(&["health", "--json"]).success().json();
        assert!(
            issue_codes(&health).contains(&"app_shadow_leftover".to_string()),
            "{health:#}"
        );
        assert!(health.to_string().contains("3 shadow keys"), "{health:#}");
        let stats = cli.run(&["stats", "--json"]).success().json();
        assert!(stats.to_string().contains("3 shadow keys"), "{stats:#}");
        for k in app_shadow {
            let n: i64 = r.cmd(&["EXISTS", k]);
            assert_eq!(n, 1, "{k} was removed by a read-only command");
        }

        // Readers of selections both generations hold, looping on the raw
        // path during the warm. (A set that also lists entries the new
        // generation drops — the seed's `prov:null` ones — read just before
        // the swap and MGET just after would show those as missing: they
        // are gone by design, README "Adopting an existing deployment".)
        let selections: Vec<Vec<String>> = vec![
            vec!["idx:{ds:1}:m:Charges:prov:5:freq:Monthly".into()],
            vec!["idx:{ds:1}:m:Payments:prov:8:freq:Weekly".into()],
            vec![
                "idx:{ds:1}:m:Payments:p:117:freq:Weekly".into(),
                "idx:{ds:1}:m:Payments:prov:7:freq:Weekly".into(),
            ],
            vec![
                "idx:{ds:1}:m:Charges:p:115:freq:Weekly".into(),
                "idx:{ds:1}:m:Charges:prov:6:freq:Weekly".into(),
            ],
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let mut readers = Vec::new();
        for sets in selections {
            let (redis, stop, reads) = (f.redis.clone(), stop.clone(), reads.clone());
            readers.push(tokio::spawn(async move {
                let mut misses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(m) = raw_read(&redis, &sets).await {
                        misses.push(m);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                // And once after the warm.
                misses.extend(raw_read(&redis, &sets).await);
                misses
            }));
        }
        let snap = f.warm(1).await;
        stop.store(true, Ordering::Relaxed);
        let mut misses = Vec::new();
        for t in readers {
            misses.extend(t.await.expect("reader"));
        }
        assert_eq!(snap.state, JobState::Succeeded, "{snap:?}");
        assert!(reads.load(Ordering::Relaxed) > 0, "the readers never read");
        assert!(misses.is_empty(), "raw readers missed: {misses:?}");

        // The new generation only: 2 measures × 2 frequencies × 8
        // practices × 5 providers.
        let master: u64 = r.cmd(&["SCARD", "idx:{ds:1}:master"]);
        assert_eq!(master, 160);
        let entries: Vec<String> = scan(r, "cache:{ds:1}:m:*");
        assert_eq!(entries.len(), 160, "stale entries left: {entries:?}");
        for e in &entries {
            let listed: i64 = r.cmd(&["SISMEMBER", "idx:{ds:1}:master", e]);
            assert_eq!(listed, 1, "{e} is not in the new generation");
            assert!(
                !e.contains("Adjustments") && !e.contains("prov:null"),
                "{e}"
            );
        }
        // Every index set left is one of the new generation's.
        let indexes: Vec<String> = scan(r, "idx:{ds:1}:m:*");
        let listed: u64 = r.cmd(&["SCARD", "idx:{ds:1}:indexes"]);
        assert_eq!(indexes.len() as u64, listed, "{indexes:?}");
        for i in &indexes {
            let known: i64 = r.cmd(&["SISMEMBER", "idx:{ds:1}:indexes", i]);
            assert_eq!(known, 1, "index set {i} survived the adoption");
        }
        // The application's shadow keys are gone; the other cache is intact.
        for k in app_shadow {
            let n: i64 = r.cmd(&["EXISTS", k]);
            assert_eq!(n, 0, "{k} survived the warm");
        }
        assert_eq!(scan(r, "*{ds:2}*"), other_before);

        let health = cli.run(&["health", "--json"]).success().json();
        let codes = issue_codes(&health);
        assert!(
            !codes.contains(&"app_shadow_leftover".to_string()),
            "{health:#}"
        );
        let stats = cli.run(&["stats", "--json"]).success().json();
        let m = stats["datasources"]
            .as_array()
            .expect("datasources")
            .iter()
            .find(|d| d["datasourceId"] == 1)
            .expect("DS 1")
            .clone();
        assert_eq!(m["writtenElsewhere"], false, "{m:#}");
        assert_eq!(m["totalEntries"], 160);
    })
    .await;
}
