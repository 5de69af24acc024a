//! The read contract (README, "Reading"), against real Redis (standalone and
//! a 3-master cluster) and a fresh Postgres database: invalidated selections
//! miss until the next warm while the rest keeps hitting; a warm and an
//! invalidation of one datasource never overlap; members that are not names
//! never stop a warm or an invalidation; large queries are read in bounded
//! steps and still answer one generation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cachedeck::cache::invalidate::{self, Selection};
use cachedeck::cache::query::{self, QueryRequest};
use cachedeck::cache::stats;
use cachedeck::cache::warm::WarmOptions;
use cachedeck::cache::{lock, meta};
use cachedeck::jobs::{self, ControlRequest, JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, GroupKey, SecondaryIndex};
use cachedeck::metrics::{self, integrity};
use cachedeck::redis_conn::Redis;
use cachedeck::store::DatasourceInput;
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, CliRunner, WarmFixture};

/// Table `src`: `practices` practices × providers NULL, 1, 2 × measures
/// Charges, Visits × frequencies Monthly, Weekly × 3 periods, every row
/// stamped with `gen`. Datasource 1 reads it; unforced warms are never
/// skipped.
async fn fixture(r: &AnyRedis, practices: i64) -> WarmFixture {
    let options = WarmOptions {
        lease: Duration::from_secs(2),
        memory_pause_percent: 90,
        chunk_bytes: 64 * 1024,
        rebuild_indexes: false,
    };
    let f = WarmFixture::new(r, options, Duration::ZERO).await;
    f.create_src(practices).await;
    f.store
        .add_datasource(&DatasourceInput {
            id: 1,
            name: "Test 1".into(),
            source_url: None,
            source_password: None,
            sql: "SELECT * FROM src".into(),
            stale_after_secs: 4 * 3600,
            ttl_secs: 3600,
            enabled: true,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })
        .await
        .expect("add datasource");
    f
}

/// The CLI on the fixture's store and Redis, with no rate limits.
fn cli(r: &AnyRedis, f: &WarmFixture) -> CliRunner {
    CliRunner::new()
        .database(f.db.url())
        .redis(r.url_arg())
        .env("CACHEDECK_WARM_RATE_LIMIT", "0")
        .env("CACHEDECK_INVALIDATE_RATE_LIMIT", "0")
}

/// An unforced warm, as the scheduler and the window start it.
async fn refresh(f: &WarmFixture) -> JobSnapshot {
    let snap = jobs::submit(&f.jc, &[1], false)
        .await
        .expect("submit")
        .remove(0);
    jobs::run_job(&f.jc, snap, CancellationToken::new(), |_| {}).await
}

async fn succeeded(s: JobSnapshot) {
    assert_eq!(s.state, JobState::Succeeded, "{:?}", s.error);
}

/// A query of datasource 1.
fn q(measure: &str, freq: &str, practices: &[&str], providers: &[Option<&str>]) -> QueryRequest {
    QueryRequest {
        datasource: 1,
        measure: measure.into(),
        frequency: freq.into(),
        practices: practices.iter().map(|p| p.to_string()).collect(),
        providers: providers.iter().map(|p| p.map(String::from)).collect(),
    }
}

fn describe(r: &QueryRequest) -> String {
    format!(
        "{}/{} practices {:?} providers {:?}",
        r.measure, r.frequency, r.practices, r.providers
    )
}

/// Asserts the query hits with `entries` entries, or misses (`None`).
async fn expect(redis: &Redis, r: &QueryRequest, entries: Option<usize>) {
    let res = query::query(redis, r).await.expect("query");
    match entries {
        Some(n) => {
            assert!(res.hit, "{} should hit", describe(r));
            assert_eq!(res.entries, n, "{}", describe(r));
            assert_eq!(res.rows.len(), n * 3, "{}", describe(r));
        }
        None => assert!(
            !res.hit,
            "{} should miss, got a hit with {} entries",
            describe(r),
            res.entries
        ),
    }
}

/// The seed's raw read: the index set's members, then MGET of them. True
/// when a member has no value (the reader sees a miss).
async fn raw_path_sees_a_gap(redis: &Redis, index: &str) -> bool {
    let members: Vec<String> = redis
        .query("SMEMBERS", redis::cmd("SMEMBERS").arg(index))
        .await
        .expect("smembers");
    assert!(!members.is_empty(), "{index} lost its members");
    let values: Vec<Option<String>> = redis
        .query("MGET", redis::cmd("MGET").arg(&members))
        .await
        .expect("mget");
    values.iter().any(Option::is_none)
}

fn index(measure: &str, freq: &str) -> String {
    SecondaryIndex::MeasureFreq {
        measure: measure.into(),
        frequency: freq.into(),
    }
    .key(1, Gen::Live)
}

/// (hits, misses) since the last swap.
async fn counters(redis: &Redis) -> (u64, u64) {
    let c = stats::since_warm(redis, 1).await.expect("counters");
    (c.hits, c.misses)
}

/// One selection and what the queries answer after it: entries on a hit,
/// `None` for a miss.
struct Case {
    sel: Selection,
    /// Index whose raw read must show a gap.
    raw: String,
    expected: Vec<(QueryRequest, Option<usize>)>,
}

fn sel(
    measure: Option<&str>,
    practices: &[&str],
    providers: &[Option<&str>],
    frequency: Option<&str>,
) -> Selection {
    Selection {
        measure: measure.map(String::from),
        practices: practices.iter().map(|p| p.to_string()).collect(),
        providers: providers.iter().map(|p| p.map(String::from)).collect(),
        frequency: frequency.map(String::from),
    }
}

/// Every invalidation selector, alone and combined, gives a miss for the
/// queries that touch it and hits for the rest; values the source never
/// had are empty hits; the raw index → MGET path sees a missing member;
/// the health check reports the entries as waiting for a warm (not as
/// broken indexes); counters keep counting; an unforced warm restores
/// everything.
async fn invalidated_selections_miss(r: &AnyRedis) {
    // 3 practices × 3 providers (NULL, 1, 2) per measure and frequency.
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let all = |m: &str, fr: &str| q(m, fr, &[], &[]);
    let cases = [
        Case {
            sel: sel(Some("Charges"), &[], &[], None),
            raw: index("Charges", "Monthly"),
            expected: vec![
                (all("Charges", "Monthly"), None),
                (all("Charges", "Weekly"), None),
                (q("Charges", "Monthly", &["1"], &[]), None),
                (all("Visits", "Monthly"), Some(9)),
                (q("Visits", "Weekly", &["2"], &[Some("1")]), Some(1)),
            ],
        },
        Case {
            sel: sel(None, &["2"], &[], None),
            raw: index("Visits", "Weekly"),
            expected: vec![
                (q("Charges", "Monthly", &["2"], &[]), None),
                (q("Charges", "Monthly", &["2", "1"], &[]), None),
                (q("Charges", "Monthly", &[], &[Some("1")]), None),
                (all("Visits", "Weekly"), None),
                (q("Charges", "Monthly", &["1"], &[]), Some(3)),
                (q("Visits", "Weekly", &["1", "3"], &[]), Some(6)),
                (q("Visits", "Weekly", &["3"], &[None, Some("2")]), Some(2)),
            ],
        },
        Case {
            sel: sel(None, &[], &[Some("1")], None),
            raw: index("Charges", "Weekly"),
            expected: vec![
                (q("Charges", "Weekly", &[], &[Some("1")]), None),
                (q("Charges", "Weekly", &[], &[Some("1"), Some("2")]), None),
                (q("Visits", "Monthly", &["3"], &[]), None),
                (all("Charges", "Weekly"), None),
                (q("Charges", "Weekly", &[], &[Some("2"), None]), Some(6)),
                (q("Visits", "Monthly", &["3"], &[Some("2")]), Some(1)),
            ],
        },
        Case {
            sel: sel(None, &[], &[None], None),
            raw: index("Visits", "Monthly"),
            expected: vec![
                (q("Visits", "Monthly", &[], &[None]), None),
                (q("Charges", "Weekly", &["1"], &[]), None),
                (all("Visits", "Monthly"), None),
                (
                    q("Visits", "Monthly", &[], &[Some("1"), Some("2")]),
                    Some(6),
                ),
                (q("Charges", "Weekly", &["1"], &[Some("2")]), Some(1)),
            ],
        },
        Case {
            sel: sel(None, &[], &[], Some("Weekly")),
            raw: index("Charges", "Weekly"),
            expected: vec![
                (all("Charges", "Weekly"), None),
                (q("Visits", "Weekly", &["1"], &[Some("2")]), None),
                (all("Charges", "Monthly"), Some(9)),
                (all("Visits", "Monthly"), Some(9)),
            ],
        },
        Case {
            sel: sel(Some("Charges"), &["3"], &[], Some("Monthly")),
            raw: index("Charges", "Monthly"),
            expected: vec![
                (q("Charges", "Monthly", &["3"], &[]), None),
                (q("Charges", "Monthly", &["1", "3"], &[]), None),
                (q("Charges", "Monthly", &[], &[Some("2")]), None),
                (all("Charges", "Monthly"), None),
                (q("Charges", "Monthly", &["1", "2"], &[]), Some(6)),
                (q("Charges", "Monthly", &["1"], &[Some("2")]), Some(1)),
                (q("Charges", "Weekly", &["3"], &[]), Some(3)),
                (q("Visits", "Monthly", &["3"], &[]), Some(3)),
            ],
        },
        Case {
            sel: sel(None, &["1"], &[None, Some("2")], Some("Monthly")),
            raw: index("Visits", "Monthly"),
            expected: vec![
                (q("Visits", "Monthly", &["1"], &[]), None),
                (q("Charges", "Monthly", &[], &[None]), None),
                (q("Charges", "Monthly", &["1"], &[Some("1")]), Some(1)),
                (q("Charges", "Monthly", &["2", "3"], &[]), Some(6)),
                (q("Visits", "Weekly", &["1"], &[]), Some(3)),
            ],
        },
    ];
    for (i, case) in cases.iter().enumerate() {
        eprintln!("case {i}: {:?}", case.sel);
        query::query_recorded(&f.redis, &all("Visits", "Monthly"))
            .await
            .expect("query");
        let before = counters(&f.redis).await;
        let gen_before = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
        let res = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &case.sel)
            .await
            .expect("invalidate");
        assert!(res.keys_deleted > 0, "case {i}: {res:?}");
        // Counters keep counting since the last swap.
        let after = counters(&f.redis).await;
        assert!(
            after.0 >= before.0 && after.0 > 0 && after.1 >= before.1,
            "case {i}: counters reset: {before:?} → {after:?}"
        );
        for (req, want) in &case.expected {
            expect(&f.redis, req, *want).await;
        }
        // Values the source never had: empty hits.
        expect(&f.redis, &all("Refunds", "Monthly"), Some(0)).await;
        expect(&f.redis, &q("Visits", "Monthly", &["99"], &[]), Some(0)).await;
        assert!(
            raw_path_sees_a_gap(&f.redis, &case.raw).await,
            "case {i}: the raw index path read a shorter list instead of a gap"
        );
        let pending = invalidate::pending(&f.redis, 1).await.expect("pending");
        assert_eq!(pending, res.keys_deleted, "case {i}");
        // The health check: waiting for a warm, not broken indexes.
        let health = metrics::check(&f.redis, &f.store).await.expect("health");
        let codes: Vec<&str> = health.issues.iter().map(|i| i.code.as_str()).collect();
        assert!(codes.contains(&"invalidated"), "case {i}: {codes:?}");
        assert!(!codes.contains(&"index_integrity"), "case {i}: {codes:?}");
        let walk = integrity::verify(&f.redis, 1).await.expect("walk");
        assert!(
            walk.ok(),
            "case {i}: {}: {:?}",
            walk.summary(),
            walk.examples
        );
        assert_eq!(walk.invalidated_entries, pending, "case {i}");
        // The next warm (unforced) restores every invalidated entry.
        succeeded(refresh(&f).await).await;
        let gen_after = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
        assert_eq!(gen_after.generation, gen_before.generation + 1);
        assert_eq!(invalidate::pending(&f.redis, 1).await.expect("pending"), 0);
        for (req, _) in &case.expected {
            let n = req.practices.len().max(1) * req.providers.len().max(1);
            let n = match (req.practices.is_empty(), req.providers.is_empty()) {
                (true, true) => 9,
                (false, true) => 3 * req.practices.len(),
                (true, false) => 3 * req.providers.len(),
                (false, false) => n,
            };
            expect(&f.redis, req, Some(n)).await;
        }
        let walk = integrity::verify(&f.redis, 1).await.expect("walk");
        assert!(
            walk.ok(),
            "case {i}: {}: {:?}",
            walk.summary(),
            walk.examples
        );
        assert_eq!(walk.invalidated_entries, 0);
    }

    // From the terminal: `invalidate` with every selector flag, `query`
    // prints a miss for the selection and a hit elsewhere.
    let cli = cli(r, &f);
    cli.run(&[
        "invalidate",
        "--datasource",
        "1",
        "--measure",
        "Visits",
        "--null-provider",
        "--frequency",
        "Weekly",
    ])
    .success();
    // Visits/Weekly with each extra selector: (extra flags, expected answer).
    for (extra, answer) in [
        (&["--null-provider"][..], "miss"),
        (&["--provider", "1"][..], "hit"),
        (&["--practice", "2"][..], "miss"),
    ] {
        let mut args = vec![
            "query",
            "--datasource",
            "1",
            "--measure",
            "Visits",
            "--frequency",
            "Weekly",
        ];
        args.extend_from_slice(extra);
        let out = cli.run(&args).success();
        assert!(out.stdout.starts_with(answer), "{extra:?}: {}", out.stdout);
    }
}
both!(invalidated_selection, invalidated_selections_miss);

/// A full invalidation leaves the datasource cold (every query misses, the
/// counters since the last swap are kept) and the next warm makes it hit.
async fn full_invalidation_then_warm(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let all = q("Charges", "Monthly", &[], &[]);
    expect(&f.redis, &all, Some(9)).await;
    query::query_recorded(&f.redis, &all).await.expect("query");
    let before = counters(&f.redis).await;
    assert!(before.0 >= 1, "{before:?}");
    let out = cli(r, &f)
        .run(&["invalidate", "--datasource", "1"])
        .success();
    assert!(out.stdout.contains("36 keys"), "{}", out.stdout);
    let after = counters(&f.redis).await;
    assert!(
        after.0 >= before.0,
        "counters reset: {before:?} → {after:?}"
    );
    expect(&f.redis, &all, None).await;
    expect(&f.redis, &q("Visits", "Weekly", &["1"], &[]), None).await;
    assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
    succeeded(refresh(&f).await).await;
    expect(&f.redis, &all, Some(9)).await;
    let walk = integrity::verify(&f.redis, 1).await.expect("walk");
    assert!(walk.ok(), "{}: {:?}", walk.summary(), walk.examples);
}
both!(full_invalidation, full_invalidation_then_warm);

/// Starts a forced warm that pauses at its first batch (holding the lock).
async fn start_paused(f: &WarmFixture) -> (String, tokio::task::JoinHandle<JobSnapshot>) {
    let snap = jobs::submit(&f.jc, &[1], true)
        .await
        .expect("submit")
        .remove(0);
    let id = snap.job_id.clone();
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Pause)
        .await
        .expect("pause");
    let jc = f.jc.clone();
    let task =
        tokio::spawn(
            async move { jobs::run_job(&jc, snap, CancellationToken::new(), |_| {}).await },
        );
    for _ in 0..400 {
        if let Ok(Some(s)) = jobs::read(&f.redis, &id).await
            && s.state == JobState::Paused
        {
            return (id, task);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} never paused");
}

/// A warm holds the datasource when an invalidation starts: the
/// invalidation (full or selective, from the terminal) is refused as busy
/// with exit 3 naming the warm's job; the warm completes and answers.
async fn warm_running_refuses_invalidation(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    sqlx::query("UPDATE src SET gen = 1")
        .execute(&f.pool)
        .await
        .expect("update");
    let (id, task) = start_paused(&f).await;
    let cli = cli(r, &f);
    for args in [
        vec!["invalidate", "--datasource", "1"],
        vec!["invalidate", "--datasource", "1", "--measure", "Charges"],
    ] {
        let out = cli.run(&args).code(3).failure_one_line();
        assert!(
            out.stderr.contains("is busy") && out.stderr.contains(&id),
            "{}",
            out.stderr
        );
    }
    let refused = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &Selection::default()).await;
    assert!(
        matches!(refused, Err(cachedeck::error::Error::AlreadyWarming { .. })),
        "{refused:?}"
    );
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Resume)
        .await
        .expect("resume");
    succeeded(task.await.expect("job task")).await;
    let res = query::query(&f.redis, &q("Charges", "Monthly", &[], &[]))
        .await
        .expect("query");
    assert!(res.hit);
    assert_eq!(res.entries, 9);
    assert!(res.rows.iter().all(|r| r["gen"] == 1));
    assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
}
both!(warm_refuses_invalidation, warm_running_refuses_invalidation);

/// Waits until an invalidation holds the warm lock of datasource 1.
async fn wait_for_invalidation(redis: &Redis) -> String {
    for _ in 0..4000 {
        if let Some(h) = lock::holder(redis, 1).await.expect("lock")
            && h.starts_with("invalidate:")
        {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no invalidation took the warm lock");
}

/// An invalidation is in progress (held at its dangerous moment by the
/// test hook: lock taken, epoch bumped, nothing deleted yet) when warms
/// start: they are refused as busy (exit 3 from the terminal, naming the
/// invalidation); afterwards the cache answers as the contract says, and
/// the next warm makes it hit.
async fn invalidation_running_refuses_warm(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let cli = cli(r, &f).env(invalidate::TEST_PAUSE_ENV, "6000");
    for selective in [false, true] {
        let mut args = vec!["invalidate", "--datasource", "1"];
        if selective {
            args.extend(["--measure", "Charges"]);
        }
        let mut cmd = cli.tokio_command(&args);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().expect("run cachedeck invalidate");
        let running = tokio::spawn(child.wait_with_output());
        let holder = wait_for_invalidation(&f.redis).await;
        let busy = f.warm(1).await;
        assert_eq!(busy.state, JobState::Failed);
        assert_eq!(busy.error_kind.as_deref(), Some("busy"));
        let why = busy.error.unwrap_or_default();
        assert!(
            why.contains("an invalidation") && why.contains(&holder),
            "{why}"
        );
        let out = cli
            .run(&["warm", "--datasource", "1", "--force"])
            .code(3)
            .failure_one_line();
        assert!(out.stderr.contains("an invalidation"), "{}", out.stderr);
        let done = running.await.expect("join").expect("invalidate ran");
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
        if selective {
            expect(&f.redis, &q("Charges", "Monthly", &[], &[]), None).await;
            expect(&f.redis, &q("Visits", "Monthly", &[], &[]), Some(9)).await;
            let health = metrics::check(&f.redis, &f.store).await.expect("health");
            assert!(
                health.issues.iter().any(|i| i.code == "invalidated"),
                "{:?}",
                health.issues
            );
        } else {
            expect(&f.redis, &q("Charges", "Monthly", &[], &[]), None).await;
            expect(&f.redis, &q("Visits", "Monthly", &[], &[]), None).await;
        }
        succeeded(refresh(&f).await).await;
        expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
        expect(&f.redis, &q("Visits", "Weekly", &[], &[]), Some(9)).await;
        let walk = integrity::verify(&f.redis, 1).await.expect("walk");
        assert!(walk.ok(), "{}: {:?}", walk.summary(), walk.examples);
    }
}
both!(invalidation_refuses_warm, invalidation_running_refuses_warm);

/// Members that are not names (not UTF-8, another prefix, another
/// datasource's) planted in the master set, an index set and the index
/// list: queries still answer, the health check reports them, unforced and
/// forced warms and both invalidations succeed, and a forced warm removes
/// them.
async fn foreign_members_are_skipped(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let plant = async || {
        let mut p = redis::pipe();
        p.cmd("SADD")
            .arg(keys::master_index(1, Gen::Live))
            .arg(&b"\xff\xfe not utf-8"[..])
            .ignore();
        p.cmd("SADD")
            .arg(keys::master_index(1, Gen::Live))
            .arg("cache:{ds:2}:m:Charges:p:1:prov:1:freq:Monthly")
            .arg("session:abc")
            .ignore();
        p.cmd("SADD")
            .arg(index("Charges", "Monthly"))
            .arg(&b"\xc3\x28"[..])
            .ignore();
        p.cmd("SADD")
            .arg(keys::index_list(1, Gen::Live))
            .arg(&b"idx:{ds:1}:\xff"[..])
            .ignore();
        f.redis.pipe::<()>("plant", &p).await.expect("plant");
    };
    plant().await;
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    let health = metrics::check(&f.redis, &f.store).await.expect("health");
    let integrity_issue = health
        .issues
        .iter()
        .find(|i| i.code == "index_integrity")
        .unwrap_or_else(|| panic!("not reported: {:?}", health.issues));
    assert!(
        integrity_issue.issue.contains("not entry keys"),
        "{}",
        integrity_issue.issue
    );
    let walk = integrity::verify(&f.redis, 1).await.expect("walk");
    assert_eq!(walk.foreign_members, 3, "{:?}", walk.examples);
    assert_eq!(walk.foreign_indexes, 1, "{:?}", walk.examples);
    assert_eq!(walk.orphan_members, 1, "{:?}", walk.examples);

    succeeded(refresh(&f).await).await;
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    invalidate::invalidate(
        &f.redis,
        &f.jc.actor,
        1,
        &sel(Some("Charges"), &[], &[], None),
    )
    .await
    .expect("selective invalidation");
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), None).await;
    plant().await;
    succeeded(f.warm(1).await).await;
    let walk = integrity::verify(&f.redis, 1).await.expect("walk");
    assert!(
        walk.ok(),
        "a forced warm kept foreign members: {}: {:?}",
        walk.summary(),
        walk.examples
    );
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    plant().await;
    let res = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &Selection::default())
        .await
        .expect("full invalidation");
    assert_eq!(res.keys_deleted, 36);
    succeeded(refresh(&f).await).await;
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    let walk = integrity::verify(&f.redis, 1).await.expect("walk");
    assert!(walk.ok(), "{}: {:?}", walk.summary(), walk.examples);
}
both!(foreign_members, foreign_members_are_skipped);

/// The entry key of a row of datasource 1.
fn key_of(row: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    keys::entry(
        1,
        Gen::Live,
        &GroupKey {
            measure: text(&row["measure"]),
            practice: text(&row["practice_uid"]),
            provider: (!row["provider_uid"].is_null()).then(|| text(&row["provider_uid"])),
            frequency: text(&row["frequency"]),
        },
    )
}

/// The entry keys of a result's rows, each once, in row order.
fn keys_in_order(rows: &[serde_json::Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        let k = key_of(r);
        if out.last() != Some(&k) {
            out.push(k);
        }
    }
    out
}

/// A query over more members than the script reads at once is read in
/// bounded steps and answers the same rows, in the same bytewise key order,
/// as the one-step path does for its parts.
async fn large_query_matches_small(r: &AnyRedis) {
    // 400 practices × 3 providers = 1,200 entries per measure and frequency.
    let f = fixture(r, 400).await;
    succeeded(f.warm(1).await).await;
    let large = query::query(&f.redis, &q("Charges", "Monthly", &[], &[]))
        .await
        .expect("query");
    assert!(large.large && large.hit, "{}", large.entries);
    assert_eq!(large.entries, 1200);
    assert_eq!(large.rows.len(), 3600);
    let order = keys_in_order(&large.rows);
    assert_eq!(order.len(), 1200);
    assert!(
        order.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "large rows are not in bytewise key order"
    );
    // The same groups through the one-step path, in parts of 300 practices.
    let mut small_rows = Vec::new();
    let practices: Vec<String> = (1..=400).map(|p| p.to_string()).collect();
    for part in practices.chunks(300) {
        let part: Vec<&str> = part.iter().map(String::as_str).collect();
        let res = query::query(&f.redis, &q("Charges", "Monthly", &part, &[]))
            .await
            .expect("query");
        assert!(res.hit && !res.large, "{}", res.entries);
        let order = keys_in_order(&res.rows);
        assert!(
            order.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
            "one-step rows are not in bytewise key order: {:?}",
            &order[..order.len().min(10)]
        );
        small_rows.extend(res.rows);
    }
    let canon = |rows: &[serde_json::Value]| {
        let mut v: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(canon(&large.rows), canon(&small_rows));
    // Practices and providers intersected, over the cap too.
    let both = query::query(
        &f.redis,
        &q(
            "Visits",
            "Weekly",
            &practices.iter().map(String::as_str).collect::<Vec<_>>(),
            &[None, Some("2")],
        ),
    )
    .await
    .expect("query");
    assert!(both.large && both.hit);
    assert_eq!(both.entries, 800);
    // An invalidated entry inside a large read: a miss.
    invalidate::invalidate(&f.redis, &f.jc.actor, 1, &sel(None, &["377"], &[], None))
        .await
        .expect("invalidate");
    let res = query::query(&f.redis, &q("Charges", "Monthly", &[], &[]))
        .await
        .expect("query");
    assert!(res.large && !res.hit);
    expect(&f.redis, &q("Charges", "Monthly", &["376"], &[]), Some(3)).await;
}
both!(large_query, large_query_matches_small);

/// A swap between the steps of a large read makes it start over: the answer
/// is the new generation, never a mix; readers looping over a large query
/// while ten warms run only ever see one generation per answer.
async fn large_reads_see_one_generation(r: &AnyRedis) {
    let f = fixture(r, 400).await;
    succeeded(f.warm(1).await).await;
    sqlx::query("UPDATE src SET gen = 1")
        .execute(&f.pool)
        .await
        .expect("update");
    let all = q("Charges", "Monthly", &[], &[]);
    let fx = &f;
    let res = query::query_with_pause(&f.redis, &all, |attempt| async move {
        if attempt == 1 {
            succeeded(refresh(fx).await).await;
        }
    })
    .await
    .expect("query");
    assert!(res.hit && res.large, "{res:?}");
    assert_eq!(res.attempts, 2);
    assert_eq!(res.entries, 1200);
    assert!(res.rows.iter().all(|r| r["gen"] == 1), "a mixed answer");

    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for n in 0..2 {
        let (redis, stop, hits) = (f.redis.clone(), stop.clone(), hits.clone());
        let (req, rows) = if n == 0 {
            (all.clone(), 3600)
        } else {
            // 400 practices (1,200 members) and 2 providers (800): large.
            let practices: Vec<String> = (1..=400).map(|p| p.to_string()).collect();
            let practices: Vec<&str> = practices.iter().map(String::as_str).collect();
            (q("Visits", "Weekly", &practices, &[None, Some("1")]), 2400)
        };
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let res = query::query(&redis, &req).await.expect("query");
                assert!(res.large, "{} entries", res.entries);
                if res.hit {
                    assert_eq!(res.rows.len(), rows);
                    let g = res.rows[0]["gen"].clone();
                    assert!(
                        res.rows.iter().all(|r| r["gen"] == g),
                        "a mixed answer (attempts {})",
                        res.attempts
                    );
                    hits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for i in 2..12 {
        sqlx::query("UPDATE src SET gen = $1")
            .bind(i)
            .execute(&f.pool)
            .await
            .expect("update");
        let s = if i % 3 == 0 {
            f.warm(1).await
        } else {
            refresh(&f).await
        };
        succeeded(s).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in readers {
        h.await.expect("reader failed");
    }
    assert!(hits.load(Ordering::Relaxed) > 5, "readers barely hit");
    let last = query::query(&f.redis, &all).await.expect("query");
    assert!(last.hit && last.rows.iter().all(|r| r["gen"] == 11));
}
both!(large_one_generation, large_reads_see_one_generation);

/// A full invalidation whose lock lapses after it moved the sets aside
/// (the lock key deleted here, as a process paused past its 30 s lease
/// finds it) while a warm takes the lock and swaps in: the invalidation
/// must not delete the new generation's entries and index sets, which
/// carry the same live names (before the fix the query answered a hit
/// with 0 entries). It stops with one line saying it lost the lock, and
/// the warm's generation keeps answering.
async fn lapsed_invalidation_spares_next_generation(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let cli = cli(r, &f).env(invalidate::TEST_PAUSE_ENV, "6000");
    let mut cmd = cli.tokio_command(&["invalidate", "--datasource", "1"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("run cachedeck invalidate");
    let running = tokio::spawn(child.wait_with_output());
    wait_for_invalidation(&f.redis).await;
    let _: i64 = f
        .redis
        .query("DEL", redis::cmd("DEL").arg(keys::warm_lock(1)))
        .await
        .expect("del");
    succeeded(f.warm(1).await).await;
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    let done = running.await.expect("join").expect("invalidate ran");
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success(), "{stderr}");
    assert!(stderr.contains("lost the warm lock"), "{stderr}");
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
    expect(&f.redis, &q("Visits", "Weekly", &["1"], &[]), Some(3)).await;
    let walk = integrity::verify(&f.redis, 1).await.expect("walk");
    assert!(walk.ok(), "{}: {:?}", walk.summary(), walk.examples);
}
both!(
    lapsed_invalidation_spares_warm,
    lapsed_invalidation_spares_next_generation
);

/// A member of the live index list that starts like an index name but is
/// not one (`idx:{ds:1}:` also starts the shadow registry, the scratch sets
/// and the trash) is not an index the new generation lacks: a forced warm
/// leaves the key it names alone.
async fn swap_spares_non_index_names(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let canary = "idx:{ds:1}:swap:diff:999:other";
    let mut p = redis::pipe();
    p.cmd("SET").arg(canary).arg("x").ignore();
    p.cmd("SADD")
        .arg(keys::index_list(1, Gen::Live))
        .arg(canary)
        .ignore();
    f.redis.pipe::<()>("plant", &p).await.expect("plant");
    succeeded(f.warm(1).await).await;
    let left: Option<String> = f
        .redis
        .query("GET", redis::cmd("GET").arg(canary))
        .await
        .expect("get");
    assert_eq!(left.as_deref(), Some("x"), "the swap deleted {canary}");
    expect(&f.redis, &q("Charges", "Monthly", &[], &[]), Some(9)).await;
}
both!(swap_spares_non_index, swap_spares_non_index_names);

/// An index set that vanishes while the master remains (evicted under a
/// volatile-* or allkeys-* policy — every index carries a TTL — or deleted
/// by hand) is a miss, not a hit with fewer entries: the index list still
/// names it, which tells it from a value the source never had.
async fn vanished_index_is_not_a_shorter_hit(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    succeeded(f.warm(1).await).await;
    let both = q("Charges", "Monthly", &["1", "2"], &[]);
    expect(&f.redis, &both, Some(6)).await;
    let gone = SecondaryIndex::Practice {
        measure: "Charges".into(),
        practice: "1".into(),
        frequency: "Monthly".into(),
    }
    .key(1, Gen::Live);
    let listed: bool = f
        .redis
        .query(
            "SISMEMBER",
            redis::cmd("SISMEMBER")
                .arg(keys::index_list(1, Gen::Live))
                .arg(&gone),
        )
        .await
        .expect("sismember");
    assert!(listed);
    let _: i64 = f
        .redis
        .query("UNLINK", redis::cmd("UNLINK").arg(&gone))
        .await
        .expect("unlink");
    let res = query::query(&f.redis, &both).await.expect("query");
    assert!(
        !res.hit || res.entries == 6,
        "hit with {} entries of 6 while {gone} is listed but gone",
        res.entries
    );
}
both!(vanished_index, vanished_index_is_not_a_shorter_hit);

/// The same for a query read in bounded steps (more than 1000 members).
async fn vanished_index_large_is_a_miss(r: &AnyRedis) {
    let f = fixture(r, 400).await;
    succeeded(f.warm(1).await).await;
    let names: Vec<String> = (1..=400).map(|p| p.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let wide = q("Charges", "Monthly", &refs, &[]);
    let res = query::query(&f.redis, &wide).await.expect("query");
    assert!(res.large && res.hit && res.entries == 1200, "{res:?}");
    let gone = SecondaryIndex::Practice {
        measure: "Charges".into(),
        practice: "7".into(),
        frequency: "Monthly".into(),
    }
    .key(1, Gen::Live);
    // Vanishes between the bounded steps (after the sets were read).
    let redis = f.redis.clone();
    let res = query::query_with_pause(&f.redis, &wide, |_| {
        let (redis, gone) = (redis.clone(), gone.clone());
        async move {
            let _: i64 = redis
                .query("UNLINK", redis::cmd("UNLINK").arg(&gone))
                .await
                .expect("unlink");
        }
    })
    .await
    .expect("query");
    assert!(res.large, "{res:?}");
    assert!(
        !res.hit,
        "hit with {} entries of 1200 while {gone} is listed but gone",
        res.entries
    );
    // Gone before the query: the script answers the miss at once.
    let res = query::query(&f.redis, &wide).await.expect("query");
    assert!(!res.hit && !res.large, "{res:?}");
}
both!(vanished_index_large, vanished_index_large_is_a_miss);
