//! Warm jobs across processes: a dead job is shown stale and cleaned up
//! without an agent, a stalled job never pushes the global limit over, and
//! a long queue claims in order while each claim reads only its head.
//! Real `cachedeck` processes (killed and stopped with signals), real Redis
//! (standalone and cluster) and Postgres.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cachedeck::cache::shadow;
use cachedeck::jobs::{self, JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, GroupKey};
use cachedeck::redis_conn::Redis;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::{AnyRedis, CliRunner, TestDb, WarmFixture};

/// Short heartbeat staleness and slot lease for every process of these
/// tests (the defaults are 30 s and 15 s).
const STALE_MS: &str = "2500";
const SLOT_LEASE_MS: &str = "4000";

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn standalone() {
                $body(&AnyRedis::standalone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                $body(&AnyRedis::cluster()).await;
            }
        }
    };
}

pub(crate) async fn exec(url: &str, sql: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    sqlx::query(sql).execute(&pool).await.expect("execute");
    pool.close().await;
}

/// A CLI on `r` and `db` through a profile with the given concurrency limit,
/// no rate limits and the tests' short timings.
pub(crate) fn cli_for(r: &AnyRedis, db: &TestDb, concurrency: u32) -> CliRunner {
    cli_with(r, db, concurrency, "")
}

/// [`cli_for`] with `extra` lines appended to the profile.
pub(crate) fn cli_with(r: &AnyRedis, db: &TestDb, concurrency: u32, extra: &str) -> CliRunner {
    let cli = CliRunner::new()
        .env("CACHEDECK_JOB_STALE_MS", STALE_MS)
        .env("CACHEDECK_SLOT_LEASE_MS", SLOT_LEASE_MS)
        .env("CACHEDECK_CLAIM_POLL_MS", "100");
    let urls: Vec<String> = r.urls().iter().map(|u| format!("{u:?}")).collect();
    cli.write_profiles(&format!(
        "default_profile = \"t\"\n[profiles.t]\nredis.urls = [{}]\ndatabase.url = {:?}\n\
         defaults.concurrency = {concurrency}\ndefaults.warm_rate_limit = 0\n\
         defaults.invalidate_rate_limit = 0\n{extra}",
        urls.join(", "),
        db.url()
    ));
    cli
}

/// Demo data (3,000 rows) and datasources `ids` whose source query takes
/// about 2 ms a row (6 s in all): Postgres waits in every row.
pub(crate) async fn slow_datasources(cli: &CliRunner, db: &TestDb, ids: &[i64]) {
    cli.run_async(&["demo-data", "--rows", "3000"])
        .await
        .success();
    exec(
        db.url(),
        "CREATE OR REPLACE FUNCTION slow_row() RETURNS int VOLATILE LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.002); RETURN 1; END $$",
    )
    .await;
    for id in ids {
        let id = id.to_string();
        cli.run_async(&[
            "datasource",
            "add",
            "--id",
            &id,
            "--name",
            &format!("Slow {id}"),
            "--sql",
            "SELECT measure, practice_uid, provider_uid, frequency, amount, slow_row() AS slow FROM analytics_demo",
        ])
        .await
        .success();
    }
}

pub(crate) async fn status(cli: &CliRunner) -> Value {
    cli.run_async(&["status", "--json"]).await.success().json()
}

/// The active job of datasource `ds` in a status, if any.
pub(crate) fn active_of(st: &Value, ds: i64) -> Option<&Value> {
    st["activeJobs"]
        .as_array()?
        .iter()
        .find(|j| j["datasourceId"] == ds)
}

/// Polls `status --json` until `done` says so; returns that status.
pub(crate) async fn wait_status(
    cli: &CliRunner,
    what: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + within;
    loop {
        let st = status(cli).await;
        if done(&st) {
            return st;
        }
        assert!(
            Instant::now() < until,
            "{what} did not happen within {within:?}; last status:\n{st:#}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// What a warm writes into its shadow generation (the killed warm may not
/// have flushed a batch yet; this stands for what it had written).
pub(crate) async fn plant_shadow(redis: &Redis, ds: i64) {
    let g = GroupKey {
        measure: "Charges".into(),
        practice: "1".into(),
        provider: Some("1".into()),
        frequency: "Monthly".into(),
    };
    let live = keys::entry(ds, Gen::Live, &g);
    let mut p = redis::pipe();
    // Fencing number 999, registered as every warm registers its own.
    p.cmd("SET")
        .arg(keys::entry(ds, Gen::Shadow(999), &g))
        .arg("[]")
        .ignore();
    p.cmd("SADD")
        .arg(keys::master_index(ds, Gen::Shadow(999)))
        .arg(&live)
        .ignore();
    p.cmd("ZADD")
        .arg(keys::shadow_registry(ds))
        .arg("+inf")
        .arg(999)
        .ignore();
    redis
        .pipe::<()>("plant shadow", &p)
        .await
        .expect("plant shadow");
}

/// `kill -9` of a CLI warm with no agent anywhere: `status` shows the job
/// `stale` with its last heartbeat while its warm lock is leased, then ends
/// it (failed, cause stated, history and audit written, shadow keys gone),
/// and the datasource warms again.
async fn dead_job_without_agent(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 2);
    slow_datasources(&cli, &db, &[2]).await;
    let redis = r.connect().await;

    let mut warm = cli.tokio_command(&["warm", "--datasource", "2", "--json"]);
    warm.env("CACHEDECK_WARM_LEASE_MS", "8000")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = warm.spawn().expect("spawn warm");
    let st = wait_status(&cli, "the warm running", Duration::from_secs(60), |st| {
        active_of(st, 2).is_some_and(|j| j["state"] == "running")
    })
    .await;
    let job_id = active_of(&st, 2).expect("job")["jobId"]
        .as_str()
        .expect("jobId")
        .to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("wait");
    plant_shadow(&redis, 2).await;

    // Stale, with the time of its last heartbeat; not cleaned while the
    // lock's lease lasts.
    let st = wait_status(&cli, "the job shown stale", Duration::from_secs(30), |st| {
        active_of(st, 2).is_some_and(|j| j["state"] == "stale")
    })
    .await;
    let job = active_of(&st, 2).expect("stale job");
    assert_eq!(job["jobId"], job_id.as_str());
    let last = job["lastHeartbeat"].as_str().expect("lastHeartbeat");
    chrono::DateTime::parse_from_rfc3339(last).expect("lastHeartbeat is ISO-8601");
    assert!(job["heartbeatAgeMs"].as_i64().unwrap_or(0) > 2500, "{job}");
    let human = cli.run_async(&["status"]).await.success();
    assert!(
        human.stdout.contains("stale") && human.stdout.contains("last heartbeat"),
        "{human}"
    );

    // Once the lease is gone, the next status ends it.
    let st = wait_status(
        &cli,
        "the stale job cleaned up",
        Duration::from_secs(30),
        |st| active_of(st, 2).is_none(),
    )
    .await;
    let ended = st["recentJobs"]
        .as_array()
        .expect("recentJobs")
        .iter()
        .find(|j| j["jobId"] == job_id.as_str())
        .unwrap_or_else(|| panic!("job {job_id} not in the history:\n{st:#}"));
    assert_eq!(ended["state"], "failed");
    assert_eq!(ended["success"], false);
    let cause = ended["error"].as_str().unwrap_or("");
    assert!(
        cause.starts_with("its process stopped (last heartbeat ") && cause.contains(last),
        "{cause}"
    );
    assert!(
        !shadow::exists(&redis, 2).await.expect("shadow"),
        "shadow keys left behind"
    );
    for key in [keys::jobs_live(), keys::jobs_queue(), keys::jobs_slots()] {
        let n: i64 = redis
            .query(
                "count",
                redis::cmd(if key == keys::jobs_live() {
                    "SCARD"
                } else {
                    "ZCARD"
                })
                .arg(key),
            )
            .await
            .expect("count");
        assert_eq!(n, 0, "{key} still lists the job");
    }
    let ttl: i64 = redis
        .query("ttl", redis::cmd("TTL").arg(keys::job(&job_id)))
        .await
        .expect("ttl");
    assert!(
        ttl > 0 && ttl <= jobs::ENDED_TTL_SECS,
        "ended record expires: ttl {ttl}"
    );
    let audit = cli
        .run_async(&[
            "audit",
            "--since",
            "1h",
            "--action",
            "job_abandoned",
            "--json",
        ])
        .await
        .success()
        .json();
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit:#}");

    let out = cli
        .run_async(&["warm", "--datasource", "2", "--force", "--json"])
        .await
        .success()
        .json();
    assert_eq!(out["jobs"][0]["state"], "succeeded", "{out:#}");
}

both!(
    a_killed_warm_is_shown_stale_then_cleaned_up_without_an_agent,
    dead_job_without_agent
);

/// Jobs in state running or swapping in a status.
fn running(st: &Value) -> Vec<String> {
    st["activeJobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|j| j["state"] == "running" || j["state"] == "swapping")
                .map(|j| format!("{} (DS #{})", j["jobId"], j["datasourceId"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Limit 1: warm A is stopped (SIGSTOP) past its slot lease, warm B gets
/// the slot, A is resumed. At no point do two jobs run; A waits for the
/// slot again (or ends cleanly) and both datasources end warm.
async fn stalled_slot(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 1);
    slow_datasources(&cli, &db, &[2, 3]).await;
    let redis = r.connect().await;
    let spawn = |ds: &str| {
        let mut c = cli.tokio_command(&["warm", "--datasource", ds, "--json"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn warm")
    };
    let a = spawn("2");
    let a_pid = a.id().expect("pid");
    let checked = |st: &Value| {
        let r = running(st);
        assert!(
            r.len() <= 1,
            "more than one job running under a limit of 1: {r:?}\n{st:#}"
        );
    };
    wait_status(&cli, "warm A running", Duration::from_secs(60), |st| {
        checked(st);
        active_of(st, 2).is_some_and(|j| j["state"] == "running")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(a_pid, "-STOP");
    let b = spawn("3");
    let st = wait_status(
        &cli,
        "warm B running while A is stopped",
        Duration::from_secs(60),
        |st| {
            checked(st);
            active_of(st, 3).is_some_and(|j| j["state"] == "running")
        },
    )
    .await;
    assert_ne!(
        active_of(&st, 2).map(|j| j["state"].clone()),
        Some(Value::from("running"))
    );
    signal(a_pid, "-CONT");

    // Both run to their end; poll all along.
    let mut states_of_a: Vec<String> = Vec::new();
    let outs = {
        let done = tokio::spawn(async move {
            let (a, b) = tokio::join!(a.wait_with_output(), b.wait_with_output());
            (a.expect("A"), b.expect("B"))
        });
        let until = Instant::now() + Duration::from_secs(120);
        while !done.is_finished() {
            let st = status(&cli).await;
            checked(&st);
            if let Some(j) = active_of(&st, 2) {
                let s = j["state"].as_str().unwrap_or("").to_string();
                if states_of_a.last() != Some(&s) {
                    states_of_a.push(s);
                }
            }
            assert!(
                Instant::now() < until,
                "the warms did not end; last status:\n{st:#}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done.await.expect("join")
    };
    eprintln!("states of A after it resumed: {states_of_a:?}");
    let (a_out, b_out) = outs;
    let json = |o: &std::process::Output| -> Value {
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
    };
    let b_json = json(&b_out);
    assert_eq!(b_json["jobs"][0]["state"], "succeeded", "{b_json:#}");
    let a_json = json(&a_out);
    let a_state = a_json["jobs"][0]["state"].as_str().unwrap_or("");
    match a_state {
        "succeeded" => assert!(
            states_of_a.iter().any(|s| s == "paused"),
            "A finished without waiting for the slot again: {states_of_a:?}"
        ),
        "failed" => assert!(
            a_json["jobs"][0]["error"]
                .as_str()
                .unwrap_or("")
                .contains("slot"),
            "{a_json:#}"
        ),
        other => panic!("A ended {other}: {a_json:#}"),
    }
    for ds in [2, 3] {
        assert!(!shadow::exists(&redis, ds).await.expect("shadow"));
        let lock: Option<String> = redis
            .query("lock", redis::cmd("GET").arg(keys::warm_lock(ds)))
            .await
            .expect("lock");
        assert_eq!(lock, None);
    }
    let slots: i64 = redis
        .query("slots", redis::cmd("ZCARD").arg(keys::jobs_slots()))
        .await
        .expect("zcard");
    assert_eq!(slots, 0);
}

both!(a_stalled_job_never_exceeds_the_limit, stalled_slot);

/// Calls of HGET and of scripts over every master so far.
fn hget_and_script_calls(r: &AnyRedis) -> (u64, u64) {
    let infos: Vec<String> = match r {
        AnyRedis::Standalone(s) => vec![s.cmd(&["INFO", "commandstats"])],
        AnyRedis::Cluster(c) => c
            .nodes()
            .iter()
            .map(|n| n.cmd(&["INFO", "commandstats"]))
            .collect(),
    };
    let mut calls: BTreeMap<String, u64> = BTreeMap::new();
    for info in infos {
        for line in info.lines() {
            let Some((name, rest)) = line.trim().split_once(':') else {
                continue;
            };
            let Some(n) = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            *calls.entry(name.to_string()).or_default() += n;
        }
    }
    let get = |k: &str| calls.get(k).copied().unwrap_or(0);
    (
        get("cmdstat_hget"),
        get("cmdstat_evalsha") + get("cmdstat_eval"),
    )
}

/// 200 queued jobs with live heartbeats ahead of three real ones under a
/// limit of 1: the real ones wait, each claim attempt reads a bounded number
/// of job records (not the whole queue), and once the queue ahead is gone
/// they run one at a time in the order they were queued.
async fn long_queue(r: &AnyRedis) {
    let options = cachedeck::cache::warm::WarmOptions {
        lease: Duration::from_secs(5),
        ..Default::default()
    };
    let mut f = WarmFixture::new(r, options, Duration::ZERO).await;
    f.jc.concurrency = 1;
    sqlx::query(
        "CREATE TABLE src AS SELECT m AS measure, p AS practice_uid, 1 AS provider_uid, \
         'Monthly' AS frequency, p * 1.5 AS amount FROM unnest(ARRAY['Charges','Visits']) m, \
         generate_series(1, 20) p",
    )
    .execute(&f.pool)
    .await
    .expect("src");
    for id in 1..=3 {
        f.add_ds(id, &format!("Q{id}"), "SELECT * FROM src", 3600, true)
            .await;
    }
    let redis = f.redis.clone();
    let now = redis.time_ms().await.expect("time");
    // 100 dead entries (no heartbeat for long) then 100 live ones, queued
    // before the real jobs.
    let synthetic: Vec<String> = (0..200).map(|i| format!("synthetic{i:04}")).collect();
    let mut p = redis::pipe();
    for (i, id) in synthetic.iter().enumerate() {
        let snap = JobSnapshot {
            job_id: id.clone(),
            datasource_id: 100 + i as i64,
            datasource_name: format!("S{i}"),
            queued_at: jobs::iso(now - 600_000 + i as i64),
            ..Default::default()
        };
        let hb = if i < 100 { now - 600_000 } else { now };
        p.cmd("HSET")
            .arg(keys::job(id))
            .arg("data")
            .arg(serde_json::to_string(&snap).expect("json"))
            .arg("heartbeat")
            .arg(hb)
            .ignore();
        p.cmd("SADD").arg(keys::jobs_live()).arg(id).ignore();
        p.cmd("ZADD")
            .arg(keys::jobs_queue())
            .arg(now - 600_000 + i as i64)
            .arg(id)
            .ignore();
    }
    redis
        .pipe::<()>("seed queue", &p)
        .await
        .expect("seed queue");
    let alive = synthetic[100..].to_vec();
    let beat = CancellationToken::new();
    let beating = {
        let (redis, alive, stop) = (redis.clone(), alive.clone(), beat.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let now = redis.time_ms().await.expect("time");
                let mut p = redis::pipe();
                for id in &alive {
                    p.cmd("HSET")
                        .arg(keys::job(id))
                        .arg("heartbeat")
                        .arg(now)
                        .ignore();
                }
                redis.pipe::<()>("beat", &p).await.expect("beat");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let submitted = jobs::submit(&f.jc, &[1, 2, 3], true).await.expect("submit");
    let ids: Vec<String> = submitted.iter().map(|s| s.job_id.clone()).collect();
    // Started in reverse: the queue decides the order, not who asks first.
    let mut tasks = Vec::new();
    for snap in submitted.into_iter().rev() {
        let jc = f.jc.clone();
        tasks.push(tokio::spawn(async move {
            jobs::run_job(&jc, snap, CancellationToken::new(), |_| {}).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (hget0, scripts0) = hget_and_script_calls(r);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (hget1, scripts1) = hget_and_script_calls(r);
    for id in &ids {
        let s = jobs::read(&redis, id).await.expect("read").expect("record");
        assert_eq!(
            s.state,
            JobState::Queued,
            "job {id} started with live jobs ahead"
        );
    }
    let (hgets, scripts) = (hget1 - hget0, scripts1 - scripts0);
    assert!(
        scripts >= 10,
        "the jobs stopped asking for a slot ({scripts} scripts)"
    );
    let per_call = hgets as f64 / scripts as f64;
    assert!(
        per_call < 5.0,
        "each claim read {per_call:.1} job records on average ({hgets} HGET over {scripts} scripts): it walks the queue"
    );
    let queued: i64 = redis
        .query("zcard", redis::cmd("ZCARD").arg(keys::jobs_queue()))
        .await
        .expect("zcard");
    assert_eq!(queued, 103, "the dead entries at the head lost their place");

    // The live jobs ahead end: the real ones run one at a time, in order.
    beat.cancel();
    beating.await.expect("beating");
    let mut p = redis::pipe();
    for id in &alive {
        p.cmd("ZREM").arg(keys::jobs_queue()).arg(id).ignore();
        p.cmd("SREM").arg(keys::jobs_live()).arg(id).ignore();
        p.cmd("DEL").arg(keys::job(id)).ignore();
    }
    for id in &synthetic[..100] {
        p.cmd("SREM").arg(keys::jobs_live()).arg(id).ignore();
        p.cmd("DEL").arg(keys::job(id)).ignore();
    }
    redis
        .pipe::<()>("end synthetic", &p)
        .await
        .expect("end synthetic");
    let mut ended: Vec<JobSnapshot> = Vec::new();
    for t in tasks {
        ended.push(
            tokio::time::timeout(Duration::from_secs(120), t)
                .await
                .expect("the jobs did not end")
                .expect("join"),
        );
    }
    ended.sort_by_key(|s| ids.iter().position(|i| *i == s.job_id));
    for s in &ended {
        assert_eq!(s.state, JobState::Succeeded, "{s:#?}");
    }
    let ms = |t: &Option<String>| {
        chrono::DateTime::parse_from_rfc3339(t.as_deref().expect("time"))
            .expect("iso")
            .timestamp_millis()
    };
    for w in ended.windows(2) {
        assert!(
            ms(&w[0].completed_at) <= ms(&w[1].started_at),
            "job {} started before job {} ended",
            w[1].job_id,
            w[0].job_id
        );
    }
}

both!(
    a_long_queue_claims_in_order_reading_only_its_head,
    long_queue
);
