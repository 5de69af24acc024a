//! Every CSV cachedeck writes (report tables, the audit export) puts a `'`
//! before a cell a spreadsheet would run as a formula, and leaves numbers
//! alone; a cell with a `;` is quoted (one cell where `;` separates lists),
//! and no part after a `;` would run either.

use std::collections::HashMap;
use std::path::Path;

use cachedeck::actor::{Actor, Origin};
use cachedeck::governance::audit;
use cachedeck::store::Store;

use crate::support::{CliRunner, RedisServer, TestDb};

/// Datasource names (2..) that a spreadsheet would run, `-3`, a number, and
/// `a;b`, which a `;` locale would split.
const NAMES: [&str; 5] = [
    "=HYPERLINK(\"http://x/\",\"y\")",
    "+1+2",
    "-3",
    "@SUM(A1)",
    "a;b",
];

/// What a cell must read as after export.
fn neutralised(name: &str) -> String {
    if name == "-3" || name == "a;b" {
        name.to_string()
    } else {
        format!("'{name}")
    }
}

/// Read as a spreadsheet that splits at `;` would: no part after a `;`
/// (with the opening quote of a quoted cell) would run.
fn split_at_semicolons(name: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    for line in text.lines() {
        for part in line.split(';').skip(1) {
            let part = part.trim_start_matches('"');
            assert!(!runs(part), "{name}: `{part}` would run in {line}");
        }
    }
}

/// A cell that a spreadsheet would run.
fn runs(cell: &str) -> bool {
    match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => cell[1..].parse::<f64>().is_err() || cell[1..].starts_with(['+', '-']),
        _ => false,
    }
}

/// Every row of a CSV file as header → cell, asserting no cell would run.
fn read(name: &str, bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let mut rdr = csv::Reader::from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(str::to_string)
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            for cell in r.iter() {
                assert!(!runs(cell), "{name}: the cell {cell:?} would run");
            }
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

fn read_dir(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let bytes = std::fs::read(e.path()).expect("read");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

#[tokio::test]
async fn report_and_audit_csv_cells_cannot_run_in_a_spreadsheet() {
    let redis = RedisServer::start();
    let db = TestDb::create();
    let cli = CliRunner::new().database(db.url()).redis(redis.url());
    cli.run_async(&["demo-data", "--rows", "200"])
        .await
        .success();
    let sql = cachedeck::source::demo::datasource_sql("analytics_demo", None);
    for (i, name) in NAMES.iter().enumerate() {
        let id = (i + 2).to_string();
        let name = format!("--name={name}");
        cli.run_async(&["datasource", "add", "--id", &id, &name, "--sql", &sql])
            .await
            .success();
    }
    cli.run_async(&["warm", "--datasource", "2", "3"])
        .await
        .success();

    // The report tables, written into a folder and read back.
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = format!("{}/", dir.path().join("tables").display());
    cli.run_async(&["report", "--format", "csv", "--range", "24h", "-o", &tables])
        .await
        .success();
    let files = read_dir(Path::new(&tables));
    assert_eq!(
        files.len(),
        cachedeck::report::csv::FILES.len(),
        "{:?}",
        files.keys()
    );
    let mut names_seen = Vec::new();
    for (file, bytes) in &files {
        split_at_semicolons(file, bytes);
        for row in read(file, bytes) {
            if let Some(n) = row.get("datasource_name") {
                names_seen.push((file.clone(), n.clone()));
            }
        }
    }
    let datasources: Vec<&String> = names_seen
        .iter()
        .filter(|(f, _)| f == "datasources.csv")
        .map(|(_, n)| n)
        .collect();
    assert!(
        String::from_utf8_lossy(&files["datasources.csv"]).contains(",\"a;b\""),
        "a;b is not quoted in datasources.csv"
    );
    for name in NAMES {
        let want = neutralised(name);
        assert!(
            datasources.contains(&&want),
            "{want:?} not in {datasources:?}"
        );
    }

    // The audit export: rows whose text cells start like formulas, next to
    // the CLI's own `datasource_changed` rows (names in the params JSON).
    let store = Store::connect(db.url()).await.expect("store");
    // (The database user is stamped by Postgres itself.)
    let mut actor = Actor::new("postgres", "+1+2", Origin::Cli);
    actor.os_user = "@SUM(A1)".into();
    actor.redis_user = Some("a;b".into());
    audit::record_detail(
        &store,
        &actor,
        audit::actions::CACHE_INVALIDATED,
        Some(2),
        serde_json::json!({}),
        audit::results::OK,
        Some("=HYPERLINK(\"http://x/\",\"y\");=1+1"),
    )
    .await
    .expect("audit row");
    let file = dir.path().join("audit.csv");
    cli.run_async(&["audit", "-o", file.to_str().expect("path")])
        .await
        .success();
    let raw = std::fs::read(&file).expect("audit export");
    split_at_semicolons("audit.csv", &raw);
    let rows = read("audit.csv", &raw);
    let forged = rows
        .iter()
        .find(|r| r["action"] == "cache_invalidated")
        .expect("the forged row");
    assert_eq!(forged["osUser"], "'@SUM(A1)");
    assert_eq!(forged["redisUser"], "a;b");
    assert!(
        String::from_utf8_lossy(&raw).contains(",\"a;b\""),
        "a;b is not quoted in the audit CSV"
    );
    assert_eq!(forged["profile"], "'+1+2");
    assert_eq!(forged["detail"], "'=HYPERLINK(\"http://x/\",\"y\");'=1+1");
    assert_eq!(forged["datasourceId"], "2");
    let changed: Vec<_> = rows
        .iter()
        .filter(|r| r["action"] == "datasource_changed")
        .collect();
    assert_eq!(changed.len(), NAMES.len(), "{rows:?}");
    // The params stay valid JSON holding the names as they were.
    for r in changed {
        let p: serde_json::Value = serde_json::from_str(&r["params"]).expect("params JSON");
        assert!(NAMES.contains(&p["name"].as_str().expect("name")), "{p}");
    }
    // `audit --csv` to standard output goes through the same cells.
    let out = cli
        .run_async(&["audit", "--csv", "--action", "cache_invalidated"])
        .await
        .success();
    let rows = read("stdout", out.stdout.as_bytes());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["profile"], "'+1+2");
}
