//! Warms fenced from each other and the swap under its own lease renewal,
//! against real Redis (standalone and a 3-master cluster) and a fresh
//! Postgres database: a warm that lost its lock mid-write stops and leaves
//! the next holder's generation intact; a swap whose preparation outlasts
//! several renewal intervals succeeds; shadow entries deleted before the
//! swap leave no trace in any live set.

use std::collections::HashSet;
use std::time::Duration;

use cachedeck::cache::query::{self, QueryRequest};
use cachedeck::cache::set_scan::SetScan;
use cachedeck::cache::warm::WarmOptions;
use cachedeck::cache::{lock, shadow};
use cachedeck::jobs::{self, ControlRequest, JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, ParsedKey, SecondaryIndex};
use cachedeck::redis_admin::scan::{ScanCursor, ScanQuery};
use cachedeck::redis_conn::Redis;
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, WarmFixture};

/// Table `src` with `practices` practices × 3 providers (NULL, 1, 2) × 2
/// measures × 2 frequencies × 3 periods, every row stamped with `gen` 0;
/// datasource 1 reads it through `sql`. Warms with `lease`, never skipped.
async fn fixture(r: &AnyRedis, practices: i64, lease: Duration, sql: &str) -> WarmFixture {
    let options = WarmOptions {
        lease,
        memory_pause_percent: 90,
        // Small chunks: a paused warm stops reading its source early.
        chunk_bytes: 64 * 1024,
        rebuild_indexes: false,
    };
    let f = WarmFixture::new(r, options, Duration::ZERO).await;
    f.create_src(practices).await;
    f.add_ds(1, "Fenced", sql, 3600, true).await;
    f
}

/// A slow read of `src` (0.5 ms a row), so a test can act mid-warm.
const SLOW_SQL: &str = "SELECT s.*, pg_sleep(0.0005) AS slow FROM src s";

async fn set_gen(f: &WarmFixture, generation: i32) {
    sqlx::query("UPDATE src SET gen = $1")
        .bind(generation)
        .execute(&f.pool)
        .await
        .expect("update gen");
}

/// Submits a warm of datasource 1 (`forced`) and runs it in the background.
async fn spawn_warm(
    f: &WarmFixture,
    forced: bool,
) -> (String, tokio::task::JoinHandle<JobSnapshot>) {
    let snap = jobs::submit(&f.jc, &[1], forced)
        .await
        .expect("submit")
        .remove(0);
    let id = snap.job_id.clone();
    let jc = f.jc.clone();
    let task =
        tokio::spawn(
            async move { jobs::run_job(&jc, snap, CancellationToken::new(), |_| {}).await },
        );
    (id, task)
}

async fn run_warm(f: &WarmFixture, forced: bool) -> JobSnapshot {
    spawn_warm(f, forced).await.1.await.expect("job task")
}

/// Waits until the job's record in Redis is in `state`.
async fn wait_state(redis: &Redis, job_id: &str, state: JobState) {
    for _ in 0..400 {
        if let Ok(Some(s)) = jobs::read(redis, job_id).await
            && s.state == state
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {job_id} never reached {state:?}");
}

/// Waits until the warm holding datasource 1's lock has written at least
/// `n` shadow entries; returns its fencing number.
async fn wait_for_shadow_entries(redis: &Redis, holder: &str, n: u64) -> u64 {
    for _ in 0..5000 {
        if lock::holder(redis, 1).await.expect("lock").as_deref() == Some(holder) {
            let fence: u64 = redis
                .query("GET", redis::cmd("GET").arg(keys::warm_fence(1)))
                .await
                .expect("fence");
            let have: u64 = redis
                .query(
                    "SCARD",
                    redis::cmd("SCARD").arg(keys::master_index(1, Gen::Shadow(fence))),
                )
                .await
                .expect("scard");
            if have >= n {
                return fence;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("job {holder} never wrote {n} shadow entries");
}

async fn pause(f: &WarmFixture, id: &str) {
    jobs::control(&f.redis, &f.jc.actor, id, ControlRequest::Pause)
        .await
        .expect("pause");
    wait_state(&f.redis, id, JobState::Paused).await;
}

async fn resume(f: &WarmFixture, id: &str) {
    // The job may have ended already (a fenced-off warm stops by itself).
    let _ = jobs::control(&f.redis, &f.jc.actor, id, ControlRequest::Resume).await;
}

/// Every key of datasource 1 whose name says shadow, found by SCAN on every
/// master (not through the registry, which is what is being tested).
async fn shadow_keys(redis: &Redis) -> Vec<String> {
    let mut cursor = ScanCursor::new(redis, ScanQuery::new("*shadow:{ds:1}*"))
        .await
        .expect("scan");
    let mut found = Vec::new();
    while !cursor.is_done() {
        let page = cursor.next_page().await.expect("scan page");
        found.extend(page.keys.into_iter().map(|k| k.display));
    }
    found
}

async fn members(redis: &Redis, set: &str) -> Vec<String> {
    let mut scan = SetScan::new(redis, set, "members");
    let mut out = Vec::new();
    while let Some(batch) = scan.next().await.expect("sscan") {
        out.extend(batch);
    }
    out.sort();
    out.dedup();
    out
}

async fn exists(redis: &Redis, key: &str) -> bool {
    redis
        .query("EXISTS", redis::cmd("EXISTS").arg(key))
        .await
        .expect("exists")
}

/// The live generation of datasource 1 is whole: every entry the master
/// set lists exists, every index the index list names exists and lists
/// only entries of the master set that exist, and every entry is in its
/// three indexes. Returns the number of entries.
async fn assert_consistent(redis: &Redis) -> usize {
    let master: HashSet<String> = members(redis, &keys::master_index(1, Gen::Live))
        .await
        .into_iter()
        .collect();
    for e in &master {
        assert!(exists(redis, e).await, "the master set lists missing {e}");
    }
    let indexes: HashSet<String> = members(redis, &keys::index_list(1, Gen::Live))
        .await
        .into_iter()
        .collect();
    for idx in &indexes {
        let listed = members(redis, idx).await;
        assert!(!listed.is_empty(), "the index list names missing {idx}");
        for e in listed {
            assert!(
                master.contains(&e),
                "{idx} lists {e}, not in the master set"
            );
            assert!(exists(redis, &e).await, "{idx} lists missing {e}");
        }
    }
    for e in &master {
        let Some(ParsedKey::Entry { group, .. }) = keys::parse(e) else {
            panic!("not an entry name: {e}");
        };
        for index in SecondaryIndex::for_group(&group) {
            let name = index.key(1, Gen::Live);
            assert!(indexes.contains(&name), "{name} is not in the index list");
            let member: bool = redis
                .query("SISMEMBER", redis::cmd("SISMEMBER").arg(&name).arg(e))
                .await
                .expect("sismember");
            assert!(member, "{e} is not in {name}");
        }
    }
    master.len()
}

fn req(measure: &str, freq: &str) -> QueryRequest {
    QueryRequest {
        datasource: 1,
        measure: measure.into(),
        frequency: freq.into(),
        ..Default::default()
    }
}

/// Every row's `gen` of a query result.
fn gens(rows: &[serde_json::Value]) -> HashSet<i64> {
    rows.iter()
        .map(|r| r["gen"].as_i64().expect("gen is a number"))
        .collect()
}

/// Warm A loses its lock mid-write (paused, its lock deleted) while warm B
/// takes the lock and writes: A stops on its own within a renewal interval
/// with a clear error and removes only its own shadow keys; B's generation
/// is whole and answers queries; no shadow key is left after both.
async fn warm_that_lost_its_lock_stops_and_spares_the_next(r: &AnyRedis) {
    // 100 practices: 1,200 groups, 3,600 rows, ≈ 2 s a warm.
    let f = fixture(r, 100, Duration::from_secs(2), SLOW_SQL).await;
    let first = run_warm(&f, true).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.error);

    set_gen(&f, 1).await;
    let (a, a_task) = spawn_warm(&f, true).await;
    wait_for_shadow_entries(&f.redis, &a, 100).await;
    pause(&f, &a).await;
    set_gen(&f, 2).await;
    // A's lease is gone (as after a stall longer than the lease) and B
    // takes the lock at once.
    let _: () = f
        .redis
        .query("DEL", redis::cmd("DEL").arg(keys::warm_lock(1)))
        .await
        .expect("delete A's lock");
    let (b, b_task) = spawn_warm(&f, true).await;
    let a_end = tokio::time::timeout(Duration::from_secs(20), a_task)
        .await
        .expect("A never noticed it lost its lock")
        .expect("A's task");
    resume(&f, &a).await;
    assert_eq!(a_end.state, JobState::Failed, "{a_end:?}");
    let why = a_end.error.unwrap_or_default();
    assert!(
        why.contains("lost the warm lock of datasource 1 to ")
            && why.contains("nothing of this warm was applied"),
        "{why}"
    );

    let b_end = b_task.await.expect("B's task");
    assert_eq!(b_end.state, JobState::Succeeded, "{:?}", b_end.error);
    assert_eq!(b_end.job_id, b);
    assert!(
        b_end.warnings.is_empty(),
        "B lost shadow keys: {:?}",
        b_end.warnings
    );
    assert_eq!(assert_consistent(&f.redis).await, 1_200);
    for (m, fr) in [("Charges", "Monthly"), ("Visits", "Weekly")] {
        let res = query::query(&f.redis, &req(m, fr)).await.expect("query");
        assert!(res.hit, "{m}/{fr} missed");
        assert_eq!(res.entries, 300, "{m}/{fr}");
        assert_eq!(gens(&res.rows), HashSet::from([2]), "{m}/{fr}");
    }
    assert_eq!(shadow_keys(&f.redis).await, Vec::<String>::new());
    assert!(!shadow::exists(&f.redis, 1).await.expect("registry"));
    assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
}
both!(lost_lock, warm_that_lost_its_lock_stops_and_spares_the_next);

/// With a 300 ms lease the guard renews every 100 ms, far more often than
/// the swap of 24,000 groups takes to prepare (every index set written
/// anew, the memory estimate, the transaction built): the renewals must not
/// void the swap, cold or forced.
async fn swap_outlasting_renewals_succeeds(r: &AnyRedis) {
    // 2,000 practices: 24,000 groups, 72,000 rows.
    let f = fixture(r, 2_000, Duration::from_millis(300), "SELECT * FROM src").await;
    let cold = run_warm(&f, true).await;
    assert_eq!(cold.state, JobState::Succeeded, "{:?}", cold.error);
    set_gen(&f, 1).await;
    let forced = run_warm(&f, true).await;
    assert_eq!(forced.state, JobState::Succeeded, "{:?}", forced.error);
    let res = query::query(&f.redis, &req("Charges", "Monthly"))
        .await
        .expect("query");
    assert!(res.hit);
    assert_eq!(res.entries, 6_000);
    assert_eq!(gens(&res.rows), HashSet::from([1]));
    assert!(shadow_keys(&f.redis).await.is_empty());
}
both!(short_lease_swap, swap_outlasting_renewals_succeeds);

/// Shadow entries deleted behind a refresh's back (by hand, by eviction)
/// have no value in the new generation: they stay listed in every set, their
/// live keys (the old values) are gone and they are recorded as invalidated,
/// so queries touching them miss (never a silently shorter answer), the rest
/// hits, and the next warm — not skipped as recent — restores them.
async fn vanished_shadow_entries_are_invalidated(r: &AnyRedis) {
    let f = fixture(r, 100, Duration::from_secs(2), SLOW_SQL).await;
    let first = run_warm(&f, true).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.error);
    assert_eq!(assert_consistent(&f.redis).await, 1_200);

    set_gen(&f, 1).await;
    // Unforced: the live index sets are kept and patched.
    let (id, task) = spawn_warm(&f, false).await;
    let fence = wait_for_shadow_entries(&f.redis, &id, 50).await;
    pause(&f, &id).await;
    let victims: Vec<String> = f
        .redis
        .query(
            "SRANDMEMBER",
            redis::cmd("SRANDMEMBER")
                .arg(keys::master_index(1, Gen::Shadow(fence)))
                .arg(3),
        )
        .await
        .expect("shadow entries");
    assert_eq!(victims.len(), 3);
    for v in &victims {
        let _: () = f
            .redis
            .query(
                "DEL",
                redis::cmd("DEL").arg(keys::shadow_of_entry(1, fence, v).expect("shadow name")),
            )
            .await
            .expect("delete a shadow entry");
    }
    resume(&f, &id).await;
    let done = task.await.expect("job task");
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert!(
        done.warnings
            .iter()
            .any(|w| w.contains("3 shadow keys were deleted during the warm")),
        "{:?}",
        done.warnings
    );
    let invalidated: HashSet<String> = members(&f.redis, &keys::invalidated(1))
        .await
        .into_iter()
        .collect();
    assert_eq!(invalidated, victims.iter().cloned().collect::<HashSet<_>>());
    let master: HashSet<String> = members(&f.redis, &keys::master_index(1, Gen::Live))
        .await
        .into_iter()
        .collect();
    assert_eq!(master.len(), 1_200, "vanished entries stay listed");
    for v in &victims {
        assert!(!exists(&f.redis, v).await, "{v} still holds an old value");
        let Some(ParsedKey::Entry { group, .. }) = keys::parse(v) else {
            panic!("not an entry name: {v}");
        };
        for index in SecondaryIndex::for_group(&group) {
            let name = index.key(1, Gen::Live);
            let member: bool = f
                .redis
                .query("SISMEMBER", redis::cmd("SISMEMBER").arg(&name).arg(v))
                .await
                .expect("sismember");
            assert!(member, "{name} no longer lists the vanished {v}");
        }
        // A query touching it misses: the application asks the database.
        let res = query::query(
            &f.redis,
            &QueryRequest {
                datasource: 1,
                measure: group.measure.clone(),
                frequency: group.frequency.clone(),
                practices: vec![group.practice.clone()],
                ..Default::default()
            },
        )
        .await
        .expect("query");
        assert!(!res.hit, "a query touching the vanished {v} hit");
    }
    // Untouched selections keep hitting with the new generation.
    let untouched = master
        .iter()
        .filter_map(|e| match keys::parse(e) {
            Some(ParsedKey::Entry { group, .. }) => Some(group),
            _ => None,
        })
        .find(|g| {
            !victims.iter().any(|v| match keys::parse(v) {
                Some(ParsedKey::Entry { group, .. }) => {
                    group.practice == g.practice
                        && group.measure == g.measure
                        && group.frequency == g.frequency
                }
                _ => false,
            })
        })
        .expect("an untouched group");
    let res = query::query(
        &f.redis,
        &QueryRequest {
            datasource: 1,
            measure: untouched.measure.clone(),
            frequency: untouched.frequency.clone(),
            practices: vec![untouched.practice.clone()],
            ..Default::default()
        },
    )
    .await
    .expect("query");
    assert!(res.hit);
    assert_eq!(gens(&res.rows), HashSet::from([1]));
    assert!(shadow_keys(&f.redis).await.is_empty());
    // The next ordinary warm is not skipped and restores them.
    let again = run_warm(&f, false).await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.error);
    assert_eq!(assert_consistent(&f.redis).await, 1_200);
    assert!(members(&f.redis, &keys::invalidated(1)).await.is_empty());
    assert!(shadow_keys(&f.redis).await.is_empty());
}
both!(partial_repair, vanished_shadow_entries_are_invalidated);
