//! Passive observation of reads (issue 15 §3): a cache in the seed
//! application's format whose reads nobody reports. Some entries are made
//! "not read for a day" (RESTORE … IDLETIME, or FREQ 0 under LFU), others
//! are read with GET; `stats` then tells the shares, the cold memory and the
//! hottest and coldest measures, labelled as sampled, without changing any
//! entry's access time; and a card says the reads are not reported.
//! Standalone and 3-master cluster.

use std::time::Duration;

use cachedeck::cache::warm::WarmOptions;
use cachedeck::metrics::{self, READS_NOT_REPORTED, UsageClock};
use serde_json::Value;

use crate::support::{AnyRedis, CliRunner, SEED_ENTRIES, SeedCache, WarmFixture, each_topology};

const HOUR_MS: i64 = 3_600_000;
/// The datasources' TTL: 48 h.
const TTL_SECS: i64 = 48 * 3600;
/// "Written" (and, unless read since, last touched) 26 h ago.
const AGED_SECS: i64 = 26 * 3600;

async fn fixture(r: &AnyRedis) -> WarmFixture {
    let f = WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await;
    f.add_ds(1, "Revenue", "SELECT 1", TTL_SECS, true).await;
    f.add_ds(2, "Fresh", "SELECT 1", TTL_SECS, true).await;
    f
}

fn members(r: &AnyRedis, ds: i64) -> Vec<String> {
    let mut m: Vec<String> = r.query(redis::cmd("SMEMBERS").arg(format!("idx:{{ds:{ds}}}:master")));
    m.sort();
    m
}

fn of_measure<'a>(keys: &'a [String], measure: &str) -> Vec<&'a String> {
    let tag = format!(":m:{measure}:");
    keys.iter().filter(|k| k.contains(&tag)).collect()
}

/// Rewrites `key` with its value and TTL, setting its idle time (LRU) or
/// LFU counter as Redis lets RESTORE do.
fn restore(r: &AnyRedis, key: &str, how: &[&str]) {
    let payload: Vec<u8> = r.query(redis::cmd("DUMP").arg(key));
    let pttl: i64 = r.query(redis::cmd("PTTL").arg(key));
    let mut c = redis::cmd("RESTORE");
    c.arg(key).arg(pttl.max(0)).arg(payload).arg("REPLACE");
    for w in how {
        c.arg(*w);
    }
    let () = r.query(&c);
}

fn idle(r: &AnyRedis, key: &str) -> i64 {
    r.query(redis::cmd("OBJECT").arg("IDLETIME").arg(key))
}

fn ds(stats: &Value, id: i64) -> &Value {
    stats["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .find(|d| d["datasourceId"] == id)
        .unwrap_or_else(|| panic!("DS #{id} in {stats:#}"))
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 0.2)
}

/// DS #1 written 26 h ago: Charges read now, Payments read 2 h ago,
/// Adjustments untouched since (cold). DS #2 written now and not read.
async fn write_caches(r: &AnyRedis, f: &WarmFixture, lfu: bool) -> Vec<String> {
    let remaining = TTL_SECS * 1000 - AGED_SECS * 1000;
    SeedCache::standard(1, None, remaining)
        .write(&f.redis)
        .await;
    SeedCache::standard(2, None, TTL_SECS * 1000)
        .write(&f.redis)
        .await;
    let keys = members(r, 1);
    assert_eq!(keys.len() as u64, SEED_ENTRIES);
    let aged = AGED_SECS.to_string();
    let cold: [&str; 2] = if lfu {
        ["FREQ", "0"]
    } else {
        ["IDLETIME", &aged]
    };
    for k in of_measure(&keys, "Adjustments") {
        restore(r, k, &cold);
    }
    for k in of_measure(&keys, "Payments") {
        restore(
            r,
            k,
            if lfu {
                &["FREQ", "5"]
            } else {
                &["IDLETIME", "7200"]
            },
        );
    }
    for k in of_measure(&keys, "Charges") {
        if !lfu {
            restore(r, k, &["IDLETIME", aged.as_str()]);
        }
        for _ in 0..3 {
            let _: Option<String> = r.query(redis::cmd("GET").arg(k));
        }
    }
    keys
}

#[tokio::test]
async fn sampled_idle_times_tell_the_reads_cold_memory_and_hottest_measures() {
    each_topology(async |r| {
        let f = fixture(r).await;
        let keys = write_caches(r, &f, false).await;
        let cold_key = of_measure(&keys, "Adjustments")[0].clone();
        let warm_key = of_measure(&keys, "Payments")[0].clone();
        let before = (idle(r, &cold_key), idle(r, &warm_key));
        assert!(before.0 >= AGED_SECS && before.1 >= 7200, "{before:?}");

        let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
        let stats = cli.run(&["stats", "--json"]).success().json();
        let u = &ds(&stats, 1)["readUsage"];
        assert_eq!(u["sampled"], true, "{u:#}");
        assert_eq!(u["sampleSize"], SEED_ENTRIES);
        assert_eq!(u["totalEntries"], SEED_ENTRIES);
        assert_eq!(u["clock"], "idleTime");
        assert_eq!(u["policy"], "noeviction");
        assert!(close(&u["readLastHour"], 33.3), "{u:#}");
        assert!(close(&u["readLastDay"], 66.7), "{u:#}");
        assert!(close(&u["coldShare"], 33.3), "{u:#}");
        assert_eq!(u["readActivity"], true);
        let (all, cold) = (
            u["entriesBytes"].as_f64().unwrap(),
            u["coldBytes"].as_f64().unwrap(),
        );
        assert!(all > 0.0 && (0.28..0.40).contains(&(cold / all)), "{u:#}");
        assert_eq!(u["hottest"]["measures"][0]["value"], "Charges", "{u:#}");
        assert_eq!(u["coldest"]["measures"][0]["value"], "Adjustments");
        assert_eq!(u["coldMeasures"][0]["value"], "Adjustments");
        assert_eq!(u["coldMeasures"].as_array().unwrap().len(), 1, "{u:#}");
        assert!(!u["hottest"]["practices"].as_array().unwrap().is_empty());
        assert!(!u["coldest"]["frequencies"].as_array().unwrap().is_empty());

        // Written now and not read since: no reads, nothing cold.
        let fresh = &ds(&stats, 2)["readUsage"];
        assert_eq!(fresh["readActivity"], false, "{fresh:#}");
        assert!(close(&fresh["readLastHour"], 0.0), "{fresh:#}");
        assert!(close(&fresh["coldShare"], 0.0));

        // The human form says it, with the sample size and the cold measure.
        let text = cli.run(&["stats"]).success().stdout;
        assert!(text.contains("reads (sampled, 240 entries)"), "{text}");
        assert!(text.contains("33 % of this datasource's"), "{text}");
        assert!(
            text.contains("mostly these measures: Adjustments"),
            "{text}"
        );
        assert!(text.contains(READS_NOT_REPORTED), "{text}");

        // Reports carry it too, labelled as sampled, without practices.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
        cli.run(&["report", "--format", "json", "-o", &path("r.json")])
            .success();
        let rep: Value =
            serde_json::from_slice(&std::fs::read(path("r.json")).expect("report")).expect("json");
        let ru = &ds(&rep, 1)["readUsage"];
        assert_eq!(ru["sampled"], true, "{ru:#}");
        assert_eq!(ru["sampleSize"], SEED_ENTRIES);
        assert!(close(&ru["coldShare"], 33.3), "{ru:#}");
        assert!(ru["coldMemoryMB"].as_f64().unwrap() > 0.0);
        assert_eq!(ru["coldestMeasures"][0], "Adjustments");
        assert!(ru.get("hottestPractices").is_none());
        cli.run(&["report", "--format", "html", "-o", &path("r.html")])
            .success();
        let html = std::fs::read_to_string(path("r.html")).expect("html");
        assert!(
            html.contains("sampled: 240 of 240 entries"),
            "no Reads section"
        );
        assert!(html.contains("Not read for a day"));

        // Sampling did not touch the entries' access times.
        let after = (idle(r, &cold_key), idle(r, &warm_key));
        assert!(
            after.0 >= before.0 && after.1 >= before.1,
            "{before:?} → {after:?}"
        );

        // The metrics a card gets: reads seen, none recorded.
        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        let one = s.datasources.iter().find(|m| m.datasource_id == 1).unwrap();
        assert!(one.reads_unreported(), "{one:#?}");
        assert_eq!(one.health_score.hit_rate_score, None);
        let two = s.datasources.iter().find(|m| m.datasource_id == 2).unwrap();
        assert!(!two.reads_unreported());
        #[cfg(feature = "gui")]
        card_says_reads_are_not_reported(s);
    })
    .await;
}

/// The dashboard card of a datasource with reads but no counters.
#[cfg(feature = "gui")]
fn card_says_reads_are_not_reported(s: metrics::StatsReport) {
    use crate::gui::{Window, connected};
    use cachedeck::backend::Event;
    use egui_kittest::kittest::Queryable;
    let mut w = Window::new();
    w.feed(connected(false));
    w.feed([Event::Stats(s)]);
    w.harness
        .get_by_label(&format!("Hit rate: {READS_NOT_REPORTED}"));
    w.harness.get_by_label("Hit rate: no queries yet");
}

#[tokio::test]
async fn under_an_lfu_policy_access_counters_are_read() {
    each_topology(async |r| {
        let f = fixture(r).await;
        let set = |n: &crate::support::RedisServer| {
            let () = n.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
        };
        match r {
            AnyRedis::Standalone(s) => set(s),
            AnyRedis::Cluster(c) => c.nodes().iter().for_each(set),
        }
        let keys = write_caches(r, &f, true).await;
        let cold_key = of_measure(&keys, "Adjustments")[0].clone();
        let freq = |k: &str| -> i64 { r.query(redis::cmd("OBJECT").arg("FREQ").arg(k)) };
        let hot_key = of_measure(&keys, "Charges")[0].clone();
        let before = (freq(&cold_key), freq(&hot_key));

        let s = metrics::stats(&f.redis, &f.store).await.expect("stats");
        let one = s.datasources.iter().find(|m| m.datasource_id == 1).unwrap();
        let u = one.read_usage.as_ref().expect("sampled");
        assert_eq!(u.clock, UsageClock::LfuFrequency);
        assert_eq!(u.policy.as_deref(), Some("allkeys-lfu"));
        assert_eq!(u.read_last_hour, None, "not told by LFU counters");
        assert!((u.cold_share - 33.3).abs() < 0.2, "{u:#?}");
        assert!(u.cold_bytes > 0);
        assert_eq!(u.hottest.measures[0].value, "Charges");
        assert_eq!(u.coldest.measures[0].value, "Adjustments");
        assert!(u.read_activity);
        assert!(one.reads_unreported());
        assert!(u.cold_sentence().contains("LFU counter of 0"), "{u:#?}");
        // Reading the counters did not raise them.
        assert_eq!(before, (freq(&cold_key), freq(&hot_key)));
        let _ = HOUR_MS;
    })
    .await;
}
