//! `cachedeck slowlog`: every master's slow commands and latency events,
//! passwords never shown, and an audited, confirmed reset.

use crate::support::{AnyRedis, CliRunner, RedisServer, SqliteFile};

/// A password the test puts into logged commands; it must never be printed.
const PASSWORD: &str = "s3cret-slowlog-pw";

fn nodes(r: &AnyRedis) -> Vec<&RedisServer> {
    match r {
        AnyRedis::Standalone(s) => vec![s],
        AnyRedis::Cluster(c) => c.nodes().iter().collect(),
    }
}

async fn every_node_logs_and_no_password_is_shown(r: &AnyRedis) {
    for n in nodes(r) {
        let _: String = n.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        let _: String = n.cmd(&["CONFIG", "SET", "latency-monitor-threshold", "1"]);
        let _: String = n.cmd(&["ACL", "SETUSER", "slowtest", "on", &format!(">{PASSWORD}")]);
        let _: String = n.cmd(&["CONFIG", "SET", "masterauth", PASSWORD]);
        let _: String = n.cmd(&["AUTH", "slowtest", PASSWORD]);
        let _ = n.try_query::<String>(
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg("1")
                .arg("")
                .arg("0")
                .arg("10")
                .arg("AUTH")
                .arg(PASSWORD)
                .arg("KEYS")
                .arg("nokey"),
        );
        // A busy script long enough for the latency monitor (> 1 ms).
        let _: i64 = n.cmd(&[
            "EVAL",
            "local i = 0 while i < 2000000 do i = i + 1 end return i",
            "0",
        ]);
    }
    let data = SqliteFile::create();
    let cli = CliRunner::new().database(data.url()).redis(r.url_arg());
    let out = cli.run(&["slowlog", "--json"]).success();
    assert!(!out.stdout.contains(PASSWORD), "{}", out.stdout);
    let v = out.json();
    let entries = v["entries"].as_array().expect("entries");
    for n in nodes(r) {
        let addr = n.addr();
        assert!(
            entries.iter().any(|e| e["node"] == addr.as_str()
                && e["command"].as_str().unwrap_or("").starts_with("EVAL")),
            "no EVAL logged for {addr}: {}",
            out.stdout
        );
        assert!(
            v["latency"]
                .as_array()
                .expect("latency")
                .iter()
                .any(|l| l["node"] == addr.as_str() && l["maxMs"].as_i64() >= Some(1)),
            "no latency event for {addr}: {}",
            out.stdout
        );
    }
    assert!(
        entries.iter().any(|e| {
            let c = e["command"].as_str().unwrap_or("");
            c.starts_with("CONFIG SET masterauth") || c.starts_with("ACL SETUSER")
        }),
        "the password-carrying commands were logged (masked): {}",
        out.stdout
    );
    // Newest first.
    let times: Vec<i64> = entries.iter().filter_map(|e| e["atMs"].as_i64()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let human = cli.run(&["slowlog"]).success();
    assert!(!human.stdout.contains(PASSWORD), "{}", human.stdout);
    assert!(human.stdout.contains("EVAL"), "{}", human.stdout);

    // One node only; an unknown one is refused with the known ones.
    let first = nodes(r)[0].addr();
    let one = cli
        .run(&["slowlog", "--json", "--node", &first])
        .success()
        .json();
    assert!(
        one["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["node"] == first.as_str()),
        "{one}"
    );
    let o = cli
        .run(&["slowlog", "--node", "127.0.0.1:1"])
        .failure_one_line();
    assert!(o.stderr.contains(&first), "{o}");

    // Reset: refused without --yes, then audited.
    let o = cli.run(&["slowlog", "--reset"]).failure_one_line();
    assert!(o.stderr.contains("--yes"), "{o}");
    let done = cli
        .run(&["slowlog", "--reset", "--yes", "--json"])
        .success()
        .json();
    assert_eq!(
        done["nodes"].as_array().map(Vec::len),
        Some(nodes(r).len()),
        "{done}"
    );
    for n in nodes(r) {
        let len: i64 = n.cmd(&["SLOWLOG", "LEN"]);
        // Only what ran after the reset (the SLOWLOG LEN above, at most).
        assert!(len <= 2, "{} still holds {len}", n.addr());
    }
    let audit = cli
        .run(&["audit", "--action", "slowlog_reset", "--json"])
        .success();
    assert!(audit.stdout.contains("slowlog_reset"), "{audit}");
    assert!(!audit.stdout.contains(PASSWORD), "{audit}");
}
both!(every_node, every_node_logs_and_no_password_is_shown);
