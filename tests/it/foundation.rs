//! The harness and the foundation, checked the way a user would: real
//! redis-server / Redis Cluster / Postgres / SQLite, the real binary.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use cachedeck::redis_conn::{Redis, RedisTarget, Topology};
use cachedeck::store::{DatasourceInput, Store};
use serde_json::{Value, json};

use crate::support::{
    AnyDb, AnyRedis, CliRunner, RedisCluster, RedisServer, SqliteFile, TestDb, admin_url,
    each_topology, free_port,
};

// ---------------------------------------------------------------- Redis

#[tokio::test]
async fn standalone_server_is_detected_as_standalone_with_one_master() {
    let srv = RedisServer::start();
    let redis = srv.connect().await;
    assert_eq!(redis.topology(), Topology::Standalone);

    let masters = redis.masters().await.expect("masters");
    assert_eq!(masters.len(), 1);
    assert_eq!(masters[0].addr, srv.addr());
    let mut node = masters[0].conn.clone();
    let _: () = redis::cmd("SET")
        .arg("via-master")
        .arg("1")
        .query_async(&mut node)
        .await
        .expect("SET on the master connection");

    let _: () = redis
        .query("SET", redis::cmd("SET").arg("k").arg("v"))
        .await
        .expect("SET through the routed connection");
    assert_eq!(srv.cmd::<String>(&["GET", "k"]), "v");
    assert_eq!(srv.cmd::<i64>(&["DBSIZE"]), 2);
    assert!(redis.time_ms().await.expect("TIME") > 1_600_000_000_000);
}

#[tokio::test]
async fn cluster_is_detected_as_cluster_with_three_masters_from_any_seed() {
    let cluster = RedisCluster::start();
    let redis = cluster.connect().await;
    assert_eq!(redis.topology(), Topology::Cluster);
    let masters = redis.masters().await.expect("masters");
    let addrs: Vec<String> = masters.iter().map(|m| m.addr.clone()).collect();
    assert_eq!(addrs, cluster.addrs());

    // One seed URL is enough: the server says it is a cluster.
    let one_seed = Redis::connect(&RedisTarget {
        urls: vec![cluster.urls()[1].clone()],
        ..RedisTarget::default()
    })
    .await
    .expect("connect through one seed");
    assert_eq!(one_seed.topology(), Topology::Cluster);
    assert_eq!(one_seed.masters().await.expect("masters").len(), 3);

    // Keys of many datasources land on every master and are routed both ways.
    for n in 0..60 {
        let key = format!("cache:meta:{{ds:{n}}}:last_warm");
        let _: () = redis
            .query("SET", redis::cmd("SET").arg(&key).arg(n))
            .await
            .expect("SET on the cluster");
    }
    let mut total = 0;
    for m in &masters {
        let mut c = m.conn.clone();
        let n: i64 = redis::cmd("DBSIZE")
            .query_async(&mut c)
            .await
            .expect("DBSIZE");
        assert!(n > 0, "master {} holds no key of 60", m.addr);
        total += n;
    }
    assert_eq!(total, 60);
    let v: i64 = one_seed
        .query("GET", redis::cmd("GET").arg("cache:meta:{ds:42}:last_warm"))
        .await
        .expect("GET on the cluster");
    assert_eq!(v, 42);
    assert_eq!(
        cluster.cmd::<i64>(&["GET", "cache:meta:{ds:7}:last_warm"]),
        7
    );
}

#[tokio::test]
async fn each_topology_runs_the_body_on_a_server_and_on_a_cluster() {
    let seen = RefCell::new(Vec::new());
    each_topology(async |r: &AnyRedis| {
        let redis = r.connect().await;
        assert_eq!(redis.topology(), r.topology());
        let expected = match r.topology() {
            Topology::Standalone => 1,
            Topology::Cluster => 3,
        };
        assert_eq!(redis.masters().await.expect("masters").len(), expected);
        let _: () = redis
            .query("SET", redis::cmd("SET").arg("idx:{ds:1}:master").arg("x"))
            .await
            .expect("SET");
        assert_eq!(r.cmd::<String>(&["GET", "idx:{ds:1}:master"]), "x");
        assert_eq!(r.dbsize(), 1);
        seen.borrow_mut().push(r.topology());
    })
    .await;
    assert_eq!(
        seen.into_inner(),
        vec![Topology::Standalone, Topology::Cluster]
    );
}

#[tokio::test]
async fn a_killed_server_is_a_one_line_error_and_restarts_on_the_same_port() {
    let mut srv = RedisServer::start();
    let (port, pid) = (srv.port(), srv.pid());
    srv.stop();
    assert!(!srv.is_running());

    let started = Instant::now();
    let err = match Redis::connect(&srv.target()).await {
        Ok(_) => panic!("connecting to a stopped server succeeded"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(
        matches!(err, cachedeck::Error::RedisConnect { .. }),
        "{msg}"
    );
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10));

    srv.restart();
    assert_eq!(srv.port(), port);
    assert_ne!(srv.pid(), pid);
    let redis = srv.connect().await;
    let pong: String = redis
        .query("PING", &redis::cmd("PING"))
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn a_frozen_server_does_not_answer_until_thawed() {
    let srv = RedisServer::start();
    let mut conn = srv.async_conn().await;
    srv.freeze();
    let frozen = tokio::time::timeout(
        Duration::from_millis(500),
        redis::cmd("PING").query_async::<String>(&mut conn),
    )
    .await;
    // Either our timeout or the driver's own response timeout fires first.
    assert!(
        !matches!(frozen, Ok(Ok(_))),
        "a frozen server answered: {frozen:?}"
    );
    srv.thaw();
    let mut fresh = srv.async_conn().await;
    let pong: String = redis::cmd("PING")
        .query_async(&mut fresh)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

// ---------------------------------------------------------------- store

#[tokio::test]
async fn store_on_a_fresh_postgres_database_creates_schema_cachedeck() {
    let db = TestDb::create();
    let pool = db.pool().await;
    let schemas =
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'cachedeck'";
    let n: i64 = sqlx::query_scalar(schemas).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 0, "a fresh database has no cachedeck schema");

    let store = Store::connect(db.url()).await.expect("Store::connect");
    assert!(!store.is_local());
    let user = url::Url::parse(db.url()).unwrap().username().to_string();
    assert_eq!(store.identity(), user);
    assert!(store.datasources().await.expect("datasources").is_empty());

    let n: i64 = sqlx::query_scalar(schemas).fetch_one(&pool).await.unwrap();
    assert_eq!(n, 1);
    let (in_schema, in_public): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('cachedeck.datasources') IS NOT NULL, \
                to_regclass('public.datasources') IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(in_schema, "cachedeck.datasources was not created");
    assert!(!in_public, "store tables leaked into schema public");

    // Connecting again and migrating explicitly change nothing.
    let again = Store::connect(db.url())
        .await
        .expect("second Store::connect");
    again.migrate(true).await.expect("explicit migrate");
    pool.close().await;
}

#[tokio::test]
async fn store_on_sqlite_creates_the_file_and_keeps_datasources() {
    let file = SqliteFile::create();
    assert!(!file.path().exists());
    let store = Store::connect(&file.url()).await.expect("Store::connect");
    assert!(store.is_local());
    assert!(file.path().exists());
    assert!(store.identity().contains('@'), "{}", store.identity());
    assert!(store.datasources().await.expect("datasources").is_empty());

    let input = DatasourceInput {
        id: 3,
        name: "Three".into(),
        source_url: None,
        source_password: None,
        sql: "SELECT 1".into(),
        stale_after_secs: 3600,
        ttl_secs: 7200,
        enabled: true,
        statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    };
    let added = store.add_datasource(&input).await.expect("add");
    drop(store);
    let reopened = Store::connect(&file.url()).await.expect("reopen");
    assert_eq!(reopened.datasources().await.expect("list"), vec![added]);
}

#[test]
fn test_databases_are_dropped_after_the_test() {
    let db = TestDb::create();
    let name = db.name().to_string();
    drop(db);
    let exists = crate::support::block_on(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&mut c)
            .await
            .unwrap();
        n
    });
    assert_eq!(exists, 0);
}

#[test]
fn migrate_via_the_cli_creates_the_schema() {
    let db = TestDb::create();
    let out = CliRunner::new()
        .database(db.url())
        .run(&["migrate", "--json"])
        .success();
    assert_eq!(out.json()["migrated"], json!(true));
}

// ---------------------------------------------------------------- CLI

const SOURCE_TABLE: &str = "CREATE TABLE visits_src (measure TEXT, practice_uid INTEGER, \
     provider_uid INTEGER, frequency TEXT, amount NUMERIC(10,2)); \
     INSERT INTO visits_src VALUES ('Charges', 114, 5, 'Monthly', 10.50), \
     ('Charges', 114, NULL, 'Monthly', 3.25)";
const GOOD_SQL: &str =
    "SELECT measure, practice_uid, provider_uid, frequency, amount FROM visits_src";
const NO_FREQUENCY_SQL: &str = "SELECT measure, practice_uid, provider_uid, amount FROM visits_src";

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {list}"))
        .iter()
        .map(|d| d["id"].as_i64().expect("id"))
        .collect()
}

#[tokio::test]
async fn datasource_add_list_edit_remove_round_trip_on_postgres_and_sqlite() {
    for db in AnyDb::both() {
        eprintln!("--- {}", db.kind());
        db.execute(SOURCE_TABLE).await;
        let cli = CliRunner::new().database(db.url());
        let list = || cli.run(&["datasource", "list", "--json"]).success().json();
        assert_eq!(list(), json!([]));

        let added = cli
            .run(&[
                "datasource",
                "add",
                "--id",
                "7",
                "--name",
                "Clinic visits",
                "--sql",
                GOOD_SQL,
                "--stale-after",
                "2h",
                "--ttl",
                "24h",
                "--json",
            ])
            .success()
            .json();
        assert_eq!(added["id"], json!(7));
        assert_eq!(added["name"], json!("Clinic visits"));
        assert_eq!(added["sql"], json!(GOOD_SQL));
        assert_eq!(added["staleAfterSecs"], json!(7200));
        assert_eq!(added["ttlSecs"], json!(86400));
        assert_eq!(added["enabled"], json!(true));
        assert_eq!(added["sourceUrl"], Value::Null);
        assert_eq!(list(), json!([added.clone()]));
        let human = cli.run(&["datasource", "list"]).success();
        assert!(human.stdout.contains("Clinic visits"), "{human}");

        // A query without `frequency` is refused, naming the column; nothing stored.
        let refused = cli
            .run(&[
                "datasource",
                "add",
                "--id",
                "8",
                "--name",
                "Bad",
                "--sql",
                NO_FREQUENCY_SQL,
            ])
            .failure_one_line();
        assert!(refused.stderr.contains("`frequency`"), "{refused}");
        assert_eq!(ids(&list()), vec![7]);
        let refused = cli
            .run(&["datasource", "edit", "--id", "7", "--sql", NO_FREQUENCY_SQL])
            .failure_one_line();
        assert!(refused.stderr.contains("`frequency`"), "{refused}");
        assert_eq!(list()[0]["sql"], json!(GOOD_SQL));

        // A taken id is refused.
        cli.run(&[
            "datasource",
            "add",
            "--id",
            "7",
            "--name",
            "Again",
            "--sql",
            GOOD_SQL,
        ])
        .failure_one_line();

        let edited = cli
            .run(&[
                "datasource",
                "edit",
                "--id",
                "7",
                "--name",
                "Clinic visits v2",
                "--ttl",
                "12h",
                "--json",
            ])
            .success()
            .json();
        assert_eq!(edited["name"], json!("Clinic visits v2"));
        assert_eq!(edited["ttlSecs"], json!(43200));
        assert_eq!(
            edited["staleAfterSecs"],
            json!(7200),
            "unset flags keep their value"
        );
        assert_eq!(edited["sql"], json!(GOOD_SQL));
        assert_eq!(list(), json!([edited]));

        let removed = cli
            .run(&["datasource", "remove", "--id", "7", "--json"])
            .success()
            .json();
        assert_eq!(removed["removed"], json!(7));
        assert_eq!(list(), json!([]));
        let again = cli
            .run(&["datasource", "remove", "--id", "7"])
            .failure_one_line();
        assert!(again.stderr.contains("does not exist"), "{again}");
    }
}

#[tokio::test]
async fn demo_data_makes_exactly_the_rows_asked_and_registers_datasource_1() {
    for db in AnyDb::both() {
        eprintln!("--- {}", db.kind());
        let cli = CliRunner::new().database(db.url());
        let out = cli
            .run(&["demo-data", "--rows", "5000", "--json"])
            .success()
            .json();
        assert_eq!(out["demo"]["rows"], json!(5000), "{out}");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM analytics_demo").await,
            5000
        );
        assert!(
            db.scalar_i64("SELECT COUNT(*) FROM analytics_demo WHERE provider_uid IS NULL")
                .await
                > 0,
            "practice-level rows (no provider) are part of the demo"
        );

        let list = cli.run(&["datasource", "list", "--json"]).success().json();
        assert_eq!(ids(&list), vec![1]);
        let sql = list[0]["sql"].as_str().expect("sql");
        assert!(sql.contains("analytics_demo"), "{sql}");
        // The registered query passes the same validation as `datasource add`.
        cli.run(&["datasource", "edit", "--id", "1", "--stale-after", "6h"])
            .success();

        // An existing table is not overwritten unless asked.
        cli.run(&["demo-data", "--rows", "10"]).failure_one_line();
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM analytics_demo").await,
            5000
        );
        cli.run(&["demo-data", "--rows", "10", "--replace"])
            .success();
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM analytics_demo").await,
            10
        );
    }
}

#[test]
fn a_wrong_database_url_is_one_line_on_stderr_and_a_failure() {
    let closed = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let mut missing_db = url::Url::parse(&admin_url()).expect("admin URL");
    missing_db.set_path("/cachedeck_no_such_database");
    // (url, with --json); a closed port costs the store's connect timeout, so once.
    let cases = [
        (closed.as_str(), true),
        (missing_db.as_str(), false),
        (missing_db.as_str(), true),
        (
            "sqlite:///nonexistent-cachedeck-dir/sub/x.db?mode=rwc",
            false,
        ),
        (
            "sqlite:///nonexistent-cachedeck-dir/sub/x.db?mode=rwc",
            true,
        ),
        ("not a url", false),
    ];
    for (url, json_flag) in cases {
        let mut args = vec!["datasource", "list"];
        if json_flag {
            args.push("--json");
        }
        let out = CliRunner::new().database(url).run(&args).failure_one_line();
        assert!(out.stderr.starts_with("error:"), "{out}");
        assert!(out.stdout.trim().is_empty(), "{out}");
        assert!(out.elapsed < Duration::from_secs(30), "{out}");
        if url == closed {
            let hostport = closed.split('@').nth(1).unwrap().split('/').next().unwrap();
            assert!(
                out.stderr.contains(hostport),
                "the message names the server:\n{out}"
            );
        }
    }
}

/// True when the binary knows subcommand `name` (later areas add more).
fn has_subcommand(name: &str) -> bool {
    CliRunner::new().run(&["help", name]).code == 0
}

#[tokio::test]
async fn an_unreachable_redis_is_one_line_and_a_failure() {
    let port = free_port(); // nothing listens there
    let url = format!("redis://127.0.0.1:{port}");

    // The core: a prompt, one-line error naming the server.
    let started = Instant::now();
    let err = match Redis::connect(&RedisTarget {
        urls: vec![url.clone()],
        ..RedisTarget::default()
    })
    .await
    {
        Ok(_) => panic!("connecting to a closed port succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // The CLI: every subcommand that needs Redis and exists in this build.
    let db = SqliteFile::create();
    let cli = CliRunner::new().database(db.url()).redis(&url);
    let needing_redis: [&[&str]; 4] = [&["stats"], &["status"], &["health"], &["keys", "*"]];
    let mut checked = Vec::new();
    for args in needing_redis {
        if !has_subcommand(args[0]) {
            continue;
        }
        let out = cli.run_async(args).await.failure_one_line();
        assert!(out.stderr.contains(&format!("127.0.0.1:{port}")), "{out}");
        assert!(out.elapsed < Duration::from_secs(30), "{out}");
        checked.push(args[0]);
    }
    eprintln!("unreachable Redis checked through: {checked:?}");
}

#[test]
fn a_malformed_profiles_toml_is_reported_with_file_and_line_and_left_unchanged() {
    let cli = CliRunner::new();
    let text = "# my profiles\ndefault_profile = \"prod\"\n\n[profiles.prod]\n\
                redis.urls = [\"redis://127.0.0.1:6379\"]\nproduction = maybe\n";
    let path = cli.write_profiles(text);
    let before = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

    let runs: [&[&str]; 4] = [
        &["datasource", "list"],
        &["datasource", "list", "--json"],
        &["migrate"],
        &["demo-data", "--rows", "10"],
    ];
    for args in runs {
        let out = cli.run(args).failure_one_line();
        assert!(out.stderr.contains(&path.display().to_string()), "{out}");
        assert!(out.stderr.contains("line 6"), "{out}");
    }

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "profiles.toml was changed"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    let names: Vec<String> = std::fs::read_dir(cli.config_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("profiles"))
        .collect();
    assert_eq!(
        names,
        vec!["profiles.toml".to_string()],
        "no temp or backup file is left"
    );
}
