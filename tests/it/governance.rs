//! Permissions, audit log, rate limits, schedules, the agent and health
//! alerts, against real Redis (standalone and a 3-master cluster for the
//! Redis-side parts), a fresh Postgres database, and SQLite for the store.

use std::time::Duration;

use cachedeck::actor::{Actor, Origin};
use cachedeck::cache::{shadow, warm::WarmOptions};
use cachedeck::governance::audit::{self, AuditFilter, AuditSink};
use cachedeck::governance::permissions::{self, PERM_WRITE};
use cachedeck::governance::ratelimit::{self, Limits, RateAction};
use cachedeck::governance::scheduler::{self, Scheduler, SchedulerConfig};
use cachedeck::governance::schedules::{self, ScheduleRequest};
use cachedeck::governance::{ActorFacts, alerts, grants};
use cachedeck::jobs::{self, JobContext, JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, GroupKey};
use cachedeck::redis_conn::{Redis, RedisTarget};
use cachedeck::store::{DatasourceInput, Store};
use cachedeck::{Error, redis_admin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::support::{AnyDb, AnyRedis, CliRunner, RedisServer, TestDb, each_topology};

/// A fresh Postgres store with a tiny source table `src` and datasource 1.
async fn store_with_ds() -> (TestDb, Store) {
    let db = TestDb::create();
    let store = Store::connect(db.url()).await.expect("store");
    let pool = db.pool().await;
    sqlx::query("CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, amount INT)")
        .execute(&pool)
        .await
        .expect("create src");
    sqlx::query(
        "INSERT INTO src SELECT m, p, 1, 'Monthly', p FROM unnest(ARRAY['Charges','Visits']) m, generate_series(1, 3) p",
    )
    .execute(&pool)
    .await
    .expect("fill src");
    pool.close().await;
    add_ds(&store, 1).await;
    (db, store)
}

async fn add_ds(store: &Store, id: i64) {
    store
        .add_datasource(&DatasourceInput {
            id,
            name: format!("Test {id}"),
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
}

fn facts(redis_user: Option<&str>, limits: Limits) -> ActorFacts {
    ActorFacts {
        profile: "test".into(),
        origin: Origin::Cli,
        redis_user: redis_user.map(str::to_string),
        limits,
    }
}

fn job_context(redis: &Redis, store: &Store, db: &TestDb, actor: Actor) -> JobContext {
    JobContext {
        redis: redis.clone(),
        store: store.clone(),
        actor,
        default_source_url: db.url().to_string(),
        options: WarmOptions {
            lease: Duration::from_secs(2),
            memory_pause_percent: 90,
            ..Default::default()
        },
        skip_within: Duration::from_secs(300),
        concurrency: 2,
        warm_timeout: Duration::from_secs(1800),
        job_retries: 1,
    }
}

async fn audit_rows(store: &Store, action: &str) -> Vec<audit::AuditRow> {
    audit::query(
        store,
        &AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        },
    )
    .await
    .expect("audit query")
}

/// Runs an ACL command on every node (ACLs are per node in a cluster).
fn acl_everywhere(r: &AnyRedis, words: &[&str]) {
    match r {
        AnyRedis::Standalone(s) => s.cmd::<()>(words),
        AnyRedis::Cluster(c) => {
            for n in c.nodes() {
                n.cmd::<()>(words);
            }
        }
    }
}

/// A user that may read everything and write nothing.
fn create_reader(r: &AnyRedis) -> RedisTarget {
    acl_everywhere(
        r,
        &[
            "ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-@write",
        ],
    );
    RedisTarget {
        urls: r.urls(),
        username: Some("reader".into()),
        password: Some("pw".into()),
        tls_ca_file: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_acl_user_cannot_warm_or_purge_and_is_audited() {
    each_topology(async |r| {
        let (db, store) = store_with_ds().await;
        let admin = r.connect().await;
        let reader = Redis::connect(&create_reader(r))
            .await
            .expect("reader connects");

        // The admin may write; the reader is read-only from the ACL alone
        // (the grants table is empty: the bootstrap rule would allow it).
        let full = permissions::resolve_actor(&store, Some(&admin), facts(None, Limits::off()))
            .await
            .expect("actor");
        assert!(full.can_write, "{:?}", full.read_only_reason);
        let actor =
            permissions::resolve_actor(&store, Some(&reader), facts(Some("reader"), Limits::off()))
                .await
                .expect("actor");
        assert!(!actor.can_write);
        let why = actor.read_only_reason.clone().unwrap_or_default();
        assert!(
            why.contains("ACL") && why.contains("cache:{ds:0}:*"),
            "{why}"
        );
        // The probe wrote nothing.
        assert_eq!(r.dbsize(), 0);

        let jc = job_context(&reader, &store, &db, actor.clone());
        let err = jobs::submit(&jc, &[1], true)
            .await
            .expect_err("a reader may not warm");
        assert!(matches!(err, Error::PermissionDenied(_)), "{err}");
        assert_eq!(err.exit_code(), 4);

        let cancel = CancellationToken::new();
        let err = redis_admin::purge(&reader, &actor, b"cache:*", true, &cancel, |_| {})
            .await
            .expect_err("a reader may not purge");
        assert_eq!(err.exit_code(), 4, "{err}");
        audit::flush(&actor).await;

        // An actor that wrongly believes it may write gets Redis's NOPERM as
        // a refusal, never a crash.
        let mut liar = Actor::new(store.identity(), "test", Origin::Cli);
        liar.audit = Some(AuditSink::new(store.clone()));
        admin
            .query::<()>("seed", redis::cmd("SET").arg("cache:{ds:1}:x").arg("1"))
            .await
            .expect("seed");
        let err = redis_admin::purge(&reader, &liar, b"cache:*", true, &cancel, |_| {})
            .await
            .expect_err("NOPERM");
        assert!(matches!(err, Error::RedisPermission { .. }), "{err}");
        assert_eq!(err.exit_code(), 4);

        // A read-only instance runs no scheduler and takes no lease.
        let sched = Scheduler::new(jc.clone(), SchedulerConfig::new("gui"));
        let err = sched.step().await.expect_err("read-only scheduler");
        assert_eq!(err.exit_code(), 4);
        let leader: i64 = admin
            .query("exists", redis::cmd("EXISTS").arg(keys::leader()))
            .await
            .expect("exists");
        assert_eq!(leader, 0);

        let denied = audit_rows(&store, "permission_denied").await;
        for attempted in ["warm the cache", "purge keys"] {
            assert!(
                denied.iter().any(|row| row.params["attempted"] == attempted
                    && row.redis_user.as_deref() == Some("reader")
                    && row.result == "denied"),
                "no denied row for {attempted}: {denied:#?}"
            );
        }

        // The CLI: exit 4, one line, and audited with origin cli.
        let urls = r
            .urls()
            .iter()
            .map(|u| u.replace("redis://", "redis://reader:pw@"))
            .collect::<Vec<_>>()
            .join(",");
        let cli = CliRunner::new().database(db.url()).redis(urls);
        let out = cli.run(&["warm", "--datasource", "1"]).code(4);
        assert!(
            out.stderr.contains("permission denied") && out.stderr.contains("ACL"),
            "{out}"
        );
        cli.run(&["purge", "cache:*", "--yes"]).code(4);
        let rows = audit_rows(&store, "permission_denied").await;
        let cli_rows: Vec<_> = rows.iter().filter(|r| r.origin == "cli").collect();
        assert!(cli_rows.len() >= 2, "{rows:#?}");
        let out = cli.run(&["grant", "list", "--json"]).success().json();
        assert_eq!(
            out["you"]["permissions"],
            serde_json::json!(["settings:read:all"])
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_who_writes_after_the_bootstrap() {
    let redis_server = RedisServer::start();
    let redis = redis_server.connect().await;
    let (db, store) = store_with_ds().await;
    let me = store.identity().to_string();

    let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
        .await
        .expect("actor");
    assert!(
        actor.can_write,
        "bootstrap: an empty grants table lets everyone write"
    );
    let list = grants::list(&store, &actor).await.expect("list");
    assert!(list.bootstrap);

    // The first grant keeps its author writing.
    let change = grants::add(&store, &actor, "alice", PERM_WRITE)
        .await
        .expect("grant");
    let who: Vec<_> = change.changed.iter().map(|g| g.identity.as_str()).collect();
    assert!(
        who.contains(&"alice") && who.contains(&me.as_str()),
        "{change:?}"
    );
    assert!(change.note.is_some());
    let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
        .await
        .expect("actor");
    assert!(actor.can_write);

    // Another admin withdraws ours: grants exist, none for us.
    store.remove_grant(&me, PERM_WRITE).await.expect("remove");
    let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
        .await
        .expect("actor");
    assert!(!actor.can_write);
    assert!(
        actor
            .read_only_reason
            .as_deref()
            .unwrap_or("")
            .contains("grant")
    );

    let jc = job_context(&redis, &store, &db, actor.clone());
    assert_eq!(
        jobs::submit(&jc, &[1], true)
            .await
            .expect_err("refused")
            .exit_code(),
        4
    );
    let sel = cachedeck::cache::invalidate::Selection::default();
    let err = cachedeck::cache::invalidate::invalidate(&redis, &actor, 1, &sel)
        .await
        .expect_err("refused");
    assert_eq!(err.exit_code(), 4);
    let req = ScheduleRequest {
        datasource_id: Some(1),
        cron: "0 * * * *".into(),
        tz: None,
        before_stale: false,
    };
    assert_eq!(
        schedules::add(&store, &actor, &req)
            .await
            .expect_err("refused")
            .exit_code(),
        4
    );
    assert_eq!(
        grants::add(&store, &actor, &me, PERM_WRITE)
            .await
            .expect_err("refused")
            .exit_code(),
        4
    );
    let input = DatasourceInput {
        id: 2,
        name: "Two".into(),
        source_url: None,
        source_password: None,
        sql: "SELECT * FROM src".into(),
        stale_after_secs: 60,
        ttl_secs: 60,
        enabled: true,
        statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    };
    assert_eq!(
        cachedeck::governance::datasources::add(&store, &actor, &input)
            .await
            .expect_err("refused")
            .exit_code(),
        4
    );
    let denied = audit_rows(&store, "permission_denied").await;
    for attempted in [
        "warm the cache",
        "invalidate the cache",
        "change schedules",
        "change permission grants",
        "add a datasource",
    ] {
        assert!(
            denied
                .iter()
                .any(|r| r.params["attempted"] == attempted && r.db_user == me),
            "no denied row for {attempted}: {denied:#?}"
        );
    }
    // The grant change that worked is in the log too.
    let changed = audit_rows(&store, "grant_changed").await;
    assert_eq!(changed.len(), 1, "{changed:#?}");
    assert_eq!(changed[0].params["identity"], "alice");

    // The CLI agrees: exit 4 for a write, the list says why.
    let cli = CliRunner::new()
        .database(db.url())
        .redis(redis_server.url());
    cli.run(&["warm", "--datasource", "1"]).code(4);
    cli.run(&[
        "schedule",
        "add",
        "--datasource",
        "1",
        "--cron",
        "0 * * * *",
    ])
    .code(4);
    let list = cli.run(&["grant", "list", "--json"]).success().json();
    assert_eq!(list["bootstrap"], false);
    assert!(
        list["you"]["readOnlyReason"]
            .as_str()
            .unwrap_or("")
            .contains("grant"),
        "{list}"
    );

    // Removing the last write grant brings the bootstrap rule back.
    store
        .remove_grant("alice", PERM_WRITE)
        .await
        .expect("remove");
    let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
        .await
        .expect("actor");
    assert!(actor.can_write);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_processes_never_exceed_a_rate_limit() {
    each_topology(async |r| {
        // Two processes' worth of separate connections racing one window.
        let a = r.connect().await;
        let b = r.connect().await;
        let attempts = |redis: Redis| async move {
            let mut allowed = 0;
            let mut refused = Vec::new();
            for _ in 0..10 {
                let d = ratelimit::take(&redis, "warm", "alice", 7, ratelimit::WINDOW, 1)
                    .await
                    .expect("take");
                if d.allowed {
                    allowed += 1;
                } else {
                    refused.push(d);
                }
            }
            (allowed, refused)
        };
        let ((na, ra), (nb, rb)) = tokio::join!(attempts(a.clone()), attempts(b.clone()));
        assert_eq!(na + nb, 7, "the window allowed {} of 20", na + nb);
        for d in ra.iter().chain(&rb) {
            let ms = d.retry_after_ms.expect("says when it frees");
            assert!(ms > 3_500_000 && ms <= 3_600_000, "{ms}");
        }

        // Several units at once: all or none.
        let take = |n| ratelimit::take(&a, "warm", "bob", 7, ratelimit::WINDOW, n);
        assert!(take(5).await.expect("take").allowed);
        let d = take(3).await.expect("take");
        assert!(
            !d.allowed && d.used == 5 && d.retry_after_ms.is_some(),
            "{d:?}"
        );
        assert!(take(2).await.expect("take").allowed);
        let d = ratelimit::take(&a, "warm", "carol", 7, ratelimit::WINDOW, 8)
            .await
            .expect("take");
        assert!(
            !d.allowed && d.retry_after_ms.is_none(),
            "more than the limit at once: {d:?}"
        );

        // Through an actor: refused with exit 5 saying when; schedules don't count.
        let mut actor = Actor::new("dave", "test", Origin::Cli);
        actor.limits = Limits {
            warm_per_hour: 3,
            invalidate_per_hour: 0,
        };
        ratelimit::consume(&a, &actor, RateAction::Warm, 3, None)
            .await
            .expect("within");
        let err = ratelimit::consume(&b, &actor, RateAction::Warm, 1, Some(1))
            .await
            .expect_err("over");
        assert_eq!(err.exit_code(), 5);
        let text = err.to_string();
        assert!(
            text.contains("allowed again in") && text.contains("frees at"),
            "{text}"
        );
        ratelimit::consume(&a, &actor, RateAction::Invalidate, 50, None)
            .await
            .expect("0 turns the limit off");
        let mut scheduled = actor.clone();
        scheduled.origin = Origin::Schedule;
        ratelimit::consume(&a, &scheduled, RateAction::Warm, 5, None)
            .await
            .expect("scheduled warms don't count");

        // The CLI binary, four in a row (an invalidation holds the
        // datasource's lock, so parallel ones would be refused as busy),
        // with the env var limit: exactly two pass.
        let (db, store) = store_with_ds().await;
        let cli = CliRunner::new()
            .database(db.url())
            .redis(r.url_arg())
            .env("CACHEDECK_INVALIDATE_RATE_LIMIT", "2");
        let args = ["invalidate", "--datasource", "1"];
        let mut outs = Vec::new();
        for _ in 0..4 {
            outs.push(cli.run_async(&args).await);
        }
        let ok = outs.iter().filter(|o| o.code == 0).count();
        let limited: Vec<_> = outs.iter().filter(|o| o.code == 5).collect();
        assert_eq!(
            ok,
            2,
            "{}",
            outs.iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(limited.len(), 2);
        for o in limited {
            assert!(o.stderr.contains("allowed again in"), "{o}");
        }
        assert_eq!(audit_rows(&store, "rate_limited").await.len(), 2);
        assert_eq!(audit_rows(&store, "cache_invalidated").await.len(), 2);
    })
    .await;
}

fn minute_after(ms: i64) -> i64 {
    (ms / 60_000 + 1) * 60_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_and_a_window_fire_each_tick_once() {
    each_topology(async |r| {
        let (db, store) = store_with_ds().await;
        let admin = r.connect().await;
        let actor = permissions::resolve_actor(&store, Some(&admin), facts(None, Limits::off()))
            .await
            .expect("actor");
        let req = ScheduleRequest {
            datasource_id: Some(1),
            cron: "* * * * *".into(),
            tz: Some("Europe/Berlin".into()),
            before_stale: false,
        };
        let s = schedules::add(&store, &actor, &req)
            .await
            .expect("schedule");
        assert_eq!(s.next_runs.len(), schedules::PREVIEW_RUNS);
        let id = s.schedule.id;

        // The claim itself: three connections, one minute, one winner.
        let conns = [r.connect().await, r.connect().await, r.connect().await];
        let claims = futures::future::join_all(
            conns
                .iter()
                .enumerate()
                .map(|(i, c)| scheduler::claim_tick(c, 999, 60_000 * 1000, ["x", "y", "z"][i])),
        )
        .await;
        assert_eq!(
            claims
                .into_iter()
                .map(|c| c.expect("claim") as u32)
                .sum::<u32>(),
            1
        );

        // Two agents and a GUI backend, each with its own connection.
        let mk = |redis: &Redis, kind: &str| {
            let mut a = actor.clone();
            a.origin = if kind == "gui" {
                Origin::Gui
            } else {
                Origin::Agent
            };
            Scheduler::new(
                job_context(redis, &store, &db, a),
                SchedulerConfig::new(kind),
            )
        };
        let scheds = [
            mk(&conns[0], "agent"),
            mk(&conns[1], "agent"),
            mk(&conns[2], "gui"),
        ];
        let base = minute_after(s.schedule.created_at_ms);
        let mut fired_ticks = Vec::new();
        let mut ended = Vec::new();
        for k in 0..4 {
            if k == 2 {
                // A leader hand-over in the middle.
                admin
                    .query::<()>("drop the lease", redis::cmd("DEL").arg(keys::leader()))
                    .await
                    .expect("del");
            }
            let now = base + k * 60_000 + 7_000;
            let (x, y, z) = tokio::join!(
                scheds[0].step_at(now),
                scheds[1].step_at(now),
                scheds[2].step_at(now)
            );
            let reports = [x.expect("step"), y.expect("step"), z.expect("step")];
            assert_eq!(
                reports.iter().filter(|r| r.leader).count(),
                1,
                "{reports:#?}"
            );
            let fired: Vec<_> = reports.iter().flat_map(|r| r.fired.clone()).collect();
            assert_eq!(fired.len(), 1, "tick {k}: {reports:#?}");
            assert_eq!(fired[0].schedule_id, id);
            assert_eq!(fired[0].tick_ms, base + k * 60_000);
            assert!(reports.iter().all(|r| r.missed.is_empty()));
            fired_ticks.push(fired[0].tick_ms);
            // Replaying the same minute fires nothing.
            let again = scheds[(k as usize + 1) % 3]
                .step_at(now + 1_000)
                .await
                .expect("step");
            assert!(again.fired.is_empty(), "{again:#?}");
            for s in &scheds {
                ended.extend(s.wait_jobs().await);
            }
        }
        assert_eq!(ended.len(), 4);
        assert_eq!(
            ended
                .iter()
                .filter(|j| j.state == JobState::Succeeded)
                .count(),
            1,
            "{ended:#?}"
        );
        assert_eq!(
            ended
                .iter()
                .filter(|j| j.state == JobState::Skipped)
                .count(),
            3,
            "{ended:#?}"
        );
        assert!(ended.iter().all(|j| j.origin == "schedule"));
        assert_eq!(audit_rows(&store, "schedule_fired").await.len(), 4);
        assert_eq!(audit_rows(&store, "cache_warm_initiated").await.len(), 4);
        let sched = store.schedule(id).await.expect("schedule");
        assert_eq!(sched.last_run_ms, fired_ticks.last().copied());

        // Nobody was up for half an hour: the runs are reported, once.
        let last = *fired_ticks.last().expect("ticks");
        let later = last + 30 * 60_000 + 3_000;
        let mut reports = Vec::new();
        for s in &scheds {
            reports.push(s.step_at(later).await.expect("step"));
        }
        let missed: Vec<_> = reports.iter().flat_map(|r| r.missed.clone()).collect();
        assert_eq!(missed.len(), 1, "{reports:#?}");
        // Runs older than the catch-up window were missed; the rest run as one.
        let catch_up = schedules::CATCH_UP.as_secs() as i64 / 60;
        assert_eq!(missed[0].count as i64, 30 - catch_up - 1, "{missed:?}");
        let fired: Vec<_> = reports.iter().flat_map(|r| r.fired.clone()).collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].coalesced as i64, catch_up);
        for s in &scheds {
            assert!(
                s.step_at(later + 2_000)
                    .await
                    .expect("step")
                    .missed
                    .is_empty()
            );
            s.wait_jobs().await;
        }
        let rows = audit_rows(&store, "schedule_missed").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].params["missed"], missed[0].count);
        let listed = schedules::list(&store, later).await.expect("list");
        assert_eq!(listed[0].schedule.missed_runs as u64, missed[0].count);
        assert_eq!(listed[0].unreported_missed_runs, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_agent_was_killed_is_reported_and_cleaned_by_the_next_leader() {
    each_topology(async |r| {
        let (db, store) = store_with_ds().await;
        let redis = r.connect().await;
        let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
            .await
            .expect("actor");
        let now = redis.time_ms().await.expect("time");
        // What a killed agent leaves: a running job with a stale heartbeat,
        // its warm lock (still leased for a moment) and shadow keys.
        let job = JobSnapshot {
            job_id: "deadbeef0001".into(),
            datasource_id: 1,
            datasource_name: "Test 1".into(),
            state: JobState::Running,
            queued_at: jobs::iso(now - 90_000),
            started_at: Some(jobs::iso(now - 80_000)),
            owner: store.identity().into(),
            origin: "agent".into(),
            ..Default::default()
        };
        store.save_job(&job.to_record()).await.expect("history");
        let g = GroupKey {
            measure: "Charges".into(),
            practice: "1".into(),
            provider: Some("1".into()),
            frequency: "Monthly".into(),
        };
        let live = keys::entry(1, Gen::Live, &g);
        let idx = keys::SecondaryIndex::for_group(&g)[0].key(1, Gen::Live);
        let mut p = redis::pipe();
        p.cmd("HSET")
            .arg(keys::job(&job.job_id))
            .arg("data")
            .arg(serde_json::to_string(&job).expect("json"))
            .arg("heartbeat")
            .arg(now - 60_000)
            .ignore();
        p.cmd("SADD")
            .arg(keys::jobs_live())
            .arg(&job.job_id)
            .ignore();
        redis.pipe::<()>("seed job", &p).await.expect("seed job");
        // The dead warm's shadow generation (fencing number 999), registered
        // as every warm registers its own.
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(keys::entry(1, Gen::Shadow(999), &g))
            .arg("[]")
            .ignore();
        p.cmd("SADD")
            .arg(keys::master_index(1, Gen::Shadow(999)))
            .arg(&live)
            .ignore();
        p.cmd("SADD")
            .arg(keys::index_list(1, Gen::Shadow(999)))
            .arg(&idx)
            .ignore();
        p.cmd("SADD")
            .arg(keys::shadow_of_index(1, 999, &idx).expect("shadow idx"))
            .arg(&live)
            .ignore();
        p.cmd("ZADD")
            .arg(keys::shadow_registry(1))
            .arg("+inf")
            .arg(999)
            .ignore();
        p.cmd("SET")
            .arg(keys::warm_lock(1))
            .arg(&job.job_id)
            .arg("PX")
            .arg(1500)
            .ignore();
        redis
            .pipe::<()>("seed shadow", &p)
            .await
            .expect("seed shadow");

        let next_leader = Scheduler::new(
            job_context(&redis, &store, &db, actor),
            SchedulerConfig::new("agent"),
        );
        // The lock's lease has not run out: reported as waiting, untouched.
        let report = next_leader.step().await.expect("step");
        assert!(report.leader);
        assert_eq!(report.abandoned_waiting, vec![job.job_id.clone()]);
        assert!(shadow::exists(&redis, 1).await.expect("exists"));

        tokio::time::sleep(Duration::from_millis(1700)).await;
        let report = next_leader.step().await.expect("step");
        assert_eq!(report.abandoned.len(), 1, "{report:#?}");
        assert_eq!(report.abandoned[0].shadow_entries_removed, 1);
        assert_eq!(report.abandoned[0].shadow_indexes_removed, 1);
        assert!(!shadow::exists(&redis, 1).await.expect("exists"));
        let still_live: bool = redis
            .query(
                "sismember",
                redis::cmd("SISMEMBER")
                    .arg(keys::jobs_live())
                    .arg(&job.job_id),
            )
            .await
            .expect("sismember");
        assert!(!still_live);
        let lock: Option<String> = redis
            .query("get", redis::cmd("GET").arg(keys::warm_lock(1)))
            .await
            .expect("get");
        assert_eq!(lock, None);
        let rec = jobs::read(&redis, &job.job_id)
            .await
            .expect("read")
            .expect("record");
        assert_eq!(rec.state, JobState::Failed);
        let cause = format!(
            "{} (last heartbeat {})",
            scheduler::ABANDONED_CAUSE,
            jobs::iso(now - 60_000)
        );
        assert_eq!(rec.error.as_deref(), Some(cause.as_str()));
        let hist = store.recent_jobs(Some(1), 5).await.expect("history");
        assert_eq!(hist[0].state, "failed");
        assert_eq!(hist[0].error.as_deref(), Some(cause.as_str()));
        let rows = audit_rows(&store, "job_abandoned").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].params["jobId"], job.job_id.as_str());
        // Reported once.
        assert!(next_leader.step().await.expect("step").abandoned.is_empty());
    })
    .await;
}

/// Accepts one HTTP request, answers `status`, and returns its body.
async fn one_request(listener: tokio::net::TcpListener, status: &'static str) -> String {
    let (mut sock, _) = listener.accept().await.expect("accept");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    sock.write_all(reply.as_bytes()).await.expect("reply");
    let text = String::from_utf8_lossy(&buf).to_string();
    assert!(
        text.starts_with("POST /hooks/T1/B2/secret HTTP/1.1\r\n"),
        "{text}"
    );
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receives_a_health_alert_once_per_interval() {
    each_topology(async |r| {
        // Datasource 1 is registered and never warmed: an error-level "cold" issue.
        let (db, store) = store_with_ds().await;
        let redis = r.connect().await;
        let actor = permissions::resolve_actor(&store, Some(&redis), facts(None, Limits::off()))
            .await
            .expect("actor");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = tokio::spawn(one_request(listener, "200 OK"));
        let mut cfg = SchedulerConfig::new("agent");
        cfg.health_every = Duration::ZERO;
        cfg.alerts = Some(alerts::AlertConfig {
            webhook: format!("http://127.0.0.1:{port}/hooks/T1/B2/secret"),
            interval: Duration::from_secs(3600),
            profile: "prod".into(),
        });
        let sched = Scheduler::new(job_context(&redis, &store, &db, actor.clone()), cfg.clone());
        let report = sched.step().await.expect("step");
        let outcome = report.alerts.expect("a health check ran");
        assert!(outcome.sent.contains(&"cold:1".to_string()), "{outcome:?}");
        let body = tokio::time::timeout(Duration::from_secs(10), received)
            .await
            .expect("the webhook was called")
            .expect("listener");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
        let text = json["text"].as_str().expect("Slack-compatible text");
        assert!(
            text.contains("[prod]") && text.contains("DS #1") && text.contains("cold"),
            "{text}"
        );

        // Within the interval: not again (the listener is gone; a POST would fail).
        let report = sched.step().await.expect("step");
        let outcome = report.alerts.expect("checked");
        assert!(
            outcome.sent.is_empty() && outcome.suppressed.contains(&"cold:1".to_string()),
            "{outcome:?}"
        );

        // A webhook that fails frees the slot, so the next round tries again.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let failing = tokio::spawn(one_request(listener, "500 Internal Server Error"));
        let mut cfg2 = cfg.clone();
        cfg2.alerts = Some(alerts::AlertConfig {
            webhook: format!("http://127.0.0.1:{port}/hooks/T1/B2/secret"),
            interval: Duration::from_secs(3600),
            profile: "staging".into(),
        });
        ratelimit::reset(&redis, "alert", "cold:1")
            .await
            .expect("reset");
        scheduler::resign(&redis, sched.instance_id())
            .await
            .expect("resign");
        let report = Scheduler::new(job_context(&redis, &store, &db, actor), cfg2)
            .step()
            .await
            .expect("step");
        failing.await.expect("listener");
        let outcome = report.alerts.expect("checked");
        assert!(
            outcome.failed.contains(&"cold:1".to_string()),
            "{outcome:?}"
        );
        let d = ratelimit::take(&redis, "alert", "cold:1", 1, Duration::from_secs(3600), 1)
            .await
            .expect("take");
        assert!(d.allowed, "a failed alert must not hold its slot");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_exports_and_prunes_on_both_stores() {
    for db in AnyDb::both() {
        let store = Store::connect(&db.url()).await.expect("store");
        let mut actor = Actor::new(store.identity(), "prod", Origin::Gui);
        actor.redis_user = Some("cache-admin".into());
        let rec = |action: &'static str, ds: Option<i64>| {
            let (store, actor) = (store.clone(), actor.clone());
            async move {
                audit::record(
                    &store,
                    &actor,
                    action,
                    ds,
                    serde_json::json!({"n": 1, "text": "a,\"b\""}),
                    "ok",
                )
                .await
                .expect("record")
            }
        };
        rec("cache_warm_initiated", Some(1)).await;
        rec("cache_invalidated", Some(2)).await;
        rec("keys_purged", None).await;
        let all = audit::query(&store, &AuditFilter::default())
            .await
            .expect("query");
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].action, "keys_purged", "newest first");
        let by_ds = audit::query(
            &store,
            &AuditFilter {
                datasource_id: Some(2),
                ..Default::default()
            },
        )
        .await
        .expect("query");
        assert_eq!(by_ds.len(), 1);
        assert_eq!(by_ds[0].action, "cache_invalidated");
        let os_name = actor.os_user.split('@').next().expect("user").to_string();
        for user in [actor.identity.clone(), "cache-admin".into(), os_name] {
            let rows = audit::query(
                &store,
                &AuditFilter {
                    user: Some(user.clone()),
                    ..Default::default()
                },
            )
            .await
            .expect("query");
            assert_eq!(rows.len(), 3, "by user {user}");
        }
        let none = audit::query(
            &store,
            &AuditFilter {
                user: Some("nobody".into()),
                since_ms: Some(0),
                ..Default::default()
            },
        )
        .await
        .expect("query");
        assert!(none.is_empty());
        assert!(
            audit::query(
                &store,
                &AuditFilter {
                    action: Some("no_such_action".into()),
                    ..Default::default()
                }
            )
            .await
            .is_err()
        );

        let mut csv_out = Vec::new();
        audit::export_csv(&all, &mut csv_out).expect("csv");
        let mut reader = csv::Reader::from_reader(csv_out.as_slice());
        let headers = reader.headers().expect("headers").clone();
        assert_eq!(&headers[2], "action");
        let records: Vec<csv::StringRecord> =
            reader.records().map(|r| r.expect("record")).collect();
        assert_eq!(records.len(), 3);
        let params: serde_json::Value = serde_json::from_str(&records[0][9]).expect("params JSON");
        assert_eq!(params["text"], "a,\"b\"");
        let mut json_out = Vec::new();
        audit::export_json(&all, &mut json_out).expect("json");
        let back: serde_json::Value = serde_json::from_slice(&json_out).expect("json");
        assert_eq!(back.as_array().expect("array").len(), 3);
        assert_eq!(back[0]["redisUser"], "cache-admin");

        // Retention: rows older than the period go, and the prune is itself
        // audited. Postgres stamps rows with its own now(), so the old row is
        // back-dated by hand.
        let id = store
            .append_audit(&cachedeck::store::AuditInsert {
                at_ms: cachedeck::store::now_ms(),
                action: "cache_invalidated".into(),
                datasource_id: None,
                os_user: "old@host".into(),
                db_user: "old".into(),
                redis_user: None,
                profile: "prod".into(),
                origin: "cli".into(),
                params: "{}".into(),
                result: "ok".into(),
                detail: None,
            })
            .await
            .expect("old row");
        let old_ms = cachedeck::store::now_ms() - 400 * 24 * 3600 * 1000;
        match &db {
            AnyDb::Postgres(pg) => {
                let pool = pg.pool().await;
                sqlx::query("UPDATE cachedeck.audit_log SET at_ms = $1 WHERE id = $2")
                    .bind(old_ms)
                    .bind(id)
                    .execute(&pool)
                    .await
                    .expect("back-date");
                pool.close().await;
            }
            AnyDb::Sqlite(f) => {
                let pool = f.pool().await;
                sqlx::query("UPDATE audit_log SET at_ms = $1 WHERE id = $2")
                    .bind(old_ms)
                    .bind(id)
                    .execute(&pool)
                    .await
                    .expect("back-date");
                pool.close().await;
            }
        }
        let short = audit::prune(
            &store,
            &actor,
            std::time::Duration::from_secs(7 * 24 * 3600),
        )
        .await
        .expect_err("7 days is below the minimum");
        assert!(short.to_string().contains("at least 30 days"), "{short}");
        assert_eq!(
            audit::prune(&store, &actor, audit::DEFAULT_RETENTION)
                .await
                .expect("prune"),
            1
        );
        let after = audit::query(&store, &AuditFilter::default())
            .await
            .expect("query");
        assert_eq!(after.len(), 4, "{after:?}");
        assert_eq!(after[0].action, "audit_pruned");
        assert_eq!(after[0].params["deleted"], 1);

        // Grants and schedules work on this store too.
        let mut writer = actor.clone();
        writer.audit = Some(AuditSink::new(store.clone()));
        grants::add(&store, &writer, "someone", PERM_WRITE)
            .await
            .expect("grant");
        assert_eq!(store.grants().await.expect("grants").len(), 2);
        store
            .add_datasource(&DatasourceInput {
                id: 1,
                name: "One".into(),
                source_url: None,
                source_password: None,
                sql: "SELECT 1".into(),
                stale_after_secs: 60,
                ttl_secs: 60,
                enabled: true,
                statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
            })
            .await
            .expect("ds");
        let s = schedules::add(
            &store,
            &writer,
            &ScheduleRequest {
                datasource_id: None,
                cron: String::new(),
                tz: None,
                before_stale: true,
            },
        )
        .await
        .expect("schedule");
        assert_eq!(s.schedule.cron, schedules::BEFORE_STALE_DEFAULT_CRON);
        assert_eq!(s.target, "all enabled datasources");
        schedules::remove(&store, &writer, s.schedule.id)
            .await
            .expect("remove");
        assert_eq!(audit_rows(&store, "schedule_changed").await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_schedules_grants_and_reads_the_audit_log() {
    let redis = RedisServer::start();
    let (db, _store) = store_with_ds().await;
    let cli = CliRunner::new().database(db.url()).redis(redis.url());

    let p = cli
        .run(&[
            "schedule",
            "preview",
            "--cron",
            "0 6 * * 1-5",
            "--tz",
            "Europe/Berlin",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(p["nextRuns"].as_array().expect("runs").len(), 5);
    assert!(
        p["nextRuns"][0]
            .as_str()
            .expect("run")
            .contains("T06:00:00+0"),
        "{p}"
    );
    cli.run(&[
        "schedule",
        "add",
        "--datasource",
        "1",
        "--cron",
        "0 */4 * * * *",
    ])
    .code(2)
    .failure_one_line();
    cli.run(&[
        "schedule",
        "add",
        "--datasource",
        "1",
        "--cron",
        "0 * * * *",
        "--tz",
        "Nowhere/Land",
    ])
    .code(2);
    cli.run(&[
        "schedule",
        "add",
        "--datasource",
        "9",
        "--cron",
        "0 * * * *",
    ])
    .code(1);
    let added = cli
        .run(&[
            "schedule",
            "add",
            "--datasource",
            "1",
            "--cron",
            "0 */4 * * *",
            "--tz",
            "Europe/Berlin",
            "--json",
        ])
        .success()
        .json();
    let id = added["id"].as_i64().expect("id");
    assert_eq!(added["tz"], "Europe/Berlin");
    let human = cli.run(&["schedule", "list"]).success();
    assert!(
        human.stdout.contains("0 */4 * * *") && human.stdout.contains("next:"),
        "{human}"
    );
    let list = cli.run(&["schedule", "list", "--json"]).success().json();
    assert_eq!(list[0]["nextRunsUtc"].as_array().expect("runs").len(), 5);
    cli.run(&["schedule", "remove", "--id", &id.to_string()])
        .success();
    cli.run(&["schedule", "remove", "--id", &id.to_string()])
        .code(2);

    cli.run(&[
        "grant",
        "add",
        "--identity",
        "alice",
        "--permission",
        "settings:fly:all",
    ])
    .code(2);
    let g = cli
        .run(&["grant", "add", "--identity", "alice", "--json"])
        .success()
        .json();
    assert_eq!(g["changed"].as_array().expect("changed").len(), 2, "{g}");
    let l = cli.run(&["grant", "list", "--json"]).success().json();
    assert_eq!(l["bootstrap"], false);
    assert_eq!(l["grants"].as_array().expect("grants").len(), 2);

    cli.run(&["datasource", "edit", "--id", "1", "--name", "Renamed"])
        .success();

    let rows = cli.run(&["audit", "--json"]).success().json();
    let actions: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["action"].as_str().expect("action"))
        .collect();
    for a in ["schedule_changed", "grant_changed", "datasource_changed"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let filtered = cli
        .run(&[
            "audit",
            "--action",
            "schedule_changed",
            "--datasource",
            "1",
            "--since",
            "1h",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(filtered.as_array().expect("rows").len(), 2, "{filtered}");
    let csv_text = cli
        .run(&["audit", "--csv", "--action", "grant_changed"])
        .success()
        .stdout;
    assert!(
        csv_text.starts_with("\"id\",\"at\",\"action\","),
        "{csv_text}"
    );
    assert_eq!(csv_text.lines().count(), 2);
    let file = cli.config_dir().join("audit.csv");
    cli.run(&["audit", "-o", file.to_str().expect("path")])
        .success();
    let written = std::fs::read_to_string(&file).expect("export");
    assert!(written.lines().count() >= 4, "{written}");
    cli.run(&["audit", "--action", "bogus"]).code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_headless_and_stops_cleanly_on_sigterm() {
    let redis_server = RedisServer::start();
    let redis = redis_server.connect().await;
    let (db, _store) = store_with_ds().await;
    let cli = CliRunner::new()
        .database(db.url())
        .redis(redis_server.url())
        .env("RUST_LOG", "cachedeck=info");
    let mut cmd = cli.tokio_command(&[
        "agent",
        "--poll-secs",
        "1",
        "--instance",
        "agent-under-test",
    ]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the agent");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut log = String::new();
    // Wait until it leads.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let holder: Option<String> = redis
            .query("get", redis::cmd("GET").arg(keys::leader()))
            .await
            .expect("get");
        if holder.as_deref() == Some("agent-under-test") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the agent stops within 30 s")
        .expect("wait");
    let _ = stderr.read_to_string(&mut log).await;
    assert_eq!(exit.code(), Some(0), "{log}");
    assert!(log.contains("started") && log.contains("stopped"), "{log}");
    let holder: Option<String> = redis
        .query("get", redis::cmd("GET").arg(keys::leader()))
        .await
        .expect("get");
    assert_eq!(holder, None, "the lease is given up on shutdown");
}
