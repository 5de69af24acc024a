//! `cachedeck warm`, `status`, `query`, `invalidate`, `pause|resume|cancel`
//! from the terminal: JSON shapes and exit codes of DESIGN.md.

use crate::support::{AnyRedis, CliRunner, TestDb, block_on};

fn exec(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    block_on(async move {
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query(&sql).execute(&pool).await.expect("execute");
    });
}

fn warm_cli(r: &AnyRedis) {
    let db = TestDb::create();
    let cli = CliRunner::new()
        .database(db.url())
        .redis(r.url_arg())
        .env("CACHEDECK_WARM_RATE_LIMIT", "0")
        .env("CACHEDECK_INVALIDATE_RATE_LIMIT", "0");
    cli.run(&["demo-data", "--rows", "3000"]).success();

    let out = cli
        .run(&["warm", "--datasource", "1", "--json"])
        .success()
        .json();
    let job = &out["jobs"][0];
    assert_eq!(job["state"], "succeeded", "{out}");
    assert_eq!(job["datasourceId"], 1);
    assert_eq!(job["rowsProcessed"], 3000);
    assert!(job["entriesCached"].as_u64().unwrap_or(0) > 0);
    assert!(job["indexesCached"].as_u64().unwrap_or(0) > 0);
    assert!(job["durationMs"].is_u64());
    assert!(job.get("error").is_none());

    // Warmed a moment ago: skipped, still exit 0.
    let out = cli
        .run(&["warm", "--datasource", "1", "--json"])
        .success()
        .json();
    assert_eq!(out["jobs"][0]["state"], "skipped");

    // Someone else holds the lock: exit 3 naming the holder.
    r.cmd::<()>(&[
        "SET",
        "lock:shadow:warm:{ds:1}",
        "other-job-42",
        "PX",
        "60000",
    ]);
    let busy = cli
        .run(&["warm", "--datasource", "1", "--force"])
        .code(3)
        .failure_one_line();
    assert!(busy.stderr.contains("other-job-42"), "{}", busy.stderr);
    r.cmd::<()>(&["DEL", "lock:shadow:warm:{ds:1}"]);

    // --all with one broken datasource: partly failed, exit 6.
    cli.run(&[
        "datasource",
        "add",
        "--id",
        "2",
        "--name",
        "Broken",
        "--sql",
        "SELECT * FROM analytics_demo",
    ])
    .success();
    // Its table goes away after it was registered.
    exec(
        db.url(),
        "UPDATE cachedeck.datasources SET sql = 'SELECT * FROM missing_table' WHERE id = 2",
    );
    let out = cli
        .run(&["warm", "--all", "--force", "--json"])
        .code(6)
        .json();
    let states: Vec<&str> = out["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, vec!["succeeded", "failed"]);
    assert!(
        out["jobs"][1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("missing_table")
    );

    let status = cli.run(&["status", "--json"]).success().json();
    assert_eq!(status["activeJobs"].as_array().map(Vec::len), Some(0));
    let recent = status["recentJobs"].as_array().expect("recentJobs");
    assert!(recent.len() >= 4, "{status}");
    assert!(
        recent
            .iter()
            .any(|j| j["state"] == "failed" && j["success"] == false)
    );
    assert!(recent.iter().any(|j| j["state"] == "skipped"));

    let q = cli
        .run(&[
            "query",
            "--datasource",
            "1",
            "--measure",
            "Charges",
            "--frequency",
            "Monthly",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(q["hit"], true);
    assert!(q["rows"].as_array().map(Vec::len).unwrap_or(0) > 0);

    let inv = cli
        .run(&["invalidate", "--datasource", "1", "--json"])
        .success()
        .json();
    assert!(inv["keysDeleted"].as_u64().unwrap_or(0) > 0);
    assert!(inv["indexesDeleted"].as_u64().unwrap_or(0) > 0);
    assert!(inv["memoryFreedMB"].as_f64().unwrap_or(0.0) > 0.0);
    let q = cli
        .run(&[
            "query",
            "--datasource",
            "1",
            "--measure",
            "Charges",
            "--frequency",
            "Monthly",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(q["hit"], false, "invalidated cache still answers");

    cli.run(&["pause", "no-such-job"])
        .code(1)
        .failure_one_line();
}

#[test]
fn standalone() {
    warm_cli(&AnyRedis::standalone());
}

#[test]
fn cluster() {
    warm_cli(&AnyRedis::cluster());
}
