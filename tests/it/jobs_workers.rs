//! Agents as workers: `cachedeck warm --detach` queues and returns, an agent
//! runs the job; several agents share the global concurrency limit; with no
//! agent alive the CLI runs the job itself as before. Real `cachedeck`
//! processes, real Redis (standalone and cluster) and Postgres.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Child;

use cachedeck::cache::shadow;

use crate::jobs::{
    active_of, cli_for, cli_with, plant_shadow, signal, slow_datasources, status, wait_status,
};
use crate::support::{AnyRedis, CliRunner, TestDb};

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

/// Starts `cachedeck agent --instance NAME` (killed if the test fails).
pub(crate) fn start_agent(cli: &CliRunner, name: &str) -> Child {
    let mut cmd = cli.tokio_command(&["agent", "--instance", name, "--poll-secs", "1"]);
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn agent")
}

/// Stops an agent with SIGTERM and waits for it.
pub(crate) async fn stop_agent(mut agent: Child) {
    if let Some(pid) = agent.id() {
        signal(pid, "-TERM");
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), agent.wait()).await;
}

/// The instance names of the workers in a status.
pub(crate) fn worker_names(st: &Value) -> Vec<String> {
    st["workers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["instance"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The ended job `id` in a status's history, if there.
pub(crate) fn recent<'a>(st: &'a Value, id: &str) -> Option<&'a Value> {
    st["recentJobs"]
        .as_array()?
        .iter()
        .find(|j| j["jobId"] == id)
}

/// Waits until every job in `ids` is in the history; returns that status.
pub(crate) async fn wait_ended(cli: &CliRunner, ids: &[String], within: Duration) -> Value {
    wait_status(cli, "the jobs ending", within, |st| {
        ids.iter().all(|id| recent(st, id).is_some())
    })
    .await
}

fn job_ids(answer: &Value) -> Vec<String> {
    answer["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["jobId"].as_str().expect("jobId").to_string())
        .collect()
}

/// `warm --detach` with an agent alive: the CLI answers with the queued
/// job (no estimate without history) while the job is still active, the
/// agent runs it to success, and `status` lists the agent as a worker; a
/// second detached warm carries an estimate from the first.
async fn detached_submit(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 2);
    slow_datasources(&cli, &db, &[2]).await;
    let agent = start_agent(&cli, "worker-a");
    let st = wait_status(
        &cli,
        "the agent registered",
        Duration::from_secs(30),
        |st| worker_names(st) == ["worker-a"] && st["workers"][0]["leader"] == true,
    )
    .await;
    let w = &st["workers"][0];
    assert!(w["host"].as_str().is_some_and(|h| h.contains('@')), "{w}");
    assert_eq!(w["version"], env!("CARGO_PKG_VERSION"));
    let human = cli.run_async(&["status"]).await.success();
    assert!(
        human.stdout.contains("workers:") && human.stdout.contains("worker-a"),
        "{human}"
    );

    let out = cli
        .run_async(&["warm", "--datasource", "2", "--detach", "--json"])
        .await
        .success();
    let answer = out.json();
    assert_eq!(answer["jobs"][0]["state"], "queued", "{answer:#}");
    assert_eq!(answer["jobs"][0]["datasourceId"], 2);
    assert_eq!(answer["datasourcesQueued"], serde_json::json!([2]));
    assert!(answer["estimatedDurationMs"].is_null(), "{answer:#}");
    let ids = job_ids(&answer);
    // The CLI returned while the 6-second warm is still under way.
    let st = status(&cli).await;
    assert!(active_of(&st, 2).is_some(), "{st:#}");

    let st = wait_ended(&cli, &ids, Duration::from_secs(60)).await;
    let job = recent(&st, &ids[0]).expect("ended");
    assert_eq!(job["state"], "succeeded", "{job}");

    let answer = cli
        .run_async(&["warm", "--datasource", "2", "--force", "--detach", "--json"])
        .await
        .success()
        .json();
    assert!(
        answer["estimatedDurationMs"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "an estimate from the first warm: {answer:#}"
    );
    let st = status(&cli).await;
    let queued = active_of(&st, 2).expect("active");
    assert!(queued["estimatedDurationMs"].as_u64().is_some(), "{queued}");
    let ids = job_ids(&answer);
    let st = wait_ended(&cli, &ids, Duration::from_secs(60)).await;
    assert_eq!(recent(&st, &ids[0]).expect("ended")["state"], "succeeded");
    stop_agent(agent).await;
    let st = wait_status(&cli, "the agent gone", Duration::from_secs(30), |st| {
        worker_names(st).is_empty()
    })
    .await;
    assert!(st["activeJobs"].as_array().is_some_and(Vec::is_empty));
}

both!(a_detached_warm_is_run_by_an_agent, detached_submit);

/// Two agents under a concurrency limit of 1 run three detached jobs one
/// at a time: no two jobs' runs overlap in the history.
async fn two_agents_one_slot(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 1);
    slow_datasources(&cli, &db, &[2, 3, 4]).await;
    let a = start_agent(&cli, "worker-a");
    let b = start_agent(&cli, "worker-b");
    wait_status(
        &cli,
        "both agents registered",
        Duration::from_secs(30),
        |st| worker_names(st) == ["worker-a", "worker-b"],
    )
    .await;
    let answer = cli
        .run_async(&["warm", "--datasource", "2", "3", "4", "--detach", "--json"])
        .await
        .success()
        .json();
    assert_eq!(answer["datasourcesQueued"], serde_json::json!([2, 3, 4]));
    let ids = job_ids(&answer);
    assert_eq!(ids.len(), 3);
    let st = wait_ended(&cli, &ids, Duration::from_secs(120)).await;
    let mut runs: Vec<(i64, i64)> = ids
        .iter()
        .map(|id| {
            let j = recent(&st, id).expect("ended");
            assert_eq!(j["state"], "succeeded", "{j}");
            let t = |k: &str| {
                chrono::DateTime::parse_from_rfc3339(j[k].as_str().expect(k))
                    .expect("ISO-8601")
                    .timestamp_millis()
            };
            (t("startedAt"), t("completedAt"))
        })
        .collect();
    runs.sort();
    for w in runs.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "two jobs ran at once under a limit of 1: {runs:?}"
        );
    }
    stop_agent(a).await;
    stop_agent(b).await;
}

both!(
    two_agents_with_one_slot_run_jobs_one_at_a_time,
    two_agents_one_slot
);

/// No agent alive: `warm` runs the job itself as before; `warm --detach`
/// says nobody will run it yet, and the job waits (never stale) until an
/// agent starts and runs it.
async fn no_agent(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 2);
    cli.run_async(&["demo-data", "--rows", "300"])
        .await
        .success();
    let out = cli
        .run_async(&["warm", "--datasource", "1", "--json"])
        .await
        .success()
        .json();
    assert_eq!(out["jobs"][0]["state"], "succeeded", "{out:#}");
    let st = status(&cli).await;
    assert!(worker_names(&st).is_empty(), "{st:#}");

    let out = cli
        .run_async(&["warm", "--datasource", "1", "--force", "--detach", "--json"])
        .await
        .success();
    assert!(out.stderr.contains("no worker is alive"), "{out}");
    let ids = job_ids(&out.json());
    // Longer than the staleness of a heartbeat: still queued, not stale.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let st = status(&cli).await;
    let job = active_of(&st, 1).expect("still queued");
    assert_eq!(job["state"], "queued", "{job}");
    let human = cli.run_async(&["status"]).await.success();
    assert!(human.stdout.contains("waiting for a worker"), "{human}");

    let agent = start_agent(&cli, "late-worker");
    let st = wait_ended(&cli, &ids, Duration::from_secs(60)).await;
    assert_eq!(recent(&st, &ids[0]).expect("ended")["state"], "succeeded");
    stop_agent(agent).await;
}

both!(without_an_agent_the_cli_runs_the_job_itself, no_agent);

/// An agent killed with SIGKILL mid-warm: once its heartbeat is stale and
/// its warm lock's lease gone, the job is queued again (its shadow keys
/// removed) and a second agent runs it from the start to success; the
/// job's history keeps the first attempt with its cause, and the audit log
/// has it as `job_abandoned`, retried.
async fn killed_worker(r: &AnyRedis) {
    let db = TestDb::create();
    let cli =
        cli_with(r, &db, 2, "defaults.job_retries = 1\n").env("CACHEDECK_WARM_LEASE_MS", "4000");
    slow_datasources(&cli, &db, &[2]).await;
    let redis = r.connect().await;
    let mut first = start_agent(&cli, "worker-a");
    wait_status(
        &cli,
        "the first agent registered",
        Duration::from_secs(30),
        |st| worker_names(st) == ["worker-a"],
    )
    .await;
    let answer = cli
        .run_async(&["warm", "--datasource", "2", "--detach", "--json"])
        .await
        .success()
        .json();
    let ids = job_ids(&answer);
    wait_status(
        &cli,
        "worker-a running the job",
        Duration::from_secs(30),
        |st| active_of(st, 2).is_some_and(|j| j["state"] == "running" && j["worker"] == "worker-a"),
    )
    .await;
    let second = start_agent(&cli, "worker-b");
    wait_status(
        &cli,
        "the second agent registered",
        Duration::from_secs(30),
        |st| worker_names(st).contains(&"worker-b".to_string()),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("wait");
    plant_shadow(&redis, 2).await;

    let st = wait_ended(&cli, &ids, Duration::from_secs(90)).await;
    let job = recent(&st, &ids[0]).expect("ended");
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(
        job["rowsProcessed"], 3000,
        "ran again from the start: {job:#}"
    );
    let attempts = job["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{job:#}");
    assert_eq!(attempts[0]["worker"], "worker-a");
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("its process stopped")),
        "{job:#}"
    );
    assert!(
        !shadow::exists(&redis, 2).await.expect("shadow"),
        "shadow keys left behind"
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
    let row = audit.to_string();
    assert!(
        row.contains("worker-a") && row.contains("its process stopped"),
        "{audit:#}"
    );
    stop_agent(second).await;
}

both!(a_killed_agent_s_job_is_run_again_by_another, killed_worker);

/// Starts `cachedeck warm ARGS` with its standard error captured.
fn spawn_warm(cli: &CliRunner, args: &[&str]) -> Child {
    let mut cmd = cli.tokio_command(args);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().expect("spawn warm")
}

/// Waits for a spawned CLI; its exit code and standard error.
async fn finish(child: Child) -> (i32, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the CLI ends")
        .expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until datasource `ds` has a running job; its id.
async fn running_job(cli: &CliRunner, ds: i64) -> String {
    let st = wait_status(cli, "the warm running", Duration::from_secs(60), |st| {
        active_of(st, ds).is_some_and(|j| j["state"] == "running")
    })
    .await;
    active_of(&st, ds).expect("job")["jobId"]
        .as_str()
        .expect("jobId")
        .to_string()
}

/// Ctrl-C on `cachedeck warm`: with an agent alive the CLI follows the job
/// the agent runs; one Ctrl-C detaches (exit 0, the message names the
/// worker and `cachedeck status`) and the job goes on to success; two
/// Ctrl-C cancel it. With no agent alive the CLI runs the job itself and
/// Ctrl-C cancels it.
async fn ctrl_c(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = cli_for(r, &db, 2);
    slow_datasources(&cli, &db, &[2]).await;
    let agent = start_agent(&cli, "worker-a");
    wait_status(
        &cli,
        "the agent registered",
        Duration::from_secs(30),
        |st| worker_names(st) == ["worker-a"],
    )
    .await;

    let warm = spawn_warm(&cli, &["warm", "--datasource", "2"]);
    let pid = warm.id().expect("pid");
    let id = running_job(&cli, 2).await;
    signal(pid, "-INT");
    let (code, stderr) = finish(warm).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("worker-a") && stderr.contains("cachedeck status"),
        "{stderr}"
    );
    let st = wait_ended(&cli, std::slice::from_ref(&id), Duration::from_secs(60)).await;
    assert_eq!(recent(&st, &id).expect("ended")["state"], "succeeded");

    let warm = spawn_warm(&cli, &["warm", "--datasource", "2", "--force"]);
    let pid = warm.id().expect("pid");
    let id = running_job(&cli, 2).await;
    signal(pid, "-INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(pid, "-INT");
    let (code, stderr) = finish(warm).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cancel"), "{stderr}");
    let st = wait_ended(&cli, std::slice::from_ref(&id), Duration::from_secs(60)).await;
    assert_eq!(recent(&st, &id).expect("ended")["state"], "cancelled");
    stop_agent(agent).await;
    wait_status(&cli, "the agent gone", Duration::from_secs(30), |st| {
        worker_names(st).is_empty()
    })
    .await;

    let warm = spawn_warm(&cli, &["warm", "--datasource", "2", "--force"]);
    let pid = warm.id().expect("pid");
    let id = running_job(&cli, 2).await;
    signal(pid, "-INT");
    let (code, stderr) = finish(warm).await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cancelling"), "{stderr}");
    let st = wait_ended(&cli, std::slice::from_ref(&id), Duration::from_secs(60)).await;
    assert_eq!(recent(&st, &id).expect("ended")["state"], "cancelled");
    let redis = r.connect().await;
    assert!(
        !shadow::exists(&redis, 2).await.expect("shadow"),
        "shadow keys left behind"
    );
}

both!(
    ctrl_c_detaches_from_a_worker_and_cancels_a_local_warm,
    ctrl_c
);
