//! The inspector stays bounded on collections with huge elements: each
//! element is cut at 64 KiB inside Redis with its full length stated, also
//! among small elements, and the CLI's peak memory stays far below the
//! value's size.

use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachedeck::backend::{self, Command, Event, Startup, ToolsCommand, ToolsEvent};
use cachedeck::config::{Defaults, Resolved};
use cachedeck::redis_admin::{ELEMENT_CAP, PageRequest, ValuePage, inspect};

use crate::support::{AnyRedis, CliRunner, SqliteFile, each_topology};

const BIG: usize = 10 * 1024 * 1024;

/// Every page of `key`, following the cursor.
async fn all_pages(redis: &cachedeck::redis_conn::Redis, key: &[u8]) -> Vec<ValuePage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let i = inspect(redis, key, &PageRequest { cursor, count: 100 })
            .await
            .expect("inspect");
        pages.push(i.value.expect("a page"));
        match i.next_cursor {
            Some(c) => cursor = Some(c),
            None => return pages,
        }
        assert!(pages.len() < 50, "paging does not end");
    }
}

fn capped(b: &cachedeck::redis_admin::Blob, full: usize) {
    assert_eq!(b.full_length, Some(full as u64));
    assert_eq!(b.text.len(), ELEMENT_CAP);
}

/// `VmHWM` (peak resident memory) of a running process, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs the CLI and returns its standard output and its peak memory (KiB).
/// Its output (more than a pipe holds) is read only once its peak has
/// stopped growing, so the process is still there to be measured.
fn run_measured(cli: &CliRunner, args: &[&str]) -> (String, u64) {
    let mut child = cli
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cachedeck");
    let pid = child.id();
    let (mut peak, mut since) = (0u64, Instant::now());
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() && started.elapsed() < Duration::from_secs(60) {
        if let Some(p) = peak_kib(pid)
            && p > peak
        {
            peak = p;
            since = Instant::now();
        }
        if peak > 0 && since.elapsed() > Duration::from_millis(1500) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{args:?}: {status}");
    assert!(peak > 0, "the process ended before it could be measured");
    (out, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_stays_bounded_on_huge_elements() {
    each_topology(async |r: &AnyRedis| {
        for c in [b'a', b'b', b'c'] {
            let _: i64 = r.query(redis::cmd("RPUSH").arg("big:list").arg(vec![c; BIG]));
        }
        let _: i64 = r.query(
            redis::cmd("HSET")
                .arg("big:hash")
                .arg("f1")
                .arg(vec![b'x'; BIG])
                .arg("f2")
                .arg("small"),
        );
        let _: i64 = r.query(
            redis::cmd("SADD")
                .arg("big:set")
                .arg(vec![b'y'; BIG])
                .arg("tiny"),
        );
        let _: i64 = r.query(
            redis::cmd("ZADD")
                .arg("big:zset")
                .arg(1)
                .arg(vec![b'z'; BIG]),
        );
        let redis = r.connect().await;

        let mut items = Vec::new();
        for p in all_pages(&redis, b"big:list").await {
            let ValuePage::List { items: page, .. } = p else {
                panic!("{p:?}")
            };
            items.extend(page);
        }
        assert_eq!(items.len(), 3);
        for (i, it) in items.iter().enumerate() {
            capped(it, BIG);
            assert!(it.text.bytes().all(|b| b == b"abc"[i]));
        }

        let mut fields = Vec::new();
        for p in all_pages(&redis, b"big:hash").await {
            let ValuePage::Hash { fields: page } = p else {
                panic!("{p:?}")
            };
            fields.extend(page);
        }
        fields.sort_by(|a, b| a.field.text.cmp(&b.field.text));
        assert_eq!(fields.len(), 2);
        capped(&fields[0].value, BIG);
        assert_eq!(fields[1].value.text, "small");
        assert_eq!(fields[1].value.full_length, None);

        let mut members = Vec::new();
        for p in all_pages(&redis, b"big:set").await {
            let ValuePage::Set { members: page } = p else {
                panic!("{p:?}")
            };
            members.extend(page);
        }
        assert_eq!(members.len(), 2);
        assert!(members.iter().any(|m| m.full_length == Some(BIG as u64)));

        let pages = all_pages(&redis, b"big:zset").await;
        let ValuePage::Zset { members, .. } = &pages[0] else {
            panic!("{pages:?}")
        };
        capped(&members[0].member, BIG);
        assert_eq!(members[0].score, "1");

        // The CLI: the three items cut inside Redis, on one page.
        let cli = CliRunner::new().redis(r.url_arg());
        let (out, peak) = run_measured(&cli, &["inspect", "big:list"]);
        assert_eq!(
            out.matches("(first 64 KiB of 10485760 bytes)").count(),
            3,
            "{}",
            &out[..300.min(out.len())]
        );
        assert!(!out.contains("(more: run again with --cursor"), "next page");
        eprintln!(
            "inspect of 3 × 10 MB list items: peak RSS {} MB",
            peak / 1024
        );
        assert!(peak < 60 * 1024, "peak RSS {peak} KiB");
        let (out, peak) = run_measured(&cli, &["inspect", "big:hash", "--json"]);
        assert!(
            out.contains("\"fullLength\": 10485760"),
            "{}",
            &out[..300.min(out.len())]
        );
        assert!(peak < 60 * 1024, "peak RSS {peak} KiB");
    })
    .await;
}

/// Small elements with a few 10 MB ones among them: each call is bounded by
/// bytes, not only by the average element size, so the CLI never receives
/// the big elements whole; the window's backend gets the same cut rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_small_and_huge_elements_are_cut_inside_redis() {
    each_topology(async |r: &AnyRedis| {
        // 1,000 small items with three 10 MB items side by side near the
        // head: one batch sized by the average (30 MB ÷ 1,003) holds all
        // three.
        for i in 0..1000 {
            if i == 10 {
                for c in [b'a', b'b', b'c'] {
                    let _: i64 = r.query(redis::cmd("RPUSH").arg("mix:list").arg(vec![c; BIG]));
                }
            }
            let _: i64 = r.query(
                redis::cmd("RPUSH")
                    .arg("mix:list")
                    .arg(format!("small {i}")),
            );
        }
        let mut hset = redis::cmd("HSET");
        hset.arg("mix:hash");
        for i in 0..300 {
            hset.arg(format!("f{i:03}")).arg(format!("value {i}"));
        }
        hset.arg("huge").arg(vec![b'h'; BIG]);
        let _: i64 = r.query(&hset);

        let cli = CliRunner::new().redis(r.url_arg());
        let (out, peak) = run_measured(&cli, &["inspect", "mix:list"]);
        eprintln!("inspect of a mixed list: peak RSS {} MB", peak / 1024);
        assert_eq!(
            out.matches("(first 64 KiB of 10485760 bytes)").count(),
            3,
            "{}",
            &out[..300.min(out.len())]
        );
        assert!(
            out.contains("small 0") && out.contains("small 96"),
            "small items shown"
        );
        for c in ["a", "b", "c"] {
            // At most the cap of each big item is printed.
            let run = c.repeat(ELEMENT_CAP + 1);
            assert!(!out.contains(&run), "more than 64 KiB of `{c}` printed");
            assert!(
                out.contains(&c.repeat(ELEMENT_CAP)),
                "the first 64 KiB of `{c}`"
            );
        }
        assert!(
            out.contains("(more: run again with --cursor"),
            "no next page"
        );
        // Today about 22 MB; whole 10 MB elements took 67 MB and more.
        assert!(peak < 40 * 1024, "peak RSS {peak} KiB");

        let (out, peak) = run_measured(&cli, &["inspect", "mix:hash", "--count", "1000"]);
        eprintln!("inspect of a mixed hash: peak RSS {} MB", peak / 1024);
        assert_eq!(
            out.matches("(first 64 KiB of 10485760 bytes)").count(),
            1,
            "{}",
            &out[..300.min(out.len())]
        );
        assert!(!out.contains(&"h".repeat(ELEMENT_CAP + 1)));
        assert!(out.contains("value 299"), "every small field shown");
        // Today about 22 MB; whole 10 MB elements took 67 MB and more.
        assert!(peak < 40 * 1024, "peak RSS {peak} KiB");

        // The window's backend path: the Keys tab's inspection of the list.
        let db = SqliteFile::create();
        let (handle, mut events) = backend::spawn(
            &tokio::runtime::Handle::current(),
            Startup::Resolved(Box::new(Resolved {
                name: "inspect-mixed".into(),
                production: false,
                redis: r.target(),
                database_url: db.url(),
                defaults: Defaults::default(),
            })),
            Arc::new(|| {}),
        );
        let ask = Command::Tools(ToolsCommand::Inspect {
            key: b"mix:list".to_vec(),
            cursor: None,
            count: 100,
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut asked = false;
        let inspection = loop {
            let ev = tokio::time::timeout_at(deadline, events.recv())
                .await
                .expect("an inspection within 30 s")
                .expect("the backend is running");
            match ev {
                Event::Connection(c) if c.redis.is_up() && !asked => {
                    handle.commands.send(ask.clone()).expect("backend alive");
                    asked = true;
                }
                Event::Tools(ToolsEvent::Inspected { inspection, .. }) => break inspection,
                Event::Tools(ToolsEvent::InspectFailed { error, .. }) => panic!("{error}"),
                _ => {}
            }
        };
        let Some(ValuePage::List { items, .. }) = &inspection.value else {
            panic!("{inspection:?}")
        };
        assert_eq!(items.len(), 100);
        assert_eq!(items[0].text, "small 0");
        for (i, c) in [b'a', b'b', b'c'].into_iter().enumerate() {
            capped(&items[10 + i], BIG);
            assert!(items[10 + i].text.bytes().all(|b| b == c));
        }
        assert_eq!(items[13].text, "small 10");
        assert_eq!(inspection.next_cursor.as_deref(), Some("100"));
        handle.shutdown(Duration::from_secs(10)).await;
    })
    .await;
}
