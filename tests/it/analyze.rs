//! `cachedeck analyze` and its core against a real standalone server and a
//! real 3-master cluster: planted big keys, namespace totals checked against
//! a direct `MEMORY USAGE` walk, hash tags, binary names, sampling, cancel.

use std::collections::HashMap;
use std::time::Duration;

use cachedeck::redis_admin::analyze::{self, Analysis, AnalyzeOptions, EXACT_UP_TO};
use cachedeck::redis_conn::Redis;
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, CliRunner, SqliteFile, each_topology};

/// Sampled figures must be within this fraction of the exact ones.
const SAMPLE_TOLERANCE: f64 = 0.20;

async fn q<T: redis::FromRedisValue>(redis: &Redis, cmd: &redis::Cmd) -> T {
    redis
        .query("test setup", cmd)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", crate::support::describe(cmd)))
}

/// Runs every command through the routed connection, 64 at a time.
async fn run_all(redis: &Redis, cmds: Vec<redis::Cmd>) {
    futures::stream::iter(cmds)
        .map(|c| async move { redis.query::<redis::Value>("setup", &c).await })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .expect("setup commands");
}

/// SETs small keys with the given names.
async fn set_small(redis: &Redis, keys: &[Vec<u8>]) {
    let cmds = keys
        .iter()
        .map(|k| redis::cmd("SET").arg(k.as_slice()).arg("value").clone())
        .collect();
    run_all(redis, cmds).await;
}

/// Plants one big key of each type; returns (name, type, length).
async fn plant_big(redis: &Redis) -> Vec<(&'static str, &'static str, u64)> {
    q::<()>(
        redis,
        redis::cmd("SET").arg("big:str").arg("x".repeat(200_000)),
    )
    .await;
    let mut list = redis::cmd("RPUSH");
    list.arg("big:list");
    let mut hash = redis::cmd("HSET");
    hash.arg("big:hash");
    let mut set = redis::cmd("SADD");
    set.arg("big:set");
    let mut zset = redis::cmd("ZADD");
    zset.arg("big:zset");
    for i in 0..6000 {
        list.arg(format!("element-{i:06}"));
        if i < 5000 {
            hash.arg(format!("field-{i:06}"))
                .arg(format!("value-{i:06}"));
        }
        if i < 4000 {
            set.arg(format!("member-{i:06}"));
        }
        if i < 3000 {
            zset.arg(i).arg(format!("member-{i:06}"));
        }
    }
    for c in [&list, &hash, &set, &zset] {
        q::<i64>(redis, c).await;
    }
    for i in 0..2000 {
        q::<String>(
            redis,
            redis::cmd("XADD")
                .arg("big:stream")
                .arg("*")
                .arg("f")
                .arg(format!("payload-{i:06}")),
        )
        .await;
    }
    vec![
        ("big:str", "string", 200_000),
        ("big:list", "list", 6000),
        ("big:hash", "hash", 5000),
        ("big:set", "set", 4000),
        ("big:zset", "zset", 3000),
        ("big:stream", "stream", 2000),
    ]
}

/// `MEMORY USAGE` the way the analysis asks it (exact up to EXACT_UP_TO
/// elements, sampled above).
async fn memory_of(redis: &Redis, key: &[u8]) -> u64 {
    let t: String = q(redis, redis::cmd("TYPE").arg(key)).await;
    let len: i64 = match t.as_str() {
        "list" => q(redis, redis::cmd("LLEN").arg(key)).await,
        "hash" => q(redis, redis::cmd("HLEN").arg(key)).await,
        "set" => q(redis, redis::cmd("SCARD").arg(key)).await,
        "zset" => q(redis, redis::cmd("ZCARD").arg(key)).await,
        "stream" => q(redis, redis::cmd("XLEN").arg(key)).await,
        _ => 0,
    };
    let samples = if len > EXACT_UP_TO { 64 } else { 0 };
    q(
        redis,
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(samples),
    )
    .await
}

async fn run(redis: &Redis, opts: AnalyzeOptions) -> Analysis {
    analyze::analyze(redis, &opts, &CancellationToken::new(), |_| {})
        .await
        .expect("analysis")
}

fn full(top: usize) -> AnalyzeOptions {
    AnalyzeOptions {
        top,
        pace: Duration::ZERO,
        ..AnalyzeOptions::default()
    }
}

#[tokio::test]
async fn planted_big_keys_are_the_top_keys_in_order() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let background: Vec<Vec<u8>> = (0..300).map(|i| format!("bg:{i}").into_bytes()).collect();
        set_small(&redis, &background).await;
        let planted = plant_big(&redis).await;

        let a = run(&redis, full(6)).await;
        assert_eq!(a.keys_scanned, 306);
        assert_eq!(a.keys_in_keyspace, 306);
        assert!(!a.sampled);

        // By length: exactly the planted order.
        let by_len: Vec<(&str, &str, u64)> = a
            .top_keys_by_length
            .iter()
            .map(|k| (k.key.display.as_str(), k.key_type.as_str(), k.length))
            .collect();
        assert_eq!(by_len, planted);

        // By memory: the six planted keys, ordered as a direct walk orders them.
        let mut want = Vec::new();
        for (k, _, _) in &planted {
            want.push((memory_of(&redis, k.as_bytes()).await, k.to_string()));
        }
        want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let got: Vec<(u64, String)> = a
            .top_keys
            .iter()
            .map(|k| (k.memory_bytes, k.key.display.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(a.types["stream"].keys, 1);
        assert_eq!(a.types["string"].keys, 301);
    })
    .await;
}

#[tokio::test]
async fn namespace_totals_match_a_direct_walk_and_keep_hash_tags_whole() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        keys.extend((0..50).map(|i| format!("cache:{{ds:1}}:m:{i}").into_bytes()));
        keys.extend((0..40).map(|i| format!("idx:{{ds:2}}:p:{i}").into_bytes()));
        keys.extend((0..30).map(|i| format!("sess:u:{i}").into_bytes()));
        keys.extend((0..10).map(|i| format!("plain{i}").into_bytes()));
        keys.extend((0..5u8).map(|i| vec![b'b', b'i', b'n', b':', 0xff, 0x00, b':', i]));
        set_small(&redis, &keys).await;
        // Some keys expire: within a minute and within a day.
        for i in 0..30 {
            q::<i64>(
                &redis,
                redis::cmd("EXPIRE").arg(format!("sess:u:{i}")).arg(30),
            )
            .await;
        }
        for i in 0..10 {
            q::<i64>(
                &redis,
                redis::cmd("EXPIRE").arg(format!("plain{i}")).arg(7200),
            )
            .await;
        }

        let mut want: HashMap<String, (u64, u64)> = HashMap::new();
        for k in &keys {
            let ns = analyze::namespace_of(k, 2);
            let m = memory_of(&redis, k).await;
            let e = want.entry(ns).or_default();
            e.0 += 1;
            e.1 += m;
        }
        let a = run(&redis, full(5)).await;
        let got: HashMap<String, (u64, u64)> = a
            .namespaces
            .iter()
            .map(|n| (n.prefix.clone(), (n.keys, n.memory_bytes)))
            .collect();
        assert_eq!(got, want);
        // The hash tag stays one segment; binary names are escaped.
        for p in [
            "cache:{ds:1}:*",
            "idx:{ds:2}:*",
            "sess:u:*",
            "(no prefix)",
            "bin:\\xff\\x00:*",
        ] {
            assert!(got.contains_key(p), "{p} missing from {got:?}");
        }
        let sess = a
            .namespaces
            .iter()
            .find(|n| n.prefix == "sess:u:*")
            .unwrap();
        assert_eq!(sess.no_expiry, 0);
        assert!(sess.avg_ttl_ms.is_some_and(|t| t <= 30_000));
        assert_eq!(a.ttl.no_expiry, 95);
        assert_eq!(a.ttl.buckets[0].keys, 30);
        assert_eq!(a.ttl.buckets[2].keys, 10);
        let total: u64 = want.values().map(|v| v.1).sum();
        assert_eq!(a.total_memory_bytes, total);
        // Depth 1 merges the datasources.
        let a1 = run(
            &redis,
            AnalyzeOptions {
                depth: 1,
                ..full(5)
            },
        )
        .await;
        assert!(
            a1.namespaces
                .iter()
                .any(|n| n.prefix == "cache:*" && n.keys == 50)
        );

        // Binary names come back exactly (keyHex).
        let bin = run(
            &redis,
            AnalyzeOptions {
                pattern: b"bin:*".to_vec(),
                ..full(10)
            },
        )
        .await;
        let mut hexes: Vec<String> = bin.top_keys.iter().map(|k| k.key.key_hex.clone()).collect();
        hexes.sort();
        let mut want_hex: Vec<String> = keys[130..].iter().map(hex::encode).collect();
        want_hex.sort();
        assert_eq!(hexes, want_hex);

        // Recommendations name the figures.
        let kinds: Vec<&str> = a.recommendations.iter().map(|r| r.kind.as_str()).collect();
        assert!(kinds.contains(&"no-expiry-in-cache"), "{kinds:?}");
        assert!(kinds.contains(&"short-lived-namespace"), "{kinds:?}");
        let nx = a
            .recommendations
            .iter()
            .find(|r| r.kind == "no-expiry-in-cache")
            .unwrap();
        assert!(nx.message.starts_with("90 "), "{}", nx.message);
    })
    .await;
}

#[tokio::test]
async fn a_sample_is_scaled_to_the_keyspace_within_tolerance() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        keys.extend((0..2000).map(|i| format!("a:x:{i}").into_bytes()));
        keys.extend((0..1000).map(|i| format!("b:x:{i}").into_bytes()));
        set_small(&redis, &keys).await;
        let a = run(
            &redis,
            AnalyzeOptions {
                sample: Some(1500),
                ..full(5)
            },
        )
        .await;
        assert!(a.sampled);
        assert!(
            a.keys_scanned >= 1500 && a.keys_scanned < 3000,
            "{}",
            a.keys_scanned
        );
        assert_eq!(a.keys_in_keyspace, 3000);
        let exact = run(&redis, full(5)).await;
        for prefix in ["a:x:*", "b:x:*"] {
            let est = a.namespaces.iter().find(|n| n.prefix == prefix).unwrap();
            let real = exact
                .namespaces
                .iter()
                .find(|n| n.prefix == prefix)
                .unwrap();
            for (e, w) in [(est.keys, real.keys), (est.memory_bytes, real.memory_bytes)] {
                let err = (e as f64 - w as f64).abs() / w as f64;
                assert!(err <= SAMPLE_TOLERANCE, "{prefix}: {e} vs {w}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn cancel_mid_scan_returns_what_was_scanned() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let keys: Vec<Vec<u8>> = (0..5000).map(|i| format!("c:{i}").into_bytes()).collect();
        set_small(&redis, &keys).await;
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let a = analyze::analyze(&redis, &full(3), &cancel, |p| {
            calls += 1;
            assert_eq!(p.keyspace, 5000);
            cancel.cancel();
        })
        .await
        .expect("analysis");
        assert_eq!(calls, 1);
        assert!(a.cancelled);
        assert!(
            a.keys_scanned > 0 && a.keys_scanned < 5000,
            "{}",
            a.keys_scanned
        );
        let counted: u64 = a.namespaces.iter().map(|n| n.keys).sum();
        assert_eq!(counted, a.keys_scanned);
    })
    .await;
}

#[tokio::test]
async fn cli_prints_json_and_tables() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        plant_big(&redis).await;
        set_small(&redis, &[b"cache:{ds:1}:m:a".to_vec()]).await;
        let db = SqliteFile::create();
        let cli = CliRunner::new().redis(r.url_arg()).database(db.url());
        let out = cli
            .run_async(&["analyze", "--full", "--top", "3", "--json"])
            .await
            .success();
        let j = out.json();
        assert_eq!(j["keysScanned"], 7);
        assert_eq!(j["sampled"], false);
        assert_eq!(j["topKeysByLength"][0]["key"], "big:str");
        assert_eq!(j["topKeysByLength"][0]["keyHex"], hex::encode("big:str"));
        assert_eq!(j["topKeys"].as_array().unwrap().len(), 3);
        for f in [
            "namespaces",
            "types",
            "ttl",
            "recommendations",
            "startedAt",
            "durationMs",
        ] {
            assert!(!j[f].is_null(), "{f} missing");
        }
        let out = cli
            .run_async(&["analyze", "--pattern", "big:*", "--type", "hash"])
            .await
            .success();
        assert!(out.stdout.contains("Top keys by memory"), "{out}");
        assert!(out.stdout.contains("big:hash"), "{out}");
        assert!(!out.stdout.contains("big:list"), "{out}");
        cli.run_async(&["analyze", "--sample", "5", "--full"])
            .await
            .code(2);
    })
    .await;
}
