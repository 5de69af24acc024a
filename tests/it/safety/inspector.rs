//! The inspector stays bounded on collections with huge elements: each
//! element is cut at 64 KiB with its full length stated, big elements are
//! read a few at a time, and the CLI's peak memory stays far below the
//! value's size.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cachedeck::redis_admin::{ELEMENT_CAP, PageRequest, ValuePage, inspect};

use crate::support::{AnyRedis, CliRunner, each_topology};

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

        // The CLI: one page of the 30 MB list, far below its size in memory.
        let cli = CliRunner::new().redis(r.url_arg());
        let (out, peak) = run_measured(&cli, &["inspect", "big:list"]);
        assert!(
            out.contains("(first 64 KiB of 10485760 bytes)"),
            "{}",
            &out[..300.min(out.len())]
        );
        // Big items are read a few per page; the rest is one --cursor away.
        let shown = out.matches("(first 64 KiB of").count();
        assert!((1..3).contains(&shown), "{shown} items on the first page");
        assert!(
            out.contains("(more: run again with --cursor"),
            "no next page"
        );
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
