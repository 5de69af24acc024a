//! A Redis user that may read but not run INFO uses every read feature:
//! topology comes from HELLO / CLUSTER commands, figures that need INFO say
//! so, and writes are refused.

use std::time::Duration;

use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::JobState;
use cachedeck::keys::{self, Gen};

use crate::support::{AnyRedis, CliRunner, WarmFixture, each_topology};

/// Reads, no INFO, and what a client needs to find its way around.
const RO_ACL: [&str; 20] = [
    "ACL",
    "SETUSER",
    "ro",
    "on",
    ">pw",
    "~*",
    "&*",
    "+@read",
    "-info",
    "+ping",
    "+hello",
    "+time",
    "+cluster|shards",
    "+cluster|slots",
    "+cluster|nodes",
    "+cluster|keyslot",
    "+client|setname",
    "+evalsha",
    "+eval",
    "+script|load",
];

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_without_info_uses_every_read_feature() {
    each_topology(async |r: &AnyRedis| {
        let f = WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await;
        sqlx::raw_sql(
            "CREATE TABLE src (measure TEXT, practice_uid INT, provider_uid INT, frequency TEXT, amount INT); \
             INSERT INTO src SELECT 'Charges', p, NULL, 'Monthly', p FROM generate_series(1, 30) p",
        )
        .execute(&f.pool)
        .await
        .expect("source");
        f.add_ds(1, "One", "SELECT * FROM src", 3600, true).await;
        assert_eq!(f.warm(1).await.state, JobState::Succeeded);
        acl_everywhere(r, &RO_ACL);
        let urls: Vec<String> = r
            .urls()
            .iter()
            .map(|u| u.replacen("redis://", "redis://ro:pw@", 1))
            .collect();
        let cli = CliRunner::new().database(f.db.url()).redis(urls.join(","));
        let dir = tempfile::tempdir().expect("tempdir");
        let report = dir.path().join("r.json");
        let master = keys::master_index(1, Gen::Live);
        for args in [
            vec!["stats"],
            vec!["health"],
            vec!["query", "--datasource", "1", "--measure", "Charges", "--frequency", "Monthly"],
            vec!["keys", "cache:{ds:1}:*", "--limit", "5"],
            vec!["inspect", &master],
            vec!["report", "--range", "24h", "-o", report.to_str().expect("path")],
            vec!["redis-info"],
        ] {
            let o = cli.run_async(&args).await;
            assert_eq!(o.code, 0, "{args:?}: {o}");
            if ["health", "redis-info"].contains(&args[0]) {
                assert!(o.stdout.contains("INFO not permitted"), "{args:?}: {o}");
            }
        }
        let json = std::fs::read_to_string(&report).expect("report");
        assert!(json.contains("INFO not permitted"), "the report's Redis section");
        let o = cli.run_async(&["query", "--datasource", "1", "--measure", "Charges", "--frequency", "Monthly", "--json"]).await.success();
        assert!(o.stdout.contains("\"hit\": true") || o.stdout.contains("hit"), "{o}");
        // Writes are refused, and the cache stays.
        let o = cli.run_async(&["invalidate", "--datasource", "1"]).await;
        assert_eq!(o.code, 4, "{o}");
        let n: i64 = r.query(redis::cmd("SCARD").arg(&master));
        assert_eq!(n, 30);

        // A user who may write datasource 0's keys but only read the rest:
        // the probe looks at each datasource's slot, so it is read-only
        // before it tries anything.
        acl_everywhere(
            r,
            &[
                "ACL", "SETUSER", "partial", "on", ">pw", "&*", "+@all", "%R~*",
                "~cache:{ds:0}:*", "~idx:{ds:0}:*", "~cache:shadow:{ds:0}:*",
                "~idx:shadow:{ds:0}:*", "~cache:meta:{ds:0}*",
            ],
        );
        let urls: Vec<String> = r
            .urls()
            .iter()
            .map(|u| u.replacen("redis://", "redis://partial:pw@", 1))
            .collect();
        let cli = CliRunner::new().database(f.db.url()).redis(urls.join(","));
        let o = cli.run_async(&["invalidate", "--datasource", "1"]).await;
        assert_eq!(o.code, 4, "{o}");
        assert!(o.stderr.contains("of datasource 1"), "{o}");
        let n: i64 = r.query(redis::cmd("SCARD").arg(&master));
        assert_eq!(n, 30);
        f.pool.close().await;
    })
    .await;
}
