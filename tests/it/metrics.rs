//! Stats, health, integrity and trends against real warms of the demo data,
//! on a standalone server and on a 3-master cluster, with a fresh Postgres
//! database: each health issue is produced by setting up its condition for
//! real, and must go away when the condition is fixed.

use std::time::{Duration, Instant};

use cachedeck::cache::query::{self, QueryRequest};
use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::{JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, GroupKey, ParsedKey, SecondaryIndex};
use cachedeck::metrics::{self, Health, HealthReport, Overall, Severity, StatsReport};
use cachedeck::source::demo;
use cachedeck::store::DatasourceInput;

use crate::support::{AnyRedis, CliRunner, RedisServer, WarmFixture, each_topology};

type Fixture = WarmFixture;

async fn fixture(r: &AnyRedis) -> Fixture {
    WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await
}

/// Creates demo table `table` with `rows` rows and registers datasource `id` on it.
async fn demo_ds(f: &Fixture, id: i64, table: &str, rows: u64) {
    demo::create(f.db.url(), table, rows, false)
        .await
        .expect("demo data");
    add_ds(f, id, &demo::datasource_sql(table, None), true).await;
}

async fn add_ds(f: &Fixture, id: i64, sql: &str, enabled: bool) {
    f.add_ds(id, &format!("Metrics {id}"), sql, 48 * 3600, enabled)
        .await;
}

async fn set_stale_after(f: &Fixture, id: i64, secs: i64) {
    let d = f.store.datasource(id).await.expect("datasource");
    f.store
        .update_datasource(&DatasourceInput {
            id,
            name: d.name,
            source_url: d.source_url,
            source_password: d.source_password,
            sql: d.sql,
            stale_after_secs: secs,
            ttl_secs: d.ttl_secs,
            enabled: d.enabled,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })
        .await
        .expect("update datasource");
}

async fn warm(f: &Fixture, ds: i64) -> JobSnapshot {
    f.warm(ds).await
}

async fn warm_ok(f: &Fixture, ds: i64) -> JobSnapshot {
    let s = warm(f, ds).await;
    assert_eq!(
        s.state,
        JobState::Succeeded,
        "warm of DS #{ds}: {:?}",
        s.error
    );
    s
}

async fn sql_i64(f: &Fixture, sql: &str) -> u64 {
    let v: i64 = sqlx::query_scalar(sql)
        .fetch_one(&f.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    v as u64
}

/// What the warm of `table` must have cached, computed by Postgres.
struct Expected {
    entries: u64,
    indexes: u64,
    measures: u64,
    practices: u64,
    providers: u64,
    frequencies: Vec<String>,
}

async fn expected(f: &Fixture, table: &str) -> Expected {
    let entries = sql_i64(
        f,
        &format!(
            "SELECT COUNT(DISTINCT (measure, practice_uid, provider_uid, frequency)) FROM {table}"
        ),
    )
    .await;
    // Cross-check of COUNT(DISTINCT row) with NULL providers.
    let by_subquery = sql_i64(
        f,
        &format!(
            "SELECT COUNT(*) FROM (SELECT DISTINCT measure, practice_uid, provider_uid, frequency FROM {table}) g"
        ),
    )
    .await;
    assert_eq!(entries, by_subquery);
    let indexes = sql_i64(
        f,
        &format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT DISTINCT measure, frequency FROM {table}) a) \
                  + (SELECT COUNT(*) FROM (SELECT DISTINCT measure, practice_uid, frequency FROM {table}) b) \
                  + (SELECT COUNT(*) FROM (SELECT DISTINCT measure, provider_uid, frequency FROM {table}) c)"
        ),
    )
    .await;
    let frequencies: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT DISTINCT frequency FROM {table} ORDER BY frequency"
    ))
    .fetch_all(&f.pool)
    .await
    .expect("frequencies");
    Expected {
        entries,
        indexes,
        measures: sql_i64(f, &format!("SELECT COUNT(DISTINCT measure) FROM {table}")).await,
        practices: sql_i64(
            f,
            &format!("SELECT COUNT(DISTINCT practice_uid) FROM {table}"),
        )
        .await,
        providers: sql_i64(
            f,
            &format!("SELECT COUNT(DISTINCT provider_uid) FROM {table}"),
        )
        .await,
        frequencies,
    }
}

fn ds_metrics(r: &StatsReport, id: i64) -> &metrics::DatasourceCacheMetrics {
    r.datasources
        .iter()
        .find(|m| m.datasource_id == id)
        .unwrap_or_else(|| panic!("DS #{id} missing from stats: {r:#?}"))
}

fn codes(r: &HealthReport, ds: Option<i64>) -> Vec<String> {
    r.issues
        .iter()
        .filter(|i| i.datasource_id == ds)
        .map(|i| i.code.clone())
        .collect()
}

fn find<'a>(r: &'a HealthReport, ds: Option<i64>, code: &str) -> &'a metrics::HealthIssue {
    r.issues
        .iter()
        .find(|i| i.datasource_id == ds && i.code == code)
        .unwrap_or_else(|| panic!("no `{code}` issue for {ds:?}: {r:#?}"))
}

fn has(r: &HealthReport, ds: Option<i64>, code: &str) -> bool {
    r.issues
        .iter()
        .any(|i| i.datasource_id == ds && i.code == code)
}

async fn health(f: &Fixture) -> HealthReport {
    metrics::check(&f.redis, &f.store)
        .await
        .expect("health check")
}

/// The master nodes of the test deployment.
fn nodes(r: &AnyRedis) -> Vec<&RedisServer> {
    match r {
        AnyRedis::Standalone(s) => vec![s],
        AnyRedis::Cluster(c) => c.nodes().iter().collect(),
    }
}

fn config_set(r: &AnyRedis, name: &str, value: &str) {
    for n in nodes(r) {
        let _: () = n.cmd(&["CONFIG", "SET", name, value]);
    }
}

fn used_memory(n: &RedisServer) -> u64 {
    let info: String = n.cmd(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

/// Sets each node's maxmemory to its used memory × `factor`.
fn maxmemory_at(r: &AnyRedis, factor: f64) {
    for n in nodes(r) {
        let max = (used_memory(n) as f64 * factor) as u64;
        let _: () = n.cmd(&["CONFIG", "SET", "maxmemory", &max.to_string()]);
    }
}

fn random_entry(r: &AnyRedis, ds: i64) -> (String, GroupKey) {
    let key: String = r.query(redis::cmd("SRANDMEMBER").arg(keys::master_index(ds, Gen::Live)));
    match keys::parse(&key) {
        Some(ParsedKey::Entry { group, .. }) => (key, group),
        other => panic!("master member {key} parsed as {other:?}"),
    }
}

fn request(ds: i64, g: &GroupKey) -> QueryRequest {
    QueryRequest {
        datasource: ds,
        measure: g.measure.clone(),
        frequency: g.frequency.clone(),
        practices: vec![g.practice.clone()],
        providers: vec![],
    }
}

// ------------------------------------------------------------------ stats

#[tokio::test]
async fn stats_match_a_warmed_demo_datasource_and_a_known_query_sequence() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        demo_ds(&f, 1, "demo_stats", 3000).await;
        add_ds(&f, 2, "SELECT * FROM demo_stats", true).await; // never warmed
        add_ds(&f, 3, "SELECT * FROM demo_stats", false).await; // disabled, never warmed
        let job = warm_ok(&f, 1).await;
        let want = expected(&f, "demo_stats").await;

        let started = Instant::now();
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        eprintln!("stats over 3 datasources took {:?}", started.elapsed());
        let m = ds_metrics(&s, 1);
        assert!(m.is_warm);
        assert_eq!(m.total_entries, want.entries);
        assert_eq!(m.total_entries, job.entries_cached);
        assert_eq!(m.index_count, want.indexes);
        let listed: u64 = r.query(redis::cmd("SCARD").arg(keys::index_list(1, Gen::Live)));
        assert_eq!(m.index_count, listed);
        assert_eq!(m.unique_measures, want.measures);
        assert_eq!(m.unique_practices, want.practices);
        assert_eq!(m.unique_providers, want.providers);
        assert_eq!(m.unique_frequencies, want.frequencies);
        assert!(m.estimated_memory_mb > 0.0, "{m:#?}");
        assert!(m.memory_sample_size > 0);
        assert!(m.last_warmed.is_some());
        assert!(m.age_minutes.expect("age") < 5.0);
        assert_eq!(m.stale_after_minutes, 240.0);
        assert_eq!(
            (m.cache_hit_rate, m.avg_query_time_ms, m.total_queries),
            (None, None, 0)
        );
        // Fresh, full coverage, no queries: 40 + 20 of 60 → 100.
        assert_eq!(m.health, Health::Excellent);
        assert_eq!(m.health_score.score, 100.0);
        assert_eq!(m.health_score.hit_rate_score, None);
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
        assert_eq!(m.warming_job, None);

        let cold = ds_metrics(&s, 2);
        assert!(!cold.is_warm);
        assert_eq!((cold.health, cold.health_score.score), (Health::Cold, 0.0));
        assert_eq!(
            (
                cold.total_entries,
                cold.age_minutes,
                cold.last_warmed.clone()
            ),
            (0, None, None)
        );
        assert!(
            cold.warnings.iter().any(|w| w.contains("cold")),
            "{:?}",
            cold.warnings
        );
        let disabled = ds_metrics(&s, 3);
        assert!(!disabled.enabled && !disabled.is_warm);
        assert!(disabled.warnings.is_empty(), "{:?}", disabled.warnings);

        assert_eq!(s.summary.total_datasources, 3);
        assert_eq!(s.summary.warm_datasources, 1);
        assert_eq!(s.summary.cold_datasources, 2);
        assert_eq!(s.summary.total_cache_entries, want.entries);
        assert_eq!(s.summary.total_indexes, want.indexes);
        assert_eq!(s.summary.total_memory_mb, m.estimated_memory_mb);
        assert_eq!(s.summary.overall_cache_hit_rate, None);

        // 3 hits and 1 miss (an entry deleted behind the index, then put back).
        let (key, group) = random_entry(r, 1);
        let req = request(1, &group);
        let mut durations = 0.0;
        for _ in 0..3 {
            let q = query::query_recorded(&f.redis, &req).await.expect("query");
            assert!(q.hit);
            durations += q.duration_ms;
        }
        let value: String = r.query(redis::cmd("GET").arg(&key));
        let pttl: i64 = r.query(redis::cmd("PTTL").arg(&key));
        let _: () = r.query(redis::cmd("DEL").arg(&key));
        let q = query::query_recorded(&f.redis, &req).await.expect("query");
        assert!(!q.hit, "a query over a deleted entry must miss");
        durations += q.duration_ms;
        let _: () = r.query(redis::cmd("SET").arg(&key).arg(&value).arg("PX").arg(pttl));

        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        let m = ds_metrics(&s, 1);
        assert_eq!(m.total_queries, 4);
        assert_eq!(m.cache_hit_rate, Some(75.0));
        assert_eq!(s.summary.overall_cache_hit_rate, Some(75.0));
        let query_us: u64 = r.query(
            redis::cmd("HGET")
                .arg(keys::stats_since_warm(1))
                .arg("queryUs"),
        );
        let avg = m.avg_query_time_ms.expect("avg query time");
        assert_eq!(avg, query_us as f64 / 1000.0 / 4.0);
        assert!(
            (avg - durations / 4.0).abs() < 0.01,
            "avg {avg} vs measured {}",
            durations / 4.0
        );
        // 40 (age) + 20 (75 %) + 20 (coverage) = 80: good.
        assert_eq!(m.health_score.hit_rate_score, Some(20.0));
        assert_eq!((m.health, m.health_score.score), (Health::Good, 80.0));

        // The master index losing a member: SCARD is reported, with a warning.
        let (key, _) = random_entry(r, 1);
        let _: () = r.query(
            redis::cmd("SREM")
                .arg(keys::master_index(1, Gen::Live))
                .arg(&key),
        );
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        let m = ds_metrics(&s, 1);
        assert_eq!(m.total_entries, want.entries - 1);
        assert!(
            m.warnings.iter().any(|w| w.contains(&format!(
                "holds {} entries but the last warm cached {}",
                want.entries - 1,
                want.entries
            ))),
            "{:?}",
            m.warnings
        );
        let _: () = r.query(
            redis::cmd("SADD")
                .arg(keys::master_index(1, Gen::Live))
                .arg(&key),
        );
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        assert!(ds_metrics(&s, 1).warnings.is_empty());

        // The CLI prints the same report.
        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
        let out = cli.run(&["stats", "--json"]).success();
        let j = out.json();
        assert_eq!(j["summary"]["totalDatasources"], 3);
        assert_eq!(j["summary"]["overallCacheHitRate"], 75.0);
        let d1 = &j["datasources"][0];
        assert_eq!(d1["datasourceId"], 1);
        assert_eq!(d1["totalEntries"], want.entries);
        assert_eq!(d1["indexCount"], want.indexes);
        assert_eq!(d1["cacheHitRate"], 75.0);
        assert_eq!(d1["health"], "good");
        assert!(d1["estimatedMemoryMB"].as_f64().expect("MB") > 0.0);
        assert_eq!(j["datasources"][1]["cacheHitRate"], serde_json::Value::Null);
        assert_eq!(j["datasources"][1]["ageMinutes"], serde_json::Value::Null);
        let human = cli.run(&["stats"]).success().stdout;
        assert!(
            human.starts_with("3 datasources • 1 warm • 2 cold"),
            "{human}"
        );
        assert!(human.contains("DS #1 Metrics 1: good (80)"), "{human}");
        assert!(human.contains("hit rate 75.0%"), "{human}");
        assert!(
            human.contains("DS #2 Metrics 2: cold (0) • never warmed"),
            "{human}"
        );
        assert!(human.contains("hit rate no queries yet"), "{human}");
        f.pool.close().await;
    })
    .await;
}

// ------------------------------------------------------------------ health

#[tokio::test]
async fn each_datasource_health_issue_appears_with_its_condition_and_goes_when_fixed() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        config_set(r, "maxmemory", "1gb");
        // Few enough entries (< the 200-entry sample) that sampling sees them all.
        demo_ds(&f, 1, "demo_health", 1500).await;
        add_ds(
            &f,
            2,
            "SELECT * FROM demo_health WHERE measure = 'Charges'",
            true,
        )
        .await;
        let first = warm_ok(&f, 1).await;
        let entries: u64 = r.query(redis::cmd("SCARD").arg(keys::master_index(1, Gen::Live)));
        assert!(entries > 10 && entries < 200, "{entries} entries");

        // Cold: registered, enabled, never warmed.
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), Vec::<String>::new(), "{h:#?}");
        assert_eq!(codes(&h, Some(2)), vec!["cold"], "{h:#?}");
        let cold = find(&h, Some(2), "cold");
        assert_eq!(cold.severity, Severity::Error);
        assert_eq!(
            cold.recommendation,
            "Warm DS #2: `cachedeck warm --datasource 2`"
        );
        assert_eq!(h.overall, Overall::Critical);
        assert_eq!(h.recommendations[0], cold.recommendation);
        warm_ok(&f, 2).await;
        let h = health(&f).await;
        assert!(h.issues.is_empty(), "{h:#?}");
        assert_eq!(h.overall, Overall::Excellent);
        assert!(h.recommendations.is_empty());

        // Stale: stale-after shorter than the age.
        set_stale_after(&f, 1, 1).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), vec!["stale"], "{h:#?}");
        let stale = find(&h, Some(1), "stale");
        assert_eq!(stale.severity, Severity::Warning);
        assert!(
            stale
                .recommendation
                .starts_with("Refresh DS #1: last warmed "),
            "{}",
            stale.recommendation
        );
        assert!(
            stale.recommendation.ends_with(" ago, stale after 1 s"),
            "{}",
            stale.recommendation
        );
        assert_eq!(h.overall, Overall::Degraded);
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        assert!(
            ds_metrics(&s, 1)
                .warnings
                .iter()
                .any(|w| w.starts_with("Cache is stale"))
        );
        set_stale_after(&f, 1, 4 * 3600).await;
        assert!(health(&f).await.issues.is_empty());

        // Leftover shadow keys, as a crashed warm leaves them.
        let (live_key, _) = random_entry(r, 1);
        let shadow_key = keys::shadow_of_entry(1, 999, &live_key).expect("shadow name");
        let _: () = r.query(redis::cmd("SET").arg(&shadow_key).arg("[]"));
        let _: () = r.query(
            redis::cmd("SADD")
                .arg(keys::master_index(1, Gen::Shadow(999)))
                .arg(&live_key),
        );
        let _: () = r.query(
            redis::cmd("ZADD")
                .arg(keys::shadow_registry(1))
                .arg("+inf")
                .arg(999),
        );
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), vec!["shadow_leftover"], "{h:#?}");
        assert_eq!(
            find(&h, Some(1), "shadow_leftover").severity,
            Severity::Warning
        );
        warm_ok(&f, 1).await;
        let left: i64 = r.query(
            redis::cmd("EXISTS")
                .arg(&shadow_key)
                .arg(keys::master_index(1, Gen::Shadow(999)))
                .arg(keys::shadow_registry(1)),
        );
        assert_eq!(left, 0);
        assert!(health(&f).await.issues.is_empty());

        // Stuck lock: held by a job id with no record ...
        let lock = keys::warm_lock(1);
        let _: () = r.query(redis::cmd("SET").arg(&lock).arg("ghostjob42"));
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), vec!["stuck_lock"], "{h:#?}");
        let stuck = find(&h, Some(1), "stuck_lock");
        assert_eq!(stuck.severity, Severity::Error);
        assert!(
            stuck.issue.contains("ghostjob42, which has no job record"),
            "{}",
            stuck.issue
        );
        assert!(
            stuck.issue.contains("never frees itself"),
            "{}",
            stuck.issue
        );
        assert!(
            stuck.recommendation.contains("DS #1"),
            "{}",
            stuck.recommendation
        );
        // ... or by a job that has ended.
        let _: () = r.query(
            redis::cmd("SET")
                .arg(&lock)
                .arg(&first.job_id)
                .arg("PX")
                .arg(600_000),
        );
        let h = health(&f).await;
        let stuck = find(&h, Some(1), "stuck_lock");
        assert!(
            stuck.issue.contains("has ended (succeeded)"),
            "{}",
            stuck.issue
        );
        let _: () = r.query(redis::cmd("DEL").arg(&lock));
        assert!(health(&f).await.issues.is_empty());

        // Index integrity: an entry deleted behind the index's back, an entry
        // dropped from one of its indexes, a ghost member in an index.
        let (gone, gone_group) = random_entry(r, 1);
        let _: () = r.query(redis::cmd("DEL").arg(&gone));
        let (unindexed, unindexed_group) = loop {
            let (k, g) = random_entry(r, 1);
            if k != gone {
                break (k, g);
            }
        };
        let mf = SecondaryIndex::for_group(&unindexed_group)[0].key(1, Gen::Live);
        let _: () = r.query(redis::cmd("SREM").arg(&mf).arg(&unindexed));
        let ghost = keys::entry(
            1,
            Gen::Live,
            &GroupKey {
                measure: unindexed_group.measure.clone(),
                practice: "999999".into(),
                provider: None,
                frequency: unindexed_group.frequency.clone(),
            },
        );
        let _: () = r.query(redis::cmd("SADD").arg(&mf).arg(&ghost));
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), vec!["index_integrity"], "{h:#?}");
        let broken = find(&h, Some(1), "index_integrity");
        assert_eq!(broken.severity, Severity::Error);
        assert!(
            broken.issue.contains("are indexed but do not exist"),
            "{}",
            broken.issue
        );
        assert!(
            broken.issue.contains("memberships are missing"),
            "{}",
            broken.issue
        );
        assert!(
            broken.recommendation.contains("--datasource 1 --force"),
            "{}",
            broken.recommendation
        );
        // The full walk finds each of them exactly.
        let v = metrics::verify(&f.redis, 1).await.expect("verify");
        assert!(v.complete && !v.ok() && !v.changed_during_check, "{v:#?}");
        assert_eq!(v.entries_checked, entries);
        assert_eq!(v.missing_entries, 1, "{v:#?}");
        assert_eq!(v.missing_memberships, 1, "{v:#?}");
        assert_eq!(v.orphan_members, 1, "{v:#?}");
        assert_eq!(
            v.indexes_checked,
            r.query::<u64>(redis::cmd("SCARD").arg(keys::index_list(1, Gen::Live)))
        );
        assert_eq!(
            (
                v.missing_indexes,
                v.unlisted_indexes,
                v.foreign_members,
                v.entries_without_ttl
            ),
            (0, 0, 0, 0)
        );
        // A reader of the deleted entry misses: 20 misses → low hit rate too.
        for _ in 0..20 {
            let q = query::query_recorded(&f.redis, &request(1, &gone_group))
                .await
                .expect("query");
            assert!(!q.hit);
        }
        let h = health(&f).await;
        assert_eq!(
            codes(&h, Some(1)),
            vec!["index_integrity", "low_hit_rate"],
            "{h:#?}"
        );
        assert!(
            find(&h, Some(1), "low_hit_rate")
                .issue
                .starts_with("Hit rate 0.0% over 20 queries")
        );
        warm_ok(&f, 1).await;
        assert!(health(&f).await.issues.is_empty());
        let v = metrics::verify(&f.redis, 1).await.expect("verify");
        assert!(v.ok(), "{v:#?}");
        assert!(v.members_checked >= 3 * entries, "{v:#?}");

        // Entries without expiry although the datasource has a TTL.
        let (k, _) = random_entry(r, 1);
        let _: () = r.query(redis::cmd("PERSIST").arg(&k));
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(1)), vec!["no_ttl"], "{h:#?}");
        let no_ttl = find(&h, Some(1), "no_ttl");
        assert_eq!(no_ttl.severity, Severity::Warning);
        assert!(no_ttl.issue.starts_with("1 of "), "{}", no_ttl.issue);
        assert!(no_ttl.issue.ends_with("TTL is 2 d"), "{}", no_ttl.issue);
        warm_ok(&f, 1).await;
        assert!(health(&f).await.issues.is_empty());

        // A failed last warm: the source table of DS #3 is dropped.
        sqlx::query(
            "CREATE TABLE flaky_src AS SELECT * FROM demo_health WHERE measure = 'Charges'",
        )
        .execute(&f.pool)
        .await
        .expect("create flaky_src");
        add_ds(&f, 3, "SELECT * FROM flaky_src", true).await;
        warm_ok(&f, 3).await;
        sqlx::query("DROP TABLE flaky_src")
            .execute(&f.pool)
            .await
            .expect("drop");
        let failed = warm(&f, 3).await;
        assert_eq!(failed.state, JobState::Failed);
        let h = health(&f).await;
        assert_eq!(codes(&h, Some(3)), vec!["warm_failed"], "{h:#?}");
        let wf = find(&h, Some(3), "warm_failed");
        assert_eq!(wf.severity, Severity::Error);
        assert!(wf.issue.contains(&failed.job_id), "{}", wf.issue);
        assert!(wf.issue.contains("flaky_src"), "{}", wf.issue);
        assert!(wf.recommendation.contains("DS #3"), "{}", wf.recommendation);
        sqlx::query(
            "CREATE TABLE flaky_src AS SELECT * FROM demo_health WHERE measure = 'Charges'",
        )
        .execute(&f.pool)
        .await
        .expect("recreate flaky_src");
        warm_ok(&f, 3).await;
        assert!(health(&f).await.issues.is_empty());
        f.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn redis_memory_and_eviction_issues_and_health_strict_exit_code() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        demo_ds(&f, 1, "demo_mem", 1500).await;
        add_ds(&f, 2, "SELECT * FROM demo_mem", true).await;
        warm_ok(&f, 1).await;
        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());

        // No maxmemory (the test servers' default) is a warning.
        let h = health(&f).await;
        let none = find(&h, None, "no_maxmemory");
        assert_eq!(none.severity, Severity::Warning);
        assert!(
            none.recommendation.contains("maxmemory"),
            "{}",
            none.recommendation
        );

        // DS #2 is cold: strict exits 7, plain health exits 0.
        let out = cli.run(&["health", "--strict", "--json"]).code(7);
        let j = out.json();
        assert_eq!(j["overall"], "critical");
        assert!(
            j["issues"]
                .as_array()
                .expect("issues")
                .iter()
                .any(|i| i["code"] == "cold" && i["datasourceId"] == 2 && i["severity"] == "error"),
            "{out}"
        );
        assert_eq!(
            j["recommendations"][0],
            "Warm DS #2: `cachedeck warm --datasource 2`"
        );
        cli.run(&["health"]).success();
        let human = cli.run(&["health", "--strict"]).code(7).stdout;
        assert!(human.starts_with("overall: critical"), "{human}");
        assert!(
            human.contains("ERROR DS #2 Metrics 2 [cold]: Cache is cold"),
            "{human}"
        );
        assert!(
            human.contains("recommendations:\n  1. Warm DS #2"),
            "{human}"
        );
        warm_ok(&f, 2).await;
        // Only warnings left: strict passes.
        let j = cli.run(&["health", "--strict", "--json"]).success().json();
        assert_eq!(j["overall"], "degraded");

        // Memory above 30 % of maxmemory: warning.
        maxmemory_at(r, 2.0);
        let h = health(&f).await;
        assert!(!has(&h, None, "no_maxmemory"), "{h:#?}");
        assert_eq!(codes(&h, None), vec!["memory_high"], "{h:#?}");
        assert_eq!(find(&h, None, "memory_high").severity, Severity::Warning);
        // Above 90 %: error, and strict fails.
        maxmemory_at(r, 1.0);
        let h = health(&f).await;
        assert_eq!(codes(&h, None), vec!["memory_critical"], "{h:#?}");
        assert_eq!(h.overall, Overall::Critical);
        cli.run(&["health", "--strict"]).code(7);
        // Plenty of room: no memory issue at all.
        config_set(r, "maxmemory", "1gb");
        let h = health(&f).await;
        assert!(h.issues.is_empty(), "{h:#?}");
        assert_eq!(h.overall, Overall::Excellent);

        // An eviction policy that may evict index sets.
        config_set(r, "maxmemory-policy", "allkeys-lru");
        let h = health(&f).await;
        assert_eq!(codes(&h, None), vec!["eviction_policy"], "{h:#?}");
        let ev = find(&h, None, "eviction_policy");
        assert_eq!(ev.severity, Severity::Warning);
        assert!(
            ev.issue.starts_with("maxmemory-policy is allkeys-lru"),
            "{}",
            ev.issue
        );
        config_set(r, "maxmemory-policy", "noeviction");
        assert!(health(&f).await.issues.is_empty());
        cli.run(&["health", "--strict"]).success();
        f.pool.close().await;
    })
    .await;
}

// ------------------------------------------------------------------ trends

#[tokio::test]
async fn trends_follow_queries_memory_samples_and_warms() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        demo_ds(&f, 1, "demo_trend", 1500).await;
        let job = warm_ok(&f, 1).await;
        let (_, group) = random_entry(r, 1);
        for _ in 0..5 {
            assert!(
                query::query_recorded(&f.redis, &request(1, &group))
                    .await
                    .expect("query")
                    .hit
            );
        }
        let now = f.redis.time_ms().await.expect("time");
        let from = now - 10 * 60_000;
        let t = metrics::trends(&f.redis, &f.store, 1, from, now, false)
            .await
            .expect("trends");
        assert_eq!((t.bucket_ms, t.hourly), (60_000, false));
        assert_eq!(t.points.len(), 11);
        assert_eq!(t.points[0].time_ms, from.div_euclid(60_000) * 60_000);
        assert!(
            t.points
                .windows(2)
                .all(|w| w[1].time_ms - w[0].time_ms == 60_000)
        );
        assert_eq!(t.totals.hits, 5);
        assert_eq!(t.totals.queries, 5);
        assert_eq!(t.totals.hit_rate, Some(100.0));
        assert!(t.totals.avg_query_ms.expect("avg") > 0.0);
        assert_eq!(t.points.iter().map(|p| p.hits).sum::<u64>(), 5);
        assert!(
            t.points
                .iter()
                .filter(|p| p.queries == 0)
                .all(|p| p.hit_rate.is_none() && p.avg_query_ms.is_none())
        );
        // The swap recorded a memory sample; the warm is in the history.
        assert_eq!(t.memory.len(), 1, "{:#?}", t.memory);
        assert_eq!(t.memory[0].entries, job.entries_cached);
        assert!(t.memory[0].memory_bytes > 0);
        assert_eq!(t.warms.len(), 1);
        assert_eq!(t.warms[0].job_id, job.job_id);
        assert!(t.warms[0].success);

        let hourly = metrics::trends(&f.redis, &f.store, 1, now - 3 * 86_400_000, now, true)
            .await
            .expect("hourly trends");
        assert_eq!(hourly.bucket_ms, 3_600_000);
        assert_eq!(hourly.totals.hits, 5);
        assert!(metrics::trends::hourly_for(now - 3 * 86_400_000, now));
        let err = metrics::trends(&f.redis, &f.store, 1, now - 3 * 86_400_000, now, false)
            .await
            .expect_err("minute buckets over 3 days");
        assert!(matches!(err, cachedeck::Error::Invalid(_)), "{err}");
        let json = serde_json::to_value(&t).expect("json");
        assert!(json["points"][0].get("hitRate").is_some());
        assert!(json["memory"][0].get("memoryMB").is_some());

        // The sampler writes one sample per warm datasource, and nothing for a read-only actor.
        add_ds(&f, 2, "SELECT * FROM demo_trend", true).await; // cold: no sample
        let mut read_only = f.jc.actor.clone();
        read_only.can_write = false;
        assert_eq!(
            metrics::trend_sampler(&f.redis, &f.store, &read_only)
                .await
                .expect("sampler"),
            0
        );
        assert_eq!(
            metrics::trend_sampler(&f.redis, &f.store, &f.jc.actor)
                .await
                .expect("sampler"),
            1
        );
        let later = f.redis.time_ms().await.expect("time");
        let t = metrics::trends(&f.redis, &f.store, 1, from, later, false)
            .await
            .expect("trends");
        assert_eq!(t.memory.len(), 2);
        assert_eq!(t.memory[1].entries, job.entries_cached);
        f.pool.close().await;
    })
    .await;
}

// ------------------------------------------------------------------ scale

#[tokio::test]
async fn stats_and_health_stay_fast_with_many_datasources() {
    // 300 registered datasources (1 warm, the rest cold) on a standalone server:
    // one pipeline each, many in flight.
    let r = AnyRedis::standalone();
    let f = fixture(&r).await;
    demo_ds(&f, 1, "demo_scale", 5000).await;
    warm_ok(&f, 1).await;
    for id in 2..=300 {
        add_ds(&f, id, "SELECT * FROM demo_scale", true).await;
    }
    let started = Instant::now();
    let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
    let stats_time = started.elapsed();
    assert_eq!(s.summary.total_datasources, 300);
    assert_eq!(s.summary.warm_datasources, 1);
    let started = Instant::now();
    let h = health(&f).await;
    let health_time = started.elapsed();
    assert_eq!(h.issues.iter().filter(|i| i.code == "cold").count(), 299);
    // Timing targets live in the benches; this only reports.
    eprintln!("300 datasources: stats {stats_time:?}, health {health_time:?}");
    f.pool.close().await;
}
