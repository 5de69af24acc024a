//! Shadow warming, the swap, job control, reads and invalidation, against real
//! Redis (standalone and a 3-master cluster) and a fresh Postgres database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cachedeck::cache::invalidate::{self, Selection};
use cachedeck::cache::query::{self, QueryRequest};
use cachedeck::cache::warm::WarmOptions;
use cachedeck::cache::{lock, meta, shadow};
use cachedeck::jobs::{self, ControlRequest, JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, GroupKey};
use cachedeck::redis_conn::Redis;
use cachedeck::store::{DatasourceInput, Store};
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, WarmFixture};

type Fixture = WarmFixture;

/// Table `src` with `practices` practices × 2 providers (+ NULL) × 2
/// measures × 2 frequencies × 3 periods, every row stamped with `gen`.
async fn fixture(r: &AnyRedis, practices: i64) -> Fixture {
    fixture_skipping(r, practices, Duration::from_secs(300)).await
}

/// [`fixture`] whose unforced warms are skipped within `skip_within` of the
/// last one (zero: never skipped).
async fn fixture_skipping(r: &AnyRedis, practices: i64, skip_within: Duration) -> Fixture {
    let options = WarmOptions {
        lease: Duration::from_secs(2),
        memory_pause_percent: 90,
        // Small chunks: a paused warm stops reading its source early.
        chunk_bytes: 64 * 1024,
        rebuild_indexes: false,
    };
    let f = WarmFixture::new(r, options, skip_within).await;
    f.create_src(practices).await;
    add_ds(&f.store, 1, "SELECT * FROM src").await;
    f
}

async fn add_ds(store: &Store, id: i64, sql: &str) {
    store
        .add_datasource(&DatasourceInput {
            id,
            name: format!("Test {id}"),
            source_url: None,
            source_password: None,
            sql: sql.into(),
            stale_after_secs: 4 * 3600,
            ttl_secs: 3600,
            enabled: true,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })
        .await
        .expect("add datasource");
}

/// A forced warm (it also rebuilds every index set).
async fn warm(f: &Fixture, ds: i64) -> JobSnapshot {
    f.warm(ds).await
}

/// A warm as the scheduler and the window start it: unforced, so a refresh
/// changes only the index members that differ (needs a fixture that does
/// not skip recent warms).
async fn refresh(f: &Fixture, ds: i64) -> JobSnapshot {
    let snap = jobs::submit(&f.jc, &[ds], false)
        .await
        .expect("submit")
        .remove(0);
    jobs::run_job(&f.jc, snap, CancellationToken::new(), |_| {}).await
}

fn req(measure: &str, freq: &str) -> QueryRequest {
    QueryRequest {
        datasource: 1,
        measure: measure.into(),
        frequency: freq.into(),
        ..Default::default()
    }
}

/// Every row's `gen` of a query result (must all be equal).
fn gens(rows: &[serde_json::Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["gen"].as_i64().expect("gen is a number"))
        .collect()
}

async fn live_entries(redis: &Redis, ds: i64) -> u64 {
    redis
        .query(
            "SCARD",
            redis::cmd("SCARD").arg(keys::master_index(ds, Gen::Live)),
        )
        .await
        .expect("scard")
}

/// Waits until the job's record in Redis is in `state`.
async fn wait_state(redis: &Redis, job_id: &str, state: JobState) {
    for _ in 0..200 {
        if let Ok(Some(s)) = jobs::read(redis, job_id).await
            && s.state == state
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job_id} never reached {state:?}");
}

/// Starts a job that pauses at its first batch, runs it in the background,
/// and waits until it is paused. Returns its id and the running task.
async fn start_paused(f: &Fixture) -> (String, tokio::task::JoinHandle<JobSnapshot>) {
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
    wait_state(&f.redis, &id, JobState::Paused).await;
    (id, task)
}

/// The fencing number of the warm holding datasource `ds`'s lock (the
/// counter's value while it holds it).
async fn running_fence(redis: &Redis, ds: i64) -> Option<u64> {
    redis
        .query("GET", redis::cmd("GET").arg(keys::warm_fence(ds)))
        .await
        .expect("fence")
}

/// Waits until the running warm of `ds` has written at least `n` shadow
/// entries; returns its fencing number and shadow master set.
async fn wait_for_shadow_entries(redis: &Redis, ds: i64, n: u64) -> (u64, String) {
    for _ in 0..5000 {
        if lock::holder(redis, ds).await.expect("lock").is_some()
            && let Some(fence) = running_fence(redis, ds).await
        {
            let master = keys::master_index(ds, Gen::Shadow(fence));
            let have: u64 = redis
                .query("SCARD", redis::cmd("SCARD").arg(&master))
                .await
                .expect("scard");
            if have >= n {
                return (fence, master);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the warm of datasource {ds} never wrote {n} shadow entries");
}

async fn assert_no_shadow(redis: &Redis) {
    assert!(
        !shadow::exists(redis, 1).await.expect("shadow check"),
        "shadow keys left behind"
    );
}

async fn readers_see_no_miss_and_no_mixed_generation(r: &AnyRedis) {
    let f = fixture_skipping(r, 8, Duration::ZERO).await;
    let first = warm(&f, 1).await;
    assert_eq!(first.state, JobState::Succeeded, "{:?}", first.error);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for n in 0..3 {
        let redis = f.redis.clone();
        let stop = stop.clone();
        let reads = reads.clone();
        readers.push(tokio::spawn(async move {
            let (m, fr) = if n % 2 == 0 {
                ("Charges", "Monthly")
            } else {
                ("Visits", "Weekly")
            };
            let mut last_gen = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let res = query::query(&redis, &req(m, fr))
                    .await
                    .expect("query errors");
                assert!(res.hit, "a reader saw a miss during warming");
                assert_eq!(res.entries, 8 * 3, "a reader saw a partial generation");
                let g = gens(&res.rows);
                assert!(
                    g.windows(2).all(|w| w[0] == w[1]),
                    "mixed generations in one read: {g:?}"
                );
                assert!(res.generation >= last_gen, "generation went back");
                last_gen = res.generation;
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 1..=20 {
        sqlx::query("UPDATE src SET gen = $1")
            .bind(i)
            .execute(&f.pool)
            .await
            .expect("update source");
        // Unforced refreshes (index members kept, new expiry), every fifth
        // forced (every index set renamed over its live one).
        let s = if i % 5 == 0 {
            warm(&f, 1).await
        } else {
            refresh(&f, 1).await
        };
        assert_eq!(s.state, JobState::Succeeded, "warm {i}: {:?}", s.error);
    }
    stop.store(true, Ordering::Relaxed);
    for h in readers {
        h.await.expect("reader failed");
    }
    assert!(reads.load(Ordering::Relaxed) > 20, "readers barely ran");
    let last = query::query(&f.redis, &req("Charges", "Monthly"))
        .await
        .expect("query");
    assert!(gens(&last.rows).iter().all(|&g| g == 20));
    assert_eq!(
        meta::read(&f.redis, 1)
            .await
            .expect("meta")
            .expect("meta")
            .generation,
        21
    );
    assert_no_shadow(&f.redis).await;
}
both!(zero_downtime, readers_see_no_miss_and_no_mixed_generation);

async fn stale_groups_disappear(r: &AnyRedis) {
    let f = fixture(r, 6).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    // 6 practices × 3 providers × 2 measures × 2 frequencies.
    assert_eq!(live_entries(&f.redis, 1).await, 72);
    sqlx::query("DELETE FROM src WHERE practice_uid = 6 OR provider_uid = 2")
        .execute(&f.pool)
        .await
        .expect("shrink source");
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    assert_eq!(live_entries(&f.redis, 1).await, 5 * 2 * 4);
    let gone = QueryRequest {
        practices: vec!["6".into()],
        ..req("Charges", "Monthly")
    };
    let res = query::query(&f.redis, &gone).await.expect("query");
    assert!(res.hit);
    assert_eq!(res.entries, 0, "a removed practice is still indexed");
    let prov = QueryRequest {
        providers: vec![Some("2".into())],
        ..req("Visits", "Weekly")
    };
    assert_eq!(
        query::query(&f.redis, &prov).await.expect("query").entries,
        0
    );
    let old = keys::entry(
        1,
        Gen::Live,
        &GroupKey {
            measure: "Charges".into(),
            practice: "6".into(),
            provider: None,
            frequency: "Monthly".into(),
        },
    );
    let exists: bool = f
        .redis
        .query("EXISTS", redis::cmd("EXISTS").arg(&old))
        .await
        .expect("exists");
    assert!(!exists, "a stale entry survived the swap");
    let removed_index = keys::SecondaryIndex::Practice {
        measure: "Charges".into(),
        practice: "6".into(),
        frequency: "Monthly".into(),
    }
    .key(1, Gen::Live);
    let listed: bool = f
        .redis
        .query(
            "SISMEMBER",
            redis::cmd("SISMEMBER")
                .arg(keys::index_list(1, Gen::Live))
                .arg(&removed_index),
        )
        .await
        .expect("sismember");
    assert!(!listed, "a stale index is still listed");
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    assert_eq!(m.entries, 40);
    assert_eq!(m.unique_practices, 5);
}
both!(stale_groups, stale_groups_disappear);

async fn cancel_leaves_live_cache(r: &AnyRedis) {
    let f = fixture(r, 4).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let before = live_entries(&f.redis, 1).await;
    let gen_before = meta::read(&f.redis, 1)
        .await
        .expect("meta")
        .expect("meta")
        .generation;
    sqlx::query("UPDATE src SET gen = 7")
        .execute(&f.pool)
        .await
        .expect("update");
    let (id, task) = start_paused(&f).await;
    let paused = jobs::read(&f.redis, &id)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(paused.pause_reason.as_deref(), Some("paused by an admin"));
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Cancel)
        .await
        .expect("cancel");
    let end = task.await.expect("job task");
    assert_eq!(end.state, JobState::Cancelled);
    assert_eq!(live_entries(&f.redis, 1).await, before);
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    assert_eq!(m.generation, gen_before, "a cancelled warm swapped");
    let res = query::query(&f.redis, &req("Charges", "Monthly"))
        .await
        .expect("query");
    assert!(gens(&res.rows).iter().all(|&g| g == 0));
    assert_no_shadow(&f.redis).await;
    assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
    let hist = f.store.recent_jobs(Some(1), 1).await.expect("history");
    assert_eq!(hist[0].state, "cancelled");
    assert!(hist[0].error.as_deref().unwrap_or("").contains("cancelled"));
}
both!(cancel, cancel_leaves_live_cache);

async fn invalidation_during_warm_aborts_swap(r: &AnyRedis) {
    let f = fixture(r, 4).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let (id, task) = start_paused(&f).await;
    // cachedeck's own invalidation is refused as busy while a warm holds
    // the lock.
    let refused = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &Selection::default()).await;
    assert!(
        matches!(
            refused,
            Err(cachedeck::error::Error::AlreadyWarming { ref holder, .. }) if *holder == id
        ),
        "{refused:?}"
    );
    // Another tool's invalidation bumps the epoch (and deletes the live
    // cache) without the lock: the warm's swap aborts.
    let _: i64 = f
        .redis
        .query("INCR", redis::cmd("INCR").arg(keys::epoch(1)))
        .await
        .expect("bump the epoch");
    let mut p = redis::pipe();
    p.cmd("DEL")
        .arg(keys::master_index(1, Gen::Live))
        .arg(keys::meta(1))
        .ignore();
    f.redis
        .pipe::<()>("drop live", &p)
        .await
        .expect("drop live");
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Resume)
        .await
        .expect("resume");
    let end = task.await.expect("job task");
    assert_eq!(end.state, JobState::Failed);
    assert!(
        end.error.as_deref().unwrap_or("").contains("invalidated"),
        "error names the cause: {:?}",
        end.error
    );
    assert_eq!(
        live_entries(&f.redis, 1).await,
        0,
        "the invalidated cache came back"
    );
    assert_eq!(meta::read(&f.redis, 1).await.expect("meta"), None);
    assert_no_shadow(&f.redis).await;
    assert_eq!(lock::holder(&f.redis, 1).await.expect("lock"), None);
    // The next warm works.
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    assert_eq!(live_entries(&f.redis, 1).await, 48);
}
both!(invalidate_races_swap, invalidation_during_warm_aborts_swap);

async fn crashed_holder_lease_expires(r: &AnyRedis) {
    let f = fixture(r, 2).await;
    // A crashed warm: its lease, a shadow entry and its master membership.
    let ghost = GroupKey {
        measure: "Ghost".into(),
        practice: "0".into(),
        provider: None,
        frequency: "Monthly".into(),
    };
    let live = keys::entry(1, Gen::Live, &ghost);
    let mut p = redis::pipe();
    p.cmd("SET")
        .arg(keys::warm_lock(1))
        .arg("dead-job")
        .arg("PX")
        .arg(1500)
        .ignore();
    p.cmd("SET")
        .arg(keys::entry(1, Gen::Shadow(999), &ghost))
        .arg("[]")
        .ignore();
    p.cmd("SADD")
        .arg(keys::master_index(1, Gen::Shadow(999)))
        .arg(&live)
        .ignore();
    p.cmd("ZADD")
        .arg(keys::shadow_registry(1))
        .arg("+inf")
        .arg(999)
        .ignore();
    let _: () = f.redis.pipe("setup", &p).await.expect("setup");
    let busy = warm(&f, 1).await;
    assert_eq!(busy.state, JobState::Failed);
    assert_eq!(busy.error_kind.as_deref(), Some("busy"));
    assert!(
        busy.error.as_deref().unwrap_or("").contains("dead-job"),
        "{:?}",
        busy.error
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let ok = warm(&f, 1).await;
    assert_eq!(ok.state, JobState::Succeeded, "{:?}", ok.error);
    let ghost_left: bool = f
        .redis
        .query(
            "EXISTS",
            redis::cmd("EXISTS").arg(keys::entry(1, Gen::Shadow(999), &ghost)),
        )
        .await
        .expect("exists");
    assert!(
        !ghost_left,
        "the crashed warm's shadow entry was not cleaned"
    );
    let ghost_live: bool = f
        .redis
        .query("EXISTS", redis::cmd("EXISTS").arg(&live))
        .await
        .expect("exists");
    assert!(!ghost_live);
    assert_no_shadow(&f.redis).await;
}
both!(crashed_holder, crashed_holder_lease_expires);

async fn redis_hangs_mid_warm(r: &AnyRedis) {
    let f = fixture(r, 4).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let before = live_entries(&f.redis, 1).await;
    let (_id, task) = start_paused(&f).await;
    // Longer than the 2 s lease, shorter than the cluster's node timeout.
    match r {
        AnyRedis::Standalone(s) => s.freeze(),
        AnyRedis::Cluster(c) => c.nodes().iter().for_each(|n| n.freeze()),
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    match r {
        AnyRedis::Standalone(s) => s.thaw(),
        AnyRedis::Cluster(c) => c.nodes().iter().for_each(|n| n.thaw()),
    }
    let end = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the job hung after Redis came back")
        .expect("job task");
    assert_eq!(end.state, JobState::Failed, "{:?}", end.error);
    assert_eq!(live_entries(&f.redis, 1).await, before);
    assert_no_shadow(&f.redis).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
}
both!(redis_hangs, redis_hangs_mid_warm);

async fn source_dropped_mid_stream(r: &AnyRedis) {
    // Big enough (144,000 rows, ~16 MB) that socket buffers cannot hold the
    // rest while the paused warm stops reading: the COPY is still running.
    let f = fixture(r, 4000).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let before = live_entries(&f.redis, 1).await;
    let (id, task) = start_paused(&f).await;
    // Kill the source's connections (not ours: pg_terminate_backend from a new one).
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'COPY (%'",
    )
    .fetch_all(&f.pool)
    .await
    .expect("terminate");
    assert!(!killed.is_empty(), "no source query was running");
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Resume)
        .await
        .expect("resume");
    let end = task.await.expect("job task");
    assert_eq!(end.state, JobState::Failed);
    assert!(
        end.error.as_deref().unwrap_or("").contains("source query"),
        "{:?}",
        end.error
    );
    assert_eq!(live_entries(&f.redis, 1).await, before);
    assert_no_shadow(&f.redis).await;
    let _ = &f.db;
}
both!(source_dropped, source_dropped_mid_stream);

async fn hostile_values_round_trip(r: &AnyRedis) {
    let f = fixture(r, 1).await;
    sqlx::query(
        "INSERT INTO src VALUES ('a:b*c', 7, NULL, 'Monthly[1]', 1, 1.5, 0), ('a:b*c', 7, 3, 'Monthly[1]', 1, 2.5, 0), \
         ('{ds:2}', 8, 4, 'é ?%', 1, 3.5, 0), ('%N', 9, NULL, 'x\\y', 1, 4.5, 0)",
    )
    .execute(&f.pool)
    .await
    .expect("hostile rows");
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let q = |m: &str, fr: &str, prov: Vec<Option<String>>| QueryRequest {
        datasource: 1,
        measure: m.into(),
        frequency: fr.into(),
        practices: vec![],
        providers: prov,
    };
    let res = query::query(&f.redis, &q("a:b*c", "Monthly[1]", vec![None]))
        .await
        .expect("query");
    assert_eq!(res.rows.len(), 1);
    assert_eq!(res.rows[0]["amount"], serde_json::json!(1.5));
    let res = query::query(&f.redis, &q("a:b*c", "Monthly[1]", vec![]))
        .await
        .expect("query");
    assert_eq!(res.entries, 2);
    let res = query::query(&f.redis, &q("{ds:2}", "é ?%", vec![]))
        .await
        .expect("query");
    assert_eq!(res.rows.len(), 1);
    let res = query::query(&f.redis, &q("%N", "x\\y", vec![None]))
        .await
        .expect("query");
    assert_eq!(res.rows[0]["measure"], serde_json::json!("%N"));
    // Nothing of datasource 2 was touched by `{ds:2}` as a measure.
    let sel = Selection {
        measure: Some("a:b*c".into()),
        ..Default::default()
    };
    let inv = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &sel)
        .await
        .expect("invalidate");
    assert_eq!(inv.keys_deleted, 2);
    let res = query::query(&f.redis, &q("a:b*c", "Monthly[1]", vec![]))
        .await
        .expect("query");
    assert!(!res.hit, "an invalidated selection must miss");
    let res = query::query(&f.redis, &q("{ds:2}", "é ?%", vec![]))
        .await
        .expect("query");
    assert_eq!(
        res.rows.len(),
        1,
        "selective invalidation touched other entries"
    );
    // Invalidated entries stay listed (readers see them missing) until the
    // next warm.
    assert_eq!(live_entries(&f.redis, 1).await, 12 + 4);
}
both!(hostile_values, hostile_values_round_trip);

async fn selective_invalidation_keeps_the_rest(r: &AnyRedis) {
    let f = fixture(r, 3).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let sel = Selection {
        practices: vec!["2".into()],
        frequency: Some("Weekly".into()),
        ..Default::default()
    };
    let inv = invalidate::invalidate(&f.redis, &f.jc.actor, 1, &sel)
        .await
        .expect("invalidate");
    // practice 2 × 3 providers × 2 measures, Weekly only.
    assert_eq!(inv.keys_deleted, 6);
    assert!(inv.memory_freed_mb >= 0.0);
    // Still listed, waiting for the next warm.
    assert_eq!(live_entries(&f.redis, 1).await, 36);
    assert_eq!(invalidate::pending(&f.redis, 1).await.expect("pending"), 6);
    let weekly = query::query(&f.redis, &req("Charges", "Weekly"))
        .await
        .expect("query");
    assert!(!weekly.hit, "the invalidated practice must make it miss");
    let weekly = query::query(
        &f.redis,
        &QueryRequest {
            practices: vec!["1".into(), "3".into()],
            ..req("Charges", "Weekly")
        },
    )
    .await
    .expect("query");
    assert!(weekly.hit);
    assert_eq!(weekly.entries, 6);
    assert!(
        weekly
            .rows
            .iter()
            .all(|r| r["practice_uid"] != serde_json::json!(2))
    );
    let monthly = query::query(&f.redis, &req("Charges", "Monthly"))
        .await
        .expect("query");
    assert_eq!(monthly.entries, 9, "other frequencies kept");
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    assert_eq!(m.entries, 36, "meta describes the last warm");
}
both!(
    selective_invalidation,
    selective_invalidation_keeps_the_rest
);

/// Sets maxmemory on every master so that about `headroom` bytes are left
/// below the 90% pause threshold (0 removes the limit).
async fn set_headroom(redis: &Redis, headroom: Option<u64>) {
    for mut node in redis.masters().await.expect("masters") {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut node.conn)
            .await
            .expect("INFO memory");
        let used: u64 = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory");
        let max = headroom.map_or(0, |h| ((used + h) as f64 / 0.9) as u64);
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg(max)
            .query_async(&mut node.conn)
            .await
            .expect("CONFIG SET maxmemory");
    }
}

/// A warm whose shadow copy would not fit below the pause threshold is
/// refused before it writes anything, with the figures in the job's error;
/// the live cache stays and a warm with room succeeds afterwards.
async fn memory_preflight_refuses_a_copy_that_does_not_fit(r: &AnyRedis) {
    let f = fixture(r, 120).await;
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    assert!(
        m.memory_bytes > 100_000,
        "size recorded: {}",
        m.memory_bytes
    );
    let before = live_entries(&f.redis, 1).await;

    set_headroom(&f.redis, Some(m.memory_bytes / 4)).await;
    let refused = warm(&f, 1).await;
    set_headroom(&f.redis, None).await;
    assert_eq!(refused.state, JobState::Failed);
    let why = refused.error.unwrap_or_default();
    assert!(
        why.contains("not enough Redis memory to warm datasource 1"),
        "{why}"
    );
    assert!(why.contains("MB left below 90% of maxmemory"), "{why}");
    assert_eq!(live_entries(&f.redis, 1).await, before, "live cache kept");
    assert_no_shadow(&f.redis).await;
    assert!(
        lock::holder(&f.redis, 1).await.expect("lock").is_none(),
        "lock released"
    );

    let again = warm(&f, 1).await;
    assert_eq!(again.state, JobState::Succeeded, "{:?}", again.error);
    // The same data is estimated at about the same size every time.
    let m2 = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    let drift = (m2.memory_bytes as f64 / m.memory_bytes as f64 - 1.0).abs();
    assert!(
        drift < 0.05,
        "estimates {} and {} differ by {:.1}%",
        m.memory_bytes,
        m2.memory_bytes,
        drift * 100.0
    );
}
both!(
    memory_preflight,
    memory_preflight_refuses_a_copy_that_does_not_fit
);

/// A shadow entry deleted behind the warm's back (by hand, by eviction) has
/// no value in the new generation: it stays listed, is recorded as
/// invalidated (queries touching it miss) and reported; everything else
/// swaps in.
async fn vanished_shadow_entry_is_invalidated(r: &AnyRedis) {
    let f = fixture(r, 200).await;
    // A slow source (0.5 ms a row), so the test can act mid-warm.
    add_ds(
        &f.store,
        2,
        "SELECT s.*, pg_sleep(0.0005) AS slow FROM src s",
    )
    .await;
    let snap = jobs::submit(&f.jc, &[2], true)
        .await
        .expect("submit")
        .remove(0);
    let id = snap.job_id.clone();
    let jc = f.jc.clone();
    let task =
        tokio::spawn(
            async move { jobs::run_job(&jc, snap, CancellationToken::new(), |_| {}).await },
        );
    // Pause once some shadow entries exist.
    let (fence, shadow_master) = wait_for_shadow_entries(&f.redis, 2, 1).await;
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Pause)
        .await
        .expect("pause");
    wait_state(&f.redis, &id, JobState::Paused).await;
    let victim: String = f
        .redis
        .query("SRANDMEMBER", redis::cmd("SRANDMEMBER").arg(&shadow_master))
        .await
        .expect("a shadow entry");
    let _: () = f
        .redis
        .query(
            "DEL",
            redis::cmd("DEL").arg(keys::shadow_of_entry(2, fence, &victim).expect("entry key")),
        )
        .await
        .expect("delete a shadow entry");
    jobs::control(&f.redis, &f.jc.actor, &id, ControlRequest::Resume)
        .await
        .expect("resume");
    let done = task.await.expect("job task");
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
    assert!(
        done.warnings
            .iter()
            .any(|w| w.contains("1 shadow keys were deleted during the warm")),
        "{:?}",
        done.warnings
    );
    let is_member: bool = f
        .redis
        .query(
            "SISMEMBER",
            redis::cmd("SISMEMBER")
                .arg(keys::master_index(2, Gen::Live))
                .arg(&victim),
        )
        .await
        .expect("sismember");
    assert!(is_member, "the vanished entry stays listed");
    let recorded: bool = f
        .redis
        .query(
            "SISMEMBER",
            redis::cmd("SISMEMBER")
                .arg(keys::invalidated(2))
                .arg(&victim),
        )
        .await
        .expect("sismember");
    assert!(recorded, "the vanished entry is recorded as invalidated");
    let value: Option<String> = f
        .redis
        .query("GET", redis::cmd("GET").arg(&victim))
        .await
        .expect("get");
    assert!(value.is_none(), "no value of the old generation is left");
    // 200 practices × 3 providers × 2 measures × 2 frequencies.
    assert_eq!(live_entries(&f.redis, 2).await, 2_400);
    assert!(!shadow::exists(&f.redis, 2).await.expect("shadow check"));
}
both!(vanished_shadow, vanished_shadow_entry_is_invalidated);

/// Milliseconds until every live key of datasource 1's generation expires,
/// as absolute times: (entries and sets checked, earliest, latest).
async fn live_expiries(redis: &Redis) -> (usize, i64, i64) {
    let mut keys_of_gen = vec![
        keys::master_index(1, Gen::Live),
        keys::index_list(1, Gen::Live),
    ];
    for set in [
        keys::master_index(1, Gen::Live),
        keys::index_list(1, Gen::Live),
    ] {
        let mut scan = cachedeck::cache::set_scan::SetScan::new(redis, set, "members");
        while let Some(batch) = scan.next().await.expect("sscan") {
            keys_of_gen.extend(batch);
        }
    }
    let now = redis.time_ms().await.expect("time");
    let mut p = redis::pipe();
    for k in &keys_of_gen {
        p.cmd("PTTL").arg(k);
    }
    let ttls: Vec<i64> = redis.pipe("PTTL", &p).await.expect("pttl");
    assert!(
        ttls.iter().all(|&t| t > 0),
        "a key of the generation is missing or has no expiry"
    );
    let at: Vec<i64> = ttls.iter().map(|t| now + t).collect();
    (
        at.len(),
        *at.iter().min().expect("keys"),
        *at.iter().max().expect("keys"),
    )
}

/// A refresh keeps index sets whose members did not change and rewrites the
/// others: after refreshes that add, remove and keep groups, every index
/// holds exactly the entries of its group (the full integrity walk finds
/// nothing), every key of the generation shares the new expiry, and an
/// index set deleted by hand comes back on the next warm.
async fn refreshes_keep_indexes_exact(r: &AnyRedis) {
    let f = fixture_skipping(r, 6, Duration::ZERO).await;
    assert_eq!(refresh(&f, 1).await.state, JobState::Succeeded);
    let first = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    // Same groups, new values: no index changes, new expiry everywhere.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sqlx::query("UPDATE src SET gen = 1")
        .execute(&f.pool)
        .await
        .expect("update");
    assert_eq!(refresh(&f, 1).await.state, JobState::Succeeded);
    let second = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    assert!(second.expires_at_ms > first.expires_at_ms);
    let (n, lo, hi) = live_expiries(&f.redis).await;
    assert_eq!(n, 2 + 72 + second.indexes as usize);
    assert!(
        (lo - second.expires_at_ms).abs() < 1000 && (hi - second.expires_at_ms).abs() < 1000,
        "keys of one generation expire apart: {lo}..{hi} vs {}",
        second.expires_at_ms
    );
    // Groups removed (practice 6, provider 2) and added (practice 7, a
    // third measure): indexes shared with kept groups change members.
    sqlx::query("DELETE FROM src WHERE practice_uid = 6 OR provider_uid = 2")
        .execute(&f.pool)
        .await
        .expect("shrink");
    sqlx::query(
        "INSERT INTO src SELECT m, 7, prov, f, 1, 1.5, 2 FROM unnest(ARRAY['Charges','Refunds']) m, \
         unnest(ARRAY[NULL, 1]) prov, unnest(ARRAY['Monthly','Weekly']) f",
    )
    .execute(&f.pool)
    .await
    .expect("grow");
    assert_eq!(refresh(&f, 1).await.state, JobState::Succeeded);
    let report = cachedeck::metrics::integrity::verify(&f.redis, 1)
        .await
        .expect("integrity walk");
    assert!(report.ok(), "{}: {:?}", report.summary(), report.examples);
    // 5 practices × 2 providers × 2 measures × 2 frequencies, plus practice 7.
    assert_eq!(live_entries(&f.redis, 1).await, 40 + 8);
    let all = query::query(&f.redis, &req("Charges", "Monthly"))
        .await
        .expect("query");
    assert_eq!(
        all.entries,
        5 * 2 + 2,
        "the measure index lost or kept the wrong groups"
    );
    let refunds = query::query(&f.redis, &req("Refunds", "Weekly"))
        .await
        .expect("query");
    assert_eq!(refunds.entries, 2);
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    let (_, lo, hi) = live_expiries(&f.redis).await;
    assert!((lo - m.expires_at_ms).abs() < 1000 && (hi - m.expires_at_ms).abs() < 1000);
    // Live indexes deleted by hand are written again by the next warm: one
    // whose members change in that warm, one whose members do not.
    let practice = |m: &str, p: &str, f: &str| {
        keys::SecondaryIndex::Practice {
            measure: m.into(),
            practice: p.into(),
            frequency: f.into(),
        }
        .key(1, Gen::Live)
    };
    let (changed, unchanged) = (
        practice("Charges", "3", "Weekly"),
        practice("Visits", "4", "Monthly"),
    );
    let _: () = f
        .redis
        .query("DEL", redis::cmd("DEL").arg(&changed).arg(&unchanged))
        .await
        .expect("delete two indexes");
    sqlx::query(
        "DELETE FROM src WHERE practice_uid = 3 AND provider_uid IS NULL \
         AND measure = 'Charges' AND frequency = 'Weekly'",
    )
    .execute(&f.pool)
    .await
    .expect("remove one group");
    assert_eq!(refresh(&f, 1).await.state, JobState::Succeeded);
    for (index, expected) in [(&changed, 1u64), (&unchanged, 2)] {
        let members: u64 = f
            .redis
            .query("SCARD", redis::cmd("SCARD").arg(index))
            .await
            .expect("scard");
        assert_eq!(members, expected, "{index} did not come back whole");
    }
    let m = meta::read(&f.redis, 1).await.expect("meta").expect("meta");
    let (_, lo, hi) = live_expiries(&f.redis).await;
    assert!((lo - m.expires_at_ms).abs() < 1000 && (hi - m.expires_at_ms).abs() < 1000);
    let report = cachedeck::metrics::integrity::verify(&f.redis, 1)
        .await
        .expect("integrity walk");
    assert!(report.ok(), "{}: {:?}", report.summary(), report.examples);
    // A member swapped by hand inside an index is invisible to the
    // comparison of the master sets; a forced warm rebuilds every set.
    let measure = keys::SecondaryIndex::MeasureFreq {
        measure: "Visits".into(),
        frequency: "Weekly".into(),
    }
    .key(1, Gen::Live);
    let member: String = f
        .redis
        .query("SRANDMEMBER", redis::cmd("SRANDMEMBER").arg(&measure))
        .await
        .expect("a member");
    let mut p = redis::pipe();
    p.cmd("SREM").arg(&measure).arg(&member).ignore();
    p.cmd("SADD")
        .arg(&measure)
        .arg("cache:{ds:1}:m:ghost:p:1:prov:%N:freq:Weekly")
        .ignore();
    f.redis
        .pipe::<()>("damage an index", &p)
        .await
        .expect("damage");
    assert!(
        !cachedeck::metrics::integrity::verify(&f.redis, 1)
            .await
            .expect("walk")
            .ok()
    );
    assert_eq!(warm(&f, 1).await.state, JobState::Succeeded);
    let report = cachedeck::metrics::integrity::verify(&f.redis, 1)
        .await
        .expect("integrity walk");
    assert!(report.ok(), "{}: {:?}", report.summary(), report.examples);
    assert_no_shadow(&f.redis).await;
}
both!(refresh_indexes, refreshes_keep_indexes_exact);
