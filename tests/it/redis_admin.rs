//! The Redis tools (browser, inspector, purge, TTL, statistics) against a real
//! standalone server and a real 3-master cluster, plus the CLI faces.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cachedeck::actor::{Actor, Origin};
use cachedeck::keys::{self, Gen, GroupKey};
use cachedeck::redis_admin::{
    self, KeyInfo, PageRequest, ScanCursor, ScanQuery, TtlChange, ValuePage,
};
use cachedeck::redis_conn::{Redis, Topology};
use futures::{StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, CliRunner, SqliteFile, each_topology};

fn actor() -> Actor {
    Actor::new("tester", "test", Origin::Cli)
}

/// Runs one command through cachedeck's routed connection; panics on error.
async fn q<T: redis::FromRedisValue>(redis: &Redis, cmd: &redis::Cmd) -> T {
    redis
        .query("test setup", cmd)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", crate::support::describe(cmd)))
}

/// SETs every key (value `v`), 64 at a time through the routed connection.
async fn set_all(redis: &Redis, keys: &[Vec<u8>]) {
    futures::stream::iter(keys.iter().cloned())
        .map(|k| async move {
            redis
                .query::<()>("SET", redis::cmd("SET").arg(k).arg("v"))
                .await
        })
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await
        .expect("SET test keys");
}

/// `n` keys under `prefix`, a sixth each of: plain, with `*`, with spaces,
/// with `\xff\x00`, not UTF-8, with `?[]` and a hash tag, with a newline.
fn hostile_keys(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut k = prefix.as_bytes().to_vec();
            match i % 7 {
                0 => k.extend(format!("plain:{i}").bytes()),
                1 => k.extend(format!("star*{i}*").bytes()),
                2 => k.extend(format!("space {i} x").bytes()),
                3 => {
                    k.extend(b"bin:\xff\x00");
                    k.extend(i.to_string().bytes());
                }
                4 => {
                    k.extend(b"\xc3\x28:");
                    k.extend(i.to_string().bytes());
                }
                5 => k.extend(format!("{{tag{}}}:q?[x]{i}", i % 5).bytes()),
                _ => k.extend(format!("nl\n{i}").bytes()),
            }
            k
        })
        .collect()
}

/// Asserts `got` holds each key of `want` exactly once, and nothing else.
#[track_caller]
fn assert_exactly_once(got: &[KeyInfo], want: &[Vec<u8>]) {
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for k in got {
        *counts.entry(k.key.as_slice()).or_default() += 1;
        assert_eq!(k.key_hex, hex::encode(&k.key));
        assert_eq!(k.display, keys::display_bytes(&k.key));
    }
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "keys returned twice: {dupes:?}");
    let want_set: HashSet<&[u8]> = want.iter().map(Vec::as_slice).collect();
    let got_set: HashSet<&[u8]> = counts.keys().copied().collect();
    let missing = want_set.difference(&got_set).count();
    let extra = got_set.difference(&want_set).count();
    assert_eq!((missing, extra), (0, 0), "missing / unexpected keys");
}

#[tokio::test]
async fn browsing_returns_every_key_exactly_once_across_pages_and_nodes() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let keys = hostile_keys("browse:", 5000);
        set_all(&redis, &keys).await;
        for i in 0..50 {
            let _: () = q(
                &redis,
                redis::cmd("HSET")
                    .arg(format!("browse:h{i}"))
                    .arg("f")
                    .arg("v"),
            )
            .await;
        }
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 5050);

        // Small pages: many SCAN calls per node.
        let mut query = ScanQuery::new("*");
        query.count_hint = 100;
        let mut cursor = ScanCursor::new(&redis, query).await.unwrap();
        let mut got = Vec::new();
        let mut nodes_seen = HashSet::new();
        let mut pages = 0;
        while !cursor.is_done() {
            let page = cursor.next_page().await.unwrap();
            pages += 1;
            assert!(page.keys.len() <= 1000, "one SCAN call, not a huge reply");
            if !page.keys.is_empty() {
                nodes_seen.insert(page.node.clone());
            }
            assert_eq!(
                page.node_count,
                if r.topology() == Topology::Cluster {
                    3
                } else {
                    1
                }
            );
            assert!(page.dedupe_complete);
            got.extend(page.keys);
            assert_eq!(cursor.scanned(), got.len() as u64);
        }
        assert!(pages > 20, "expected many pages, got {pages}");
        assert_eq!(
            nodes_seen.len(),
            if r.topology() == Topology::Cluster {
                3
            } else {
                1
            }
        );
        let mut all = keys.clone();
        all.extend((0..50).map(|i| format!("browse:h{i}").into_bytes()));
        assert_exactly_once(&got, &all);

        // A glob with a type filter.
        let query = ScanQuery {
            pattern: b"browse:h*".to_vec(),
            type_filter: Some("hash".into()),
            count_hint: 0,
        };
        let mut cursor = ScanCursor::new(&redis, query).await.unwrap();
        let mut hashes = Vec::new();
        while !cursor.is_done() {
            hashes.extend(cursor.next_page().await.unwrap().keys);
        }
        let want: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("browse:h{i}").into_bytes())
            .collect();
        assert_exactly_once(&hashes, &want);

        // load_all with a cap and pacing: exactly `cap` keys, then the same
        // cursor continues without losing or repeating any.
        let mut cursor = ScanCursor::new(&redis, ScanQuery::new("browse:*"))
            .await
            .unwrap();
        let pages: Vec<_> = cursor
            .load_all(1234, Duration::from_millis(1))
            .try_collect()
            .await
            .unwrap();
        let mut first: Vec<KeyInfo> = pages.iter().flat_map(|p| p.keys.clone()).collect();
        assert_eq!(first.len(), 1234);
        assert!(!pages.last().unwrap().done);
        while !cursor.is_done() {
            first.extend(cursor.next_page().await.unwrap().keys);
        }
        assert_exactly_once(&first, &all);
    })
    .await;
}

#[tokio::test]
async fn binary_key_names_round_trip_browse_inspect_purge() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let odd: Vec<u8> = b"bin:\xff\x00*? [x]\\\xc3\x28 end".to_vec();
        let sibling: Vec<u8> = b"bin:\xff\x00*? [x]\\\xc3\x28 endless".to_vec();
        let _: () = q(&redis, redis::cmd("SET").arg(&odd).arg(b"\x00\x01\xfe")).await;
        let _: () = q(&redis, redis::cmd("SET").arg(&sibling).arg("x")).await;
        let _: () = q(&redis, redis::cmd("SET").arg("bin:plain").arg("x")).await;

        // Browse.
        let mut cursor = ScanCursor::new(&redis, ScanQuery::new("bin:*"))
            .await
            .unwrap();
        let mut found = Vec::new();
        while !cursor.is_done() {
            found.extend(cursor.next_page().await.unwrap().keys);
        }
        assert_eq!(found.len(), 3);
        let k = found
            .iter()
            .find(|k| k.key == odd)
            .expect("binary key browsed");
        // JSON carries the exact bytes in keyHex.
        let json = serde_json::to_value(k).unwrap();
        assert_eq!(hex::decode(json["keyHex"].as_str().unwrap()).unwrap(), odd);

        // Inspect by the bytes the browser returned.
        let i = redis_admin::inspect(&redis, &k.key, &PageRequest::default())
            .await
            .unwrap();
        assert!(i.exists);
        assert_eq!(i.key_type, "string");
        assert_eq!(i.length, Some(3));
        match i.value {
            Some(ValuePage::String {
                value, truncated, ..
            }) => {
                assert_eq!(value.hex.as_deref(), Some("0001fe"));
                assert!(!truncated);
            }
            other => panic!("unexpected value {other:?}"),
        }

        // Purge exactly that key through an escaped pattern; its sibling that
        // shares the prefix and the plain key stay.
        let pattern = redis_admin::glob_escape(&k.key);
        let preview = redis_admin::dry_run(&redis, &pattern, 10).await.unwrap();
        assert_eq!(preview.count, 1);
        assert_eq!(preview.sample[0].key, odd);
        let out = redis_admin::purge(
            &redis,
            &actor(),
            &pattern,
            false,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!((out.matched, out.deleted), (1, 1));
        let left: i64 = q(&redis, redis::cmd("EXISTS").arg(&odd)).await;
        assert_eq!(left, 0);
        let sib: i64 = q(&redis, redis::cmd("EXISTS").arg(&sibling)).await;
        assert_eq!(sib, 1);

        // Delete a browser selection by bytes.
        let n =
            redis_admin::unlink_keys(&redis, &actor(), &[sibling.clone(), b"bin:plain".to_vec()])
                .await
                .unwrap();
        assert_eq!(n, 2);
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn purge_deletes_what_the_dry_run_counted_and_nothing_else() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let doomed = hostile_keys("purge:me:", 2100);
        let kept = hostile_keys("purge:keep:", 700);
        set_all(&redis, &doomed).await;
        set_all(&redis, &kept).await;

        let preview = redis_admin::dry_run(&redis, b"purge:me:*", 15)
            .await
            .unwrap();
        assert_eq!(preview.count, 2100);
        assert_eq!(preview.sample.len(), 15);
        assert_eq!(preview.keyspace_size, 2800);
        assert!(!preview.matches_everything);
        assert!(
            preview
                .sample
                .iter()
                .all(|k| k.key.starts_with(b"purge:me:"))
        );

        let mut reports = 0;
        let out = redis_admin::purge(
            &redis,
            &actor(),
            b"purge:me:*",
            false,
            &CancellationToken::new(),
            |p| {
                reports += 1;
                assert!(p.deleted <= p.matched);
            },
        )
        .await
        .unwrap();
        assert!(reports > 1, "progress after every batch");
        assert_eq!(out.deleted, preview.count);
        assert_eq!(out.matched, preview.count);
        assert!(!out.cancelled);
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 700);
        let rest = redis_admin::dry_run(&redis, b"purge:keep:*", 0)
            .await
            .unwrap();
        assert_eq!(rest.count, 700);

        // A FLUSHALL-like pattern is refused without confirmation.
        let err = redis_admin::purge(
            &redis,
            &actor(),
            b"*",
            false,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 700);

        // A cancelled purge stops before the next batch.
        let cancel = CancellationToken::new();
        cancel.cancel();
        let out = redis_admin::purge(&redis, &actor(), b"purge:*", false, &cancel, |_| {})
            .await
            .unwrap();
        assert!(out.cancelled);
        assert_eq!(out.deleted, 0);

        // A read-only actor may not purge.
        let mut ro = actor();
        ro.can_write = false;
        let err = redis_admin::purge(
            &redis,
            &ro,
            b"purge:*",
            false,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), 4, "{err}");

        // The invalidation epoch is never deleted, even when confirmed.
        let _: () = q(&redis, redis::cmd("SET").arg(keys::epoch(4)).arg(7)).await;
        let _: () = q(&redis, redis::cmd("SET").arg(keys::last_warm(4)).arg("x")).await;
        let preview = redis_admin::dry_run(&redis, b"cache:meta:*", 10)
            .await
            .unwrap();
        assert_eq!((preview.count, preview.protected), (1, 1));
        let out = redis_admin::purge(
            &redis,
            &actor(),
            b"*",
            true,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!((out.deleted, out.protected_skipped), (701, 1));
        let epoch: i64 = q(&redis, redis::cmd("GET").arg(keys::epoch(4))).await;
        assert_eq!(epoch, 7);
    })
    .await;
}

#[tokio::test]
async fn ttl_by_pattern_changes_exactly_the_matching_keys() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let a = hostile_keys("ttl:a:", 1000);
        let b = hostile_keys("ttl:b:", 300);
        set_all(&redis, &a).await;
        set_all(&redis, &b).await;

        let pttl = async |k: &[u8]| -> i64 { q(&redis, redis::cmd("PTTL").arg(k)).await };
        let out = redis_admin::set_pattern_ttl(
            &redis,
            &actor(),
            b"ttl:a:*",
            TtlChange::Expire(Duration::from_secs(1000)),
            false,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!((out.matched, out.changed), (1000, 1000));
        for k in &a {
            let t = pttl(k).await;
            assert!(t > 900_000 && t <= 1_000_000, "{t}");
        }
        for k in &b {
            assert_eq!(pttl(k).await, -1);
        }

        let out = redis_admin::set_pattern_ttl(
            &redis,
            &actor(),
            b"ttl:a:*",
            TtlChange::Persist,
            false,
            &CancellationToken::new(),
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(out.changed, 1000);
        for k in &a {
            assert_eq!(pttl(k).await, -1);
        }

        // One key by its bytes.
        let odd = &a[3];
        let one = redis_admin::set_key_ttl(
            &redis,
            &actor(),
            odd,
            TtlChange::Expire(Duration::from_secs(50)),
        )
        .await
        .unwrap();
        assert!(one.existed && one.changed);
        assert!(one.ttl_ms.unwrap() > 40_000);
        let missing = redis_admin::set_key_ttl(&redis, &actor(), b"ttl:none", TtlChange::Persist)
            .await
            .unwrap();
        assert!(!missing.existed);
        assert!(TtlChange::parse("0").is_err());

        // Match-all needs confirmation; epochs never get an expiry.
        assert!(
            redis_admin::set_pattern_ttl(
                &redis,
                &actor(),
                b"*",
                TtlChange::Persist,
                false,
                &CancellationToken::new(),
                |_| {}
            )
            .await
            .is_err()
        );
        let _: () = q(&redis, redis::cmd("SET").arg(keys::epoch(2)).arg(1)).await;
        assert!(
            redis_admin::set_key_ttl(
                &redis,
                &actor(),
                keys::epoch(2).as_bytes(),
                TtlChange::Expire(Duration::from_secs(9))
            )
            .await
            .is_err()
        );
    })
    .await;
}

#[tokio::test]
async fn inspect_pages_a_huge_set_without_loading_it() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let key = b"big:set".to_vec();
        for chunk in 0..100 {
            let mut c = redis::cmd("SADD");
            c.arg(&key);
            for i in 0..1000 {
                c.arg(format!("member-{}", chunk * 1000 + i));
            }
            let _: i64 = q(&redis, &c).await;
        }
        let mut page = PageRequest {
            cursor: None,
            count: 500,
        };
        let mut members = HashSet::new();
        let mut pages = 0;
        loop {
            let i = redis_admin::inspect(&redis, &key, &page).await.unwrap();
            assert_eq!(i.length, Some(100_000));
            assert_eq!(i.key_type, "set");
            assert_eq!(i.encoding.as_deref(), Some("hashtable"));
            assert!(i.memory_bytes.unwrap() > 1_000_000);
            let Some(ValuePage::Set { members: got }) = i.value else {
                panic!("not a set page");
            };
            assert!(got.len() <= 5_000, "a page of {} members", got.len());
            members.extend(got.into_iter().map(|b| b.text));
            pages += 1;
            match i.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(members.len(), 100_000);
        assert!(pages >= 20, "{pages} pages");
    })
    .await;
}

#[tokio::test]
async fn inspect_shows_every_type_paged_and_decodes_cachedeck_keys() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let page = PageRequest {
            cursor: None,
            count: 10,
        };

        // A 600 KiB string is read 256 KiB at a time.
        let big = "é".repeat(300 * 1024);
        let _: () = q(&redis, redis::cmd("SET").arg("t:str").arg(&big)).await;
        let i = redis_admin::inspect(&redis, b"t:str", &page).await.unwrap();
        assert_eq!(i.length, Some(big.len() as u64));
        let Some(ValuePage::String {
            value, truncated, ..
        }) = &i.value
        else {
            panic!()
        };
        assert!(*truncated);
        assert!(value.hex.is_none(), "cut on a character boundary");
        let mut text = value.text.clone();
        let mut next = i.next_cursor.clone();
        while let Some(c) = next {
            let i = redis_admin::inspect(
                &redis,
                b"t:str",
                &PageRequest {
                    cursor: Some(c),
                    count: 10,
                },
            )
            .await
            .unwrap();
            let Some(ValuePage::String { value, .. }) = &i.value else {
                panic!()
            };
            text.push_str(&value.text);
            next = i.next_cursor.clone();
        }
        assert_eq!(text, big);

        // A cache entry is decoded and its JSON pretty-printed.
        let g = GroupKey {
            measure: "Charges".into(),
            practice: "114".into(),
            provider: None,
            frequency: "Monthly".into(),
        };
        let entry = keys::entry(9, Gen::Live, &g);
        let _: () = q(
            &redis,
            redis::cmd("SET")
                .arg(&entry)
                .arg(r#"[{"a":1},{"a":2}]"#)
                .arg("EX")
                .arg(100),
        )
        .await;
        let i = redis_admin::inspect(&redis, entry.as_bytes(), &page)
            .await
            .unwrap();
        let p = i.parsed.as_ref().unwrap();
        assert_eq!((p.kind.as_str(), p.datasource), ("entry", 9));
        assert_eq!(p.measure.as_deref(), Some("Charges"));
        assert!(p.provider_is_null);
        assert!(i.ttl_ms.unwrap() > 90_000);
        let Some(ValuePage::String {
            pretty_json,
            json_rows,
            ..
        }) = &i.value
        else {
            panic!()
        };
        assert_eq!(*json_rows, Some(2));
        assert!(pretty_json.as_ref().unwrap().contains("\n"));
        let json = serde_json::to_value(&i).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(json["parsed"]["providerIsNull"], true);
        assert!(json["ttlMs"].is_i64());

        // An index key shows its member count.
        let master = keys::master_index(9, Gen::Live);
        let _: i64 = q(&redis, redis::cmd("SADD").arg(&master).arg(&entry).arg("x")).await;
        let i = redis_admin::inspect(&redis, master.as_bytes(), &page)
            .await
            .unwrap();
        assert_eq!(i.parsed.unwrap().member_count, Some(2));

        // Hash, list, zset and stream pages.
        let mut c = redis::cmd("HSET");
        c.arg("{t}:hash");
        // More fields than hash-max-listpack-entries (512): a real hash table.
        for n in 0..1000 {
            c.arg(format!("f{n}")).arg(n);
        }
        let _: i64 = q(&redis, &c).await;
        let i = redis_admin::inspect(&redis, b"{t}:hash", &page)
            .await
            .unwrap();
        assert_eq!(i.length, Some(1000));
        assert_eq!(i.encoding.as_deref(), Some("hashtable"));
        let Some(ValuePage::Hash { fields }) = &i.value else {
            panic!()
        };
        assert!(
            !fields.is_empty() && fields.len() < 1000,
            "{}",
            fields.len()
        );
        assert!(i.next_cursor.is_some());

        let mut c = redis::cmd("RPUSH");
        c.arg("{t}:list");
        for n in 0..25 {
            c.arg(n);
        }
        let _: i64 = q(&redis, &c).await;
        let i = redis_admin::inspect(
            &redis,
            b"{t}:list",
            &PageRequest {
                cursor: Some("20".into()),
                count: 10,
            },
        )
        .await
        .unwrap();
        let Some(ValuePage::List { offset, items }) = &i.value else {
            panic!()
        };
        assert_eq!(*offset, 20);
        assert_eq!(
            items.iter().map(|b| b.text.as_str()).collect::<Vec<_>>(),
            ["20", "21", "22", "23", "24"]
        );
        assert_eq!(i.next_cursor, None);

        let _: i64 = q(
            &redis,
            redis::cmd("ZADD")
                .arg("{t}:z")
                .arg(1.5)
                .arg("a")
                .arg("+inf")
                .arg("b"),
        )
        .await;
        let i = redis_admin::inspect(&redis, b"{t}:z", &page).await.unwrap();
        let Some(ValuePage::Zset { members, .. }) = &i.value else {
            panic!()
        };
        assert_eq!(members[0].score, "1.5");
        assert_eq!(members[1].score, "inf");

        for n in 0..15 {
            let _: String = q(
                &redis,
                redis::cmd("XADD").arg("{t}:s").arg("*").arg("n").arg(n),
            )
            .await;
        }
        let mut all = Vec::new();
        let mut req = PageRequest {
            cursor: None,
            count: 4,
        };
        loop {
            let i = redis_admin::inspect(&redis, b"{t}:s", &req).await.unwrap();
            assert_eq!(i.length, Some(15));
            let Some(ValuePage::Stream { entries }) = &i.value else {
                panic!()
            };
            all.extend(entries.iter().map(|e| e.fields[0].value.text.clone()));
            match i.next_cursor {
                Some(c) => req.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(all, (0..15).map(|n| n.to_string()).collect::<Vec<_>>());

        let i = redis_admin::inspect(&redis, b"t:missing", &page)
            .await
            .unwrap();
        assert!(!i.exists);
        assert_eq!(i.key_type, "none");
    })
    .await;
}

#[tokio::test]
async fn info_totals_are_the_sums_of_the_node_figures() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let mut keys = Vec::new();
        for i in 0..2000 {
            keys.push(format!("dist:a:{i}").into_bytes());
        }
        for i in 0..600 {
            keys.push(format!("dist:b:{{x{}}}:{i}", i % 9).into_bytes());
        }
        for i in 0..150 {
            keys.push(format!("loose{i}").into_bytes());
        }
        set_all(&redis, &keys).await;
        for i in 0..40 {
            let _: Option<String> = q(&redis, redis::cmd("GET").arg(format!("dist:a:{i}"))).await;
            let _: Option<String> = q(&redis, redis::cmd("GET").arg(format!("nope:{i}"))).await;
        }

        let info = redis_admin::info(&redis, 10_000).await.unwrap();
        let nodes = if r.topology() == Topology::Cluster {
            3
        } else {
            1
        };
        assert_eq!(info.nodes.len(), nodes);
        let t = &info.total;
        let sum = |f: fn(&redis_admin::ServerStats) -> u64| {
            info.nodes.iter().map(|n| f(&n.stats)).sum::<u64>()
        };
        assert_eq!(t.keys, 2750);
        assert_eq!(t.keys, sum(|s| s.keys));
        assert_eq!(t.keyspace_hits, sum(|s| s.keyspace_hits));
        assert_eq!(t.keyspace_misses, sum(|s| s.keyspace_misses));
        assert!(t.keyspace_hits >= 40 && t.keyspace_misses >= 40);
        assert_eq!(t.used_memory_bytes, sum(|s| s.used_memory_bytes));
        assert_eq!(t.peak_memory_bytes, sum(|s| s.peak_memory_bytes));
        assert_eq!(t.connected_clients, sum(|s| s.connected_clients));
        assert_eq!(t.ops_per_sec, sum(|s| s.ops_per_sec));
        assert_eq!(t.evicted_keys, sum(|s| s.evicted_keys));
        assert_eq!(t.expired_keys, sum(|s| s.expired_keys));
        let hr = t.keyspace_hits as f64 / (t.keyspace_hits + t.keyspace_misses) as f64 * 100.0;
        assert!((t.hit_rate.unwrap() - hr).abs() < 0.01);
        assert_eq!(t.maxmemory_policy.as_deref(), Some("noeviction"));
        assert_eq!(t.keys_per_db[0].keys, 2750);
        if nodes == 3 {
            assert!(
                info.nodes
                    .iter()
                    .all(|n| n.stats.keys > 0 && n.stats.keys < 2750)
            );
        }

        // The sample covers every key here, so the counts are exact.
        let d = &info.key_distribution;
        assert_eq!((d.sample_size, d.keyspace_size), (2750, 2750));
        assert!(d.complete);
        let by: HashMap<&str, u64> = d
            .patterns
            .iter()
            .map(|p| (p.pattern.as_str(), p.estimated_keys))
            .collect();
        assert_eq!(by["dist:a:*"], 2000);
        assert_eq!(by["dist:b:*"], 600);
        assert_eq!(by["(no prefix)"], 150);

        // A small sample is bounded and says so.
        let info = redis_admin::info(&redis, 300).await.unwrap();
        let d = &info.key_distribution;
        assert!(
            d.sample_size <= 300 && d.sample_size >= 290,
            "{}",
            d.sample_size
        );
        assert!(!d.complete);
        let est: u64 = d.patterns.iter().map(|p| p.estimated_keys).sum();
        assert!((2700..=2800).contains(&est), "{est}");
        let json = serde_json::to_value(&info).unwrap();
        assert!(json["total"]["usedMemoryMB"].is_number());
        assert!(json["keyDistribution"]["sampleSize"].is_u64());
    })
    .await;
}

#[tokio::test]
async fn cli_lists_keys_as_json_and_purges_with_dry_run_or_yes() {
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        let mut keys: Vec<Vec<u8>> = (0..30).map(|i| format!("cli:k{i}").into_bytes()).collect();
        keys.push(b"cli:\xff\x00bin".to_vec());
        set_all(&redis, &keys).await;
        set_all(&redis, &[b"other:1".to_vec()]).await;

        let db = SqliteFile::create();
        let cli = CliRunner::new().redis(r.url_arg()).database(db.url());

        let out = cli.run_async(&["keys", "cli:*", "--json"]).await.success();
        let list = out.json();
        let list = list.as_array().expect("a JSON array");
        assert_eq!(list.len(), 31);
        let got: HashSet<Vec<u8>> = list
            .iter()
            .map(|k| hex::decode(k["keyHex"].as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(got, keys.iter().cloned().collect::<HashSet<_>>());
        assert!(list.iter().any(|k| k["key"] == "cli:\\xff\\x00bin"));

        let out = cli
            .run_async(&["keys", "cli:*", "--limit", "5"])
            .await
            .success();
        assert_eq!(out.stdout.lines().count(), 5);
        assert!(out.stderr.contains("limit of 5"), "{out}");

        // Neither --dry-run nor --yes: usage error, nothing deleted.
        cli.run_async(&["purge", "cli:*"]).await.code(2);
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 32);

        let out = cli
            .run_async(&["purge", "cli:*", "--dry-run", "--json"])
            .await
            .success();
        assert_eq!(out.json()["count"], 31);
        let out = cli
            .run_async(&["purge", "cli:*", "--dry-run"])
            .await
            .success();
        assert!(out.stdout.contains("31 keys match"), "{out}");
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 32);

        let out = cli
            .run_async(&["purge", "cli:*", "--yes", "--json"])
            .await
            .success();
        assert_eq!(out.json()["deleted"], 31);
        assert_eq!(redis_admin::dbsize_total(&redis).await.unwrap(), 1);

        // TTL and inspect from the command line.
        cli.run_async(&["ttl", "other:1", "120"]).await.success();
        let out = cli
            .run_async(&["inspect", "--key-hex", &hex::encode("other:1"), "--json"])
            .await
            .success();
        assert!(out.json()["ttlMs"].as_i64().unwrap() > 100_000);
        cli.run_async(&["ttl", "--pattern", "other:*", "persist"])
            .await
            .success();
        let out = cli
            .run_async(&["inspect", "other:1", "--json"])
            .await
            .success();
        assert!(out.json()["ttlMs"].is_null());
        cli.run_async(&["inspect", "nope"]).await.code(1);
        // The purge and the TTL changes are in the audit log, with their counts.
        let store = cachedeck::store::Store::connect(&db.url())
            .await
            .expect("store");
        let rows = cachedeck::governance::audit::query(&store, &Default::default())
            .await
            .expect("audit rows");
        let purged = rows
            .iter()
            .find(|r| r.action == "keys_purged")
            .expect("a keys_purged row");
        let params = &purged.params;
        assert_eq!(
            (params["pattern"].as_str(), params["deleted"].as_u64()),
            (Some("cli:*"), Some(31))
        );
        assert_eq!(purged.result, "ok");
        assert_eq!(rows.iter().filter(|r| r.action == "ttl_changed").count(), 2);

        let out = cli.run_async(&["redis-info", "--json"]).await.success();
        assert_eq!(out.json()["total"]["keys"], 1);
    })
    .await;
}
