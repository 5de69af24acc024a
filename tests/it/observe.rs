//! Caches cachedeck did not write (issue 15 §1): a cache in the seed
//! application's format (no cachedeck meta hash) is warm in `stats` and
//! `health`, with every figure observed from Redis or estimated and labelled
//! so; `datasource discover` lists unregistered ones; and nothing is written
//! to Redis by any of it. Standalone and 3-master cluster.

use std::time::Duration;

use cachedeck::cache::warm::WarmOptions;
use cachedeck::keys;
use cachedeck::metrics::{self, Observations, Source};
use serde_json::Value;

use crate::support::{
    AnyRedis, CliRunner, SEED_ENTRIES, SEED_INDEXES, SEED_PRACTICES, SEED_PROVIDERS, SeedCache,
    WarmFixture, each_topology,
};

const HOUR_MS: i64 = 3_600_000;
/// The datasources' TTL: 48 h.
const TTL_SECS: i64 = 48 * 3600;

async fn fixture(r: &AnyRedis) -> WarmFixture {
    let f = WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await;
    f.add_ds(1, "Revenue", "SELECT 1", TTL_SECS, true).await;
    f
}

/// One SCAN call: words in, (cursor, keys) out.
type ScanCall<'a> = &'a dyn Fn(&[&str]) -> (String, Vec<String>);

/// Every key over every master, sorted (SCAN, for the before/after check).
fn all_keys(r: &AnyRedis) -> Vec<String> {
    let scan = |cmd: ScanCall| {
        let mut out = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let (next, keys) = cmd(&["SCAN", &cursor, "COUNT", "1000"]);
            out.extend(keys);
            if next == "0" {
                return out;
            }
            cursor = next;
        }
    };
    let mut keys = match r {
        AnyRedis::Standalone(s) => scan(&|w| s.cmd(w)),
        AnyRedis::Cluster(c) => c.nodes().iter().flat_map(|n| scan(&|w| n.cmd(w))).collect(),
    };
    keys.sort();
    keys
}

fn ds(stats: &Value, id: i64) -> &Value {
    stats["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .find(|d| d["datasourceId"] == id)
        .unwrap_or_else(|| panic!("DS #{id} in {stats:#}"))
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[tokio::test]
async fn a_seed_cache_is_warm_with_observed_figures_and_nothing_is_written() {
    each_topology(async |r| {
        let f = fixture(r).await;
        let now = f.redis.time_ms().await.expect("time");
        SeedCache::standard(
            1,
            Some(iso(now - 3 * HOUR_MS)),
            TTL_SECS * 1000 - 3 * HOUR_MS,
        )
        .write(&f.redis)
        .await;
        // An unregistered one for discover.
        let seven = SeedCache {
            measures: &["Charges"],
            ..SeedCache::standard(7, None, HOUR_MS)
        };
        seven.write(&f.redis).await;
        let before = (r.dbsize(), all_keys(r));

        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
        let stats = cli.run(&["stats", "--json"]).success().json();
        let m = ds(&stats, 1);
        assert_eq!(m["isWarm"], true, "{m:#}");
        assert_eq!(m["writtenElsewhere"], true);
        assert_eq!(m["totalEntries"], SEED_ENTRIES);
        assert_eq!(m["indexCount"], SEED_INDEXES);
        assert_eq!(m["uniqueMeasures"], 3);
        assert_eq!(m["uniquePractices"], SEED_PRACTICES);
        assert_eq!(m["uniqueProviders"], SEED_PROVIDERS);
        assert_eq!(
            m["uniqueFrequencies"],
            serde_json::json!(["Monthly", "Weekly"])
        );
        assert!(m["estimatedMemoryMB"].as_f64().unwrap() > 0.0, "{m:#}");
        let age = m["ageMinutes"].as_f64().expect("age");
        assert!((age - 180.0).abs() < 2.0, "age {age}");
        let sources = &m["sources"];
        assert_eq!(sources["lastWarm"], "observed");
        assert_eq!(sources["entries"], "observed");
        assert_eq!(sources["indexes"], "observed");
        assert_eq!(sources["coverage"], "observed");
        assert_eq!(sources["memory"], "estimated");
        assert_ne!(m["health"], "cold", "{m:#}");
        assert_eq!(stats["summary"]["warmDatasources"], 1);
        assert_eq!(stats["summary"]["coldDatasources"], 0);

        let health = cli.run(&["health", "--json"]).success().json();
        assert_ne!(health["overall"], "critical", "{health:#}");
        for i in health["issues"].as_array().unwrap() {
            assert!(
                i["datasourceId"] != 1 || i["severity"] != "error",
                "an error about a working cache: {i:#}"
            );
            assert_ne!(i["code"], "cold", "{i:#}");
        }
        for rec in health["recommendations"].as_array().unwrap() {
            assert!(!rec.as_str().unwrap().contains("Warm DS #1"), "{rec}");
        }
        // The human form says it too.
        let text = cli.run(&["stats"]).success().stdout;
        assert!(text.contains("240 entries"), "{text}");

        let found = cli
            .run(&["datasource", "discover", "--json"])
            .success()
            .json();
        let found = found.as_array().expect("array");
        assert_eq!(found.len(), 1, "only the unregistered DS #7: {found:#?}");
        assert_eq!(found[0]["datasourceId"], 7);
        assert_eq!(found[0]["totalEntries"], 80);
        assert!(found[0]["estimatedMemoryMB"].as_f64().unwrap() > 0.0);
        assert_eq!(found[0]["source"], "observed");
        let human = cli.run(&["datasource", "discover"]).success().stdout;
        assert!(human.contains("DS #7: 80 entries"), "{human}");

        assert_eq!(
            before,
            (r.dbsize(), all_keys(r)),
            "stats/health/discover wrote to Redis"
        );
    })
    .await;
}

#[tokio::test]
async fn every_last_warm_form_and_the_ttl_estimate() {
    each_topology(async |r| {
        let f = fixture(r).await;
        let now = f.redis.time_ms().await.expect("time");
        let at = now - 3 * HOUR_MS;
        SeedCache::standard(1, None, TTL_SECS * 1000 - 3 * HOUR_MS)
            .write(&f.redis)
            .await;
        let secs = at / 1000;
        let utc = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let plus2 = utc.with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap());
        let forms = [
            iso(at),
            utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            plus2.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
            plus2.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            secs.to_string(),
            at.to_string(),
        ];
        let last_warm = keys::last_warm(1);
        for form in &forms {
            let () = r.query(redis::cmd("SET").arg(&last_warm).arg(form));
            let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
            let m = &s.datasources[0];
            let age = m.age_minutes.expect("age");
            assert!((age - 180.0).abs() < 2.0, "{form}: age {age}");
            assert_eq!(m.sources.last_warm, Source::Observed, "{form}");
            assert!(m.is_warm);
        }
        // Without last_warm (or unreadable): from the remaining TTLs.
        for value in [None, Some("sometime")] {
            match value {
                None => {
                    let () = r.query(redis::cmd("DEL").arg(&last_warm));
                }
                Some(v) => {
                    let () = r.query(redis::cmd("SET").arg(&last_warm).arg(v));
                }
            }
            let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
            let m = &s.datasources[0];
            let age = m.age_minutes.expect("estimated age");
            assert!((age - 180.0).abs() < 2.0, "{value:?}: age {age}");
            assert_eq!(m.sources.last_warm, Source::Estimated);
            assert!(m.last_warmed.is_some());
            assert_ne!(m.health, metrics::Health::Cold);
        }
    })
    .await;
}

#[tokio::test]
async fn every_null_provider_form_counts_as_null() {
    each_topology(async |r| {
        let f = fixture(r).await;
        SeedCache {
            null_forms: &["null", "NULL", "", "%N"],
            ..SeedCache::standard(1, Some("1760558400".into()), HOUR_MS)
        }
        .write(&f.redis)
        .await;
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        let m = &s.datasources[0];
        assert_eq!(m.unique_providers, u64::from(SEED_PROVIDERS), "{m:#?}");
        // The NULL provider index of each measure+frequency once, whatever
        // the form.
        assert_eq!(m.index_count, SEED_INDEXES);
        assert_eq!(m.total_entries, SEED_ENTRIES);
    })
    .await;
}

#[tokio::test]
async fn the_window_observes_in_the_background_and_caches_it() {
    each_topology(async |r| {
        let f = fixture(r).await;
        SeedCache::standard(1, Some("1760558400000".into()), HOUR_MS)
            .write(&f.redis)
            .await;
        let obs = Observations::background();
        // The first read answers from a sample at once; the walk follows.
        let first = metrics::stats_with(&f.redis, &f.store, &obs)
            .await
            .expect("stats");
        let m = &first.datasources[0];
        assert!(m.is_warm);
        assert_eq!(m.total_entries, SEED_ENTRIES);
        assert!(
            m.unique_measures > 0 && m.estimated_memory_mb > 0.0,
            "{m:#?}"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let s = metrics::stats_with(&f.redis, &f.store, &obs)
                .await
                .expect("stats");
            let m = &s.datasources[0];
            if m.sources.coverage == Source::Observed {
                assert_eq!(m.index_count, SEED_INDEXES);
                assert_eq!(m.unique_practices, u64::from(SEED_PRACTICES));
                break;
            }
            assert_eq!(
                m.sources.coverage,
                Source::Estimated,
                "from the sample meanwhile"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "the walk never finished"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let h = metrics::check_with(&f.redis, &f.store, &obs)
            .await
            .expect("health");
        assert_ne!(h.overall, metrics::Overall::Critical, "{h:#?}");
    })
    .await;
}

#[tokio::test]
async fn a_walk_past_its_bound_estimates_and_says_so() {
    each_topology(async |r| {
        let f = fixture(r).await;
        SeedCache::standard(1, None, HOUR_MS).write(&f.redis).await;
        let d = f.store.datasource(1).await.expect("datasource");
        let now = f.redis.time_ms().await.expect("time");
        let o = metrics::observe::observe(&f.redis, &d, SEED_ENTRIES, None, now, 50)
            .await
            .expect("observe");
        let c = &o.coverage;
        assert!(!c.complete && c.members_read >= 50, "{c:#?}");
        assert!(
            c.members_read < SEED_ENTRIES,
            "stopped at the bound: {c:#?}"
        );
        assert_eq!(c.source, Source::Estimated);
        assert_eq!(c.measures, 3, "{c:#?}");
        assert!(c.index_count <= 3 * SEED_ENTRIES, "{c:#?}");
        assert_eq!(o.sample.measured, 200);
        assert!(o.memory_bytes() > 0);
    })
    .await;
}

/// What one inline observation costs on a large cache (the figure the README
/// states): `cargo test --test it observe::measure_inline_observation --
/// --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn measure_inline_observation() {
    let r = AnyRedis::standalone();
    let f = fixture(&r).await;
    let n: u64 = 250_000;
    let master = keys::master_index(1, keys::Gen::Live);
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            let key = format!(
                "cache:{{ds:1}}:m:M{}:p:{}:prov:{}:freq:Monthly",
                i % 7,
                i / 7 % 5000,
                i
            );
            p.cmd("SET").arg(&key).arg("[]").ignore();
            p.cmd("SADD").arg(&master).arg(&key).ignore();
        }
        let () = f.redis.pipe("filling", &p).await.expect("fill");
    }
    let d = f.store.datasource(1).await.expect("datasource");
    let now = f.redis.time_ms().await.expect("time");
    let t = std::time::Instant::now();
    let o = metrics::observe::observe(&f.redis, &d, n, None, now, metrics::observe::INLINE_BOUND)
        .await
        .expect("observe");
    eprintln!(
        "inline observation of {n} entries: {:?}, {} members read, complete {}, practices {}",
        t.elapsed(),
        o.coverage.members_read,
        o.coverage.complete,
        o.coverage.practices
    );
}
