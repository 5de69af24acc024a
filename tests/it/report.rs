//! Cache efficiency reports against a real warmed demo with a known query
//! history, on a standalone server and a 3-master cluster, with a fresh
//! Postgres database: the figures read back from JSON, from every CSV table
//! (zip and directory) and from the HTML, which must be self-contained,
//! hold well-formed SVG, escape names and carry no cached row value.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use cachedeck::cache::query::{self, QueryRequest};
use cachedeck::cache::warm::WarmOptions;
use cachedeck::jobs::{JobSnapshot, JobState};
use cachedeck::keys::{self, Gen, ParsedKey};
use cachedeck::report::{self, ReportFormat, ReportRange, ReportRequest};
use cachedeck::source::demo;
use serde_json::Value;

use crate::support::{AnyRedis, CliRunner, RedisServer, WarmFixture, each_topology};

/// A name that must be escaped everywhere it is shown.
const NASTY_NAME: &str = "Revenue <b>&\"Co\"</b>";
/// Its HTML-escaped form.
const NASTY_ESCAPED: &str = "Revenue &lt;b&gt;&amp;&quot;Co&quot;&lt;/b&gt;";

type Fixture = WarmFixture;

async fn fixture(r: &AnyRedis) -> Fixture {
    WarmFixture::new(r, WarmOptions::default(), Duration::ZERO).await
}

async fn add_ds(f: &Fixture, id: i64, name: &str, sql: &str) {
    f.add_ds(id, name, sql, 48 * 3600, true).await;
}

async fn warm(f: &Fixture, ds: i64) -> JobSnapshot {
    f.warm(ds).await
}

async fn sql_u64(f: &Fixture, sql: &str) -> u64 {
    let v: i64 = sqlx::query_scalar(sql)
        .fetch_one(&f.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    v as u64
}

/// What the warm of the demo table cached, computed by Postgres.
struct Expected {
    entries: u64,
    measures: u64,
    practices: u64,
    providers: u64,
    frequencies: Vec<String>,
    /// Row values that must never appear in a report.
    amounts: Vec<String>,
}

async fn expected(f: &Fixture) -> Expected {
    let frequencies: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT frequency FROM demo_report ORDER BY frequency")
            .fetch_all(&f.pool)
            .await
            .expect("frequencies");
    let amounts: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT amount::text FROM demo_report WHERE amount >= 1000 ORDER BY 1 LIMIT 200",
    )
    .fetch_all(&f.pool)
    .await
    .expect("amounts");
    assert!(amounts.len() >= 50, "demo data too small: {amounts:?}");
    Expected {
        entries: sql_u64(
            f,
            "SELECT COUNT(*) FROM (SELECT DISTINCT measure, practice_uid, provider_uid, frequency FROM demo_report) g",
        )
        .await,
        measures: sql_u64(f, "SELECT COUNT(DISTINCT measure) FROM demo_report").await,
        practices: sql_u64(f, "SELECT COUNT(DISTINCT practice_uid) FROM demo_report").await,
        providers: sql_u64(f, "SELECT COUNT(DISTINCT provider_uid) FROM demo_report").await,
        frequencies,
        amounts,
    }
}

/// A cached entry of `ds` and the request that reads exactly it.
fn random_entry(r: &AnyRedis, ds: i64) -> (String, QueryRequest) {
    let key: String = r.query(redis::cmd("SRANDMEMBER").arg(keys::master_index(ds, Gen::Live)));
    match keys::parse(&key) {
        Some(ParsedKey::Entry { group, .. }) => (
            key,
            QueryRequest {
                datasource: ds,
                measure: group.measure.clone(),
                frequency: group.frequency.clone(),
                practices: vec![group.practice.clone()],
                providers: vec![],
            },
        ),
        other => panic!("master member {key} parsed as {other:?}"),
    }
}

/// DS 1 (nasty name) warmed twice over ~5,000 demo rows with 6 hits and 2
/// misses recorded; DS 2 registered but never warmed.
async fn scenario(r: &AnyRedis, f: &Fixture) -> Expected {
    demo::create(f.db.url(), "demo_report", 5000, false)
        .await
        .expect("demo data");
    let sql = demo::datasource_sql("demo_report", None);
    add_ds(f, 1, NASTY_NAME, &sql).await;
    add_ds(f, 2, "Cold & <never warmed>", &sql).await;
    let want = expected(f).await;
    for _ in 0..2 {
        let s = warm(f, 1).await;
        assert_eq!(s.state, JobState::Succeeded, "{:?}", s.error);
        assert_eq!(s.entries_cached, want.entries);
    }
    let (key, req) = random_entry(r, 1);
    for _ in 0..6 {
        assert!(
            query::query_recorded(&f.redis, &req)
                .await
                .expect("query")
                .hit
        );
    }
    // Two misses: the entry is gone behind its index, then put back as it was.
    let value: String = r.query(redis::cmd("GET").arg(&key));
    let pttl: i64 = r.query(redis::cmd("PTTL").arg(&key));
    let _: () = r.query(redis::cmd("DEL").arg(&key));
    for _ in 0..2 {
        assert!(
            !query::query_recorded(&f.redis, &req)
                .await
                .expect("query")
                .hit
        );
    }
    let _: () = r.query(redis::cmd("SET").arg(&key).arg(&value).arg("PX").arg(pttl));
    want
}

// ------------------------------------------------------------------ checks

fn num(v: &Value, path: &str) -> f64 {
    let mut cur = v;
    for part in path.split('.') {
        cur = match part.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[part],
        };
    }
    cur.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {cur}"))
}

fn check_json(j: &Value, want: &Expected) {
    assert_eq!(j["schemaVersion"], 1);
    assert!(
        j["generatedAt"]
            .as_str()
            .expect("generatedAt")
            .ends_with('Z')
    );
    assert_eq!(j["range"]["bucket"], "minute");
    assert_eq!(j["range"]["bucketMs"], 60_000);
    assert_eq!(num(j, "range.toMs") - num(j, "range.fromMs"), 86_400_000.0);
    assert_eq!(j["datasourceFilter"], Value::Null);

    let s = &j["summary"];
    assert_eq!(s["now"]["datasources"], 2);
    assert_eq!(s["now"]["warmDatasources"], 1);
    assert_eq!(s["now"]["coldDatasources"], 1);
    assert_eq!(num(s, "now.totalCacheEntries"), want.entries as f64);
    assert!(num(s, "now.totalMemoryMB") > 0.0);
    assert_eq!(s["range"]["hits"], 6);
    assert_eq!(s["range"]["misses"], 2);
    assert_eq!(s["range"]["queries"], 8);
    assert_eq!(num(s, "range.hitRate"), 75.0);
    assert!(num(s, "range.avgQueryMs") > 0.0);
    assert_eq!(s["range"]["warms"], 2);
    assert_eq!(s["range"]["warmsSucceeded"], 2);
    // DS 2 is cold: an error-level finding.
    assert_eq!(s["overallHealth"], "critical");

    let ds = j["datasources"].as_array().expect("datasources");
    assert_eq!(ds.len(), 2);
    let d = &ds[0];
    assert_eq!(d["datasourceId"], 1);
    assert_eq!(d["datasourceName"], NASTY_NAME);
    assert_eq!(d["now"]["isWarm"], true);
    assert_eq!(num(d, "now.totalEntries"), want.entries as f64);
    assert!(num(d, "now.estimatedMemoryMB") > 0.0);
    // Fresh (40), 75 % (20), full coverage (20): 80 → good.
    assert_eq!(d["now"]["health"], "good");
    assert_eq!(num(d, "now.score.score"), 80.0);
    assert_eq!(num(d, "now.score.ageScore"), 40.0);
    assert_eq!(num(d, "now.score.hitRateScore"), 20.0);
    assert_eq!(num(d, "now.score.coverageScore"), 20.0);
    assert_eq!(d["sinceLastWarm"]["queries"], 8);
    assert_eq!(num(d, "sinceLastWarm.hitRate"), 75.0);
    assert_eq!(d["range"]["queries"], 8);
    assert_eq!(num(d, "range.hitRate"), 75.0);
    assert!(
        d["range"]["busiestBucket"]["queries"]
            .as_u64()
            .expect("busiest")
            >= 1
    );
    let trend = d["trend"].as_array().expect("trend");
    assert!((1440..=1442).contains(&trend.len()), "{}", trend.len());
    let hits: u64 = trend.iter().map(|p| p["hits"].as_u64().unwrap_or(0)).sum();
    let misses: u64 = trend
        .iter()
        .map(|p| p["misses"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!((hits, misses), (6, 2));
    assert!(
        trend
            .iter()
            .filter(|p| p["queries"] == 0)
            .all(|p| p["hitRate"].is_null() && p["avgQueryMs"].is_null())
    );
    let memory = d["memory"].as_array().expect("memory");
    assert_eq!(memory.len(), 2, "one sample per warm: {memory:?}");
    assert!(
        memory
            .iter()
            .all(|m| num(m, "entries") == want.entries as f64)
    );
    assert!(memory.iter().all(|m| num(m, "memoryMB") > 0.0));
    let w = &d["warms"];
    assert_eq!(
        (w["count"].as_u64(), w["succeeded"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(num(w, "successRate"), 100.0);
    assert!(num(w, "minDurationMs") <= num(w, "avgDurationMs"));
    assert!(num(w, "avgDurationMs") <= num(w, "maxDurationMs"));
    assert_eq!(w["lastFailure"], Value::Null);
    assert_eq!(w["events"].as_array().expect("events").len(), 2);
    let c = &d["coverage"];
    assert_eq!(num(c, "measures"), want.measures as f64);
    assert_eq!(num(c, "practices"), want.practices as f64);
    assert_eq!(num(c, "providers"), want.providers as f64);
    assert_eq!(
        c["frequencies"],
        serde_json::to_value(&want.frequencies).expect("frequencies")
    );
    assert_eq!(d["integrity"]["method"], "sampled");
    assert_eq!(d["integrity"]["status"], "ok", "{}", d["integrity"]);
    assert_eq!(d["issues"], serde_json::json!([]));

    let cold = &ds[1];
    assert_eq!(cold["now"]["isWarm"], false);
    assert_eq!(cold["now"]["health"], "cold");
    assert_eq!(cold["integrity"]["status"], "notChecked");
    assert_eq!(cold["range"]["queries"], 0);
    assert_eq!(cold["range"]["hitRate"], Value::Null);
    assert!(
        cold["issues"]
            .as_array()
            .expect("issues")
            .iter()
            .any(|i| i["code"] == "cold" && i["severity"] == "error")
    );
    assert!(
        cold["recommendations"][0]
            .as_str()
            .expect("recommendation")
            .contains("cachedeck warm --datasource 2")
    );

    let redis = &j["redis"];
    assert!(redis["collectedAt"].is_string());
    let nodes = redis["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty());
    assert!(num(&redis["total"], "usedMemoryMB") > 0.0);
    assert!(redis["total"]["evictedKeysSinceStart"].is_u64());
    // The test servers run without maxmemory: the health check says so.
    assert!(
        redis["issues"]
            .as_array()
            .expect("redis issues")
            .iter()
            .any(|i| i["code"] == "no_maxmemory")
    );
}

/// Reads one CSV table: header → column, rows as maps.
fn read_csv(name: &str, bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"));
    assert!(!text.starts_with('\u{feff}'), "{name} starts with a BOM");
    let mut rdr = csv::Reader::from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .iter()
        .map(str::to_string)
        .collect();
    assert!(!header.is_empty(), "{name} has no header");
    for h in &header {
        assert!(
            h.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name}: column `{h}` is not snake_case"
        );
    }
    rdr.records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

fn is_time_column(col: &str) -> bool {
    col.ends_with("_at")
        || col == "generated_at"
        || col == "bucket_start"
        || col == "range_from"
        || col == "range_to"
        || col.ends_with("_at_in_range")
}

fn check_csv(tables: &HashMap<String, Vec<u8>>, want: &Expected, nodes: usize) {
    let names: Vec<&str> = report::csv::FILES.to_vec();
    let mut got: Vec<&str> = tables.keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut expected_names = names.clone();
    expected_names.sort_unstable();
    assert_eq!(got, expected_names);
    let t: HashMap<&str, Vec<HashMap<String, String>>> = names
        .iter()
        .map(|n| (*n, read_csv(n, &tables[*n])))
        .collect();
    // Every timestamp is ISO-8601 UTC.
    for (name, rows) in &t {
        for row in rows {
            for (col, v) in row {
                if is_time_column(col) && !v.is_empty() {
                    let parsed = chrono::DateTime::parse_from_rfc3339(v)
                        .unwrap_or_else(|e| panic!("{name}.{col} = {v}: {e}"));
                    assert_eq!(parsed.offset().local_minus_utc(), 0, "{name}.{col} = {v}");
                    assert!(v.ends_with('Z'), "{name}.{col} = {v}");
                }
            }
        }
    }
    let summary = &t["summary.csv"];
    assert_eq!(summary.len(), 1);
    let s = &summary[0];
    assert_eq!(s["schema_version"], "1");
    assert_eq!(s["bucket"], "minute");
    assert_eq!(s["datasources_now"], "2");
    assert_eq!(s["warm_datasources_now"], "1");
    assert_eq!(s["entries_now"], want.entries.to_string());
    assert_eq!(s["queries_in_range"], "8");
    assert_eq!(s["hits_in_range"], "6");
    assert_eq!(s["hit_rate_pct_in_range"].parse::<f64>().ok(), Some(75.0));
    assert!(s["avg_query_ms_in_range"].parse::<f64>().expect("avg") > 0.0);
    assert_eq!(s["warms_in_range"], "2");
    assert!(s["memory_mb_now"].parse::<f64>().expect("memory") > 0.0);

    let ds = &t["datasources.csv"];
    assert_eq!(ds.len(), 2);
    let d = &ds[0];
    assert_eq!(d["datasource_id"], "1");
    assert_eq!(d["datasource_name"], NASTY_NAME);
    assert_eq!(d["health_now"], "good");
    assert_eq!(d["score_now"].parse::<f64>().ok(), Some(80.0));
    assert_eq!(d["hit_rate_score_now"].parse::<f64>().ok(), Some(20.0));
    assert_eq!(d["entries_now"], want.entries.to_string());
    assert_eq!(d["queries_in_range"], "8");
    assert_eq!(d["hit_rate_pct_in_range"].parse::<f64>().ok(), Some(75.0));
    assert_eq!(d["queries_since_last_warm"], "8");
    assert_eq!(d["warms_in_range"], "2");
    assert_eq!(d["warms_succeeded_in_range"], "2");
    assert_eq!(
        d["warm_success_rate_pct_in_range"].parse::<f64>().ok(),
        Some(100.0)
    );
    assert_eq!(d["measures_at_last_warm"], want.measures.to_string());
    assert_eq!(d["practices_at_last_warm"], want.practices.to_string());
    assert_eq!(d["providers_at_last_warm"], want.providers.to_string());
    assert_eq!(d["frequencies_at_last_warm"], want.frequencies.join(";"));
    assert_eq!(d["integrity_status_now"], "ok");
    let cold = &ds[1];
    assert_eq!(cold["is_warm_now"], "false");
    assert_eq!(
        cold["hit_rate_pct_in_range"], "",
        "no queries: an empty cell"
    );
    assert_eq!(cold["integrity_status_now"], "notChecked");

    let trends = &t["trends.csv"];
    let of = |id: &'static str| trends.iter().filter(move |r| r["datasource_id"] == id);
    let sum = |id: &'static str, col: &str| -> u64 {
        of(id).map(|r| r[col].parse::<u64>().expect(col)).sum()
    };
    assert_eq!(
        (sum("1", "hits"), sum("1", "misses"), sum("1", "queries")),
        (6, 2, 8)
    );
    assert_eq!(sum("2", "queries"), 0);
    assert_eq!(of("1").count(), of("2").count());
    assert!(of("1").all(|r| r["bucket"] == "minute"));
    assert!(
        of("1")
            .filter(|r| r["queries"] == "0")
            .all(|r| r["hit_rate_pct"].is_empty() && r["avg_query_ms"].is_empty())
    );

    let memory = &t["memory.csv"];
    assert_eq!(memory.len(), 2);
    assert!(
        memory
            .iter()
            .all(|m| m["entries"] == want.entries.to_string())
    );

    let warms = &t["warms.csv"];
    assert_eq!(warms.len(), 2);
    assert!(
        warms.iter().all(|w| w["datasource_id"] == "1"
            && w["state"] == "succeeded"
            && w["success"] == "true")
    );
    assert!(
        warms
            .iter()
            .all(|w| w["duration_ms"].parse::<u64>().is_ok())
    );

    let recs = &t["recommendations.csv"];
    assert!(
        recs.iter().any(|r| r["scope"] == "datasource"
            && r["datasource_id"] == "2"
            && r["code"] == "cold"),
        "{recs:?}"
    );
    assert!(recs.iter().any(|r| r["scope"] == "redis"
        && r["datasource_id"].is_empty()
        && r["code"] == "no_maxmemory"));

    let redis = &t["redis.csv"];
    let want_rows = if nodes > 1 { nodes + 1 } else { 1 };
    assert_eq!(redis.len(), want_rows, "{redis:?}");
    assert!(
        redis
            .iter()
            .all(|r| r["used_memory_mb_now"].parse::<f64>().expect("memory") > 0.0)
    );
    if nodes > 1 {
        assert_eq!(redis[nodes]["node"], "total");
    }
}

/// Checks that an XML fragment is well formed: tags balanced, attributes
/// quoted, no raw `<` in text or attributes, `&` only as an entity.
fn check_xml(fragment: &str) -> Result<usize, String> {
    let b = fragment.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut i = 0;
    let entity_ok = |at: usize| -> bool {
        let rest = &fragment[at + 1..];
        let end = match rest.find(';') {
            Some(e) if e <= 10 => e,
            _ => return false,
        };
        let name = &rest[..end];
        name.starts_with('#') && name[1..].chars().all(|c| c.is_ascii_hexdigit() || c == 'x')
            || ["amp", "lt", "gt", "quot", "apos"].contains(&name)
    };
    while i < b.len() {
        match b[i] {
            b'<' if b.get(i + 1) == Some(&b'/') => {
                let end = fragment[i..].find('>').ok_or("unclosed end tag")? + i;
                let name = fragment[i + 2..end].trim();
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?} at {i}")),
                }
                i = end + 1;
            }
            b'<' => {
                let mut j = i + 1;
                while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
                    j += 1;
                }
                let name = fragment[i + 1..j].to_string();
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
                {
                    return Err(format!("bad tag name `{name}` at {i}"));
                }
                // Attributes: name="value" pairs until > or />.
                loop {
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    match b.get(j) {
                        Some(b'>') => {
                            stack.push(name.clone());
                            j += 1;
                            break;
                        }
                        Some(b'/') if b.get(j + 1) == Some(&b'>') => {
                            j += 2;
                            break;
                        }
                        Some(_) => {
                            let eq = fragment[j..].find('=').ok_or("attribute without value")? + j;
                            let attr = &fragment[j..eq];
                            if attr.is_empty()
                                || !attr
                                    .chars()
                                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
                            {
                                return Err(format!("bad attribute `{attr}` at {j}"));
                            }
                            let q = b.get(eq + 1).copied().ok_or("eof")?;
                            if q != b'"' && q != b'\'' {
                                return Err(format!("unquoted attribute `{attr}` at {j}"));
                            }
                            let close = fragment[eq + 2..]
                                .find(q as char)
                                .ok_or("unclosed attribute")?
                                + eq
                                + 2;
                            let value = &fragment[eq + 2..close];
                            if value.contains('<') {
                                return Err(format!("`<` in attribute `{attr}`"));
                            }
                            for (k, _) in value.match_indices('&') {
                                if !entity_ok(eq + 2 + k) {
                                    return Err(format!("raw & in attribute `{attr}`"));
                                }
                            }
                            j = close + 1;
                        }
                        None => return Err("eof in tag".into()),
                    }
                }
                elements += 1;
                i = j;
            }
            b'&' => {
                if !entity_ok(i) {
                    return Err(format!("raw & in text at {i}"));
                }
                i += 1;
            }
            b'>' => return Err(format!("raw > in text at {i}")),
            _ => i += 1,
        }
    }
    if stack.is_empty() {
        Ok(elements)
    } else {
        Err(format!("unclosed elements {stack:?}"))
    }
}

fn check_html(html: &str, datasources: usize) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains(NASTY_ESCAPED), "escaped name missing");
    assert!(!html.contains(NASTY_NAME), "raw name in the HTML");
    if datasources == 2 {
        assert!(html.contains("Cold &amp; &lt;never warmed&gt;"));
    }
    // Self-contained: no scripts, no external resources.
    for banned in [
        "<script", "<link", "@import", "url(", "<img", "<iframe", "src=",
    ] {
        assert!(!html.contains(banned), "the HTML contains `{banned}`");
    }
    let xmlns = "xmlns=\"http://www.w3.org/2000/svg\"";
    let stripped = html.replace(xmlns, "");
    assert!(
        !stripped.contains("http:") && !stripped.contains("https:") && !stripped.contains("//www."),
        "a URL other than the SVG namespace"
    );
    // Print-friendly: a print stylesheet with page breaks between datasources.
    assert!(html.contains("@media print"));
    assert!(html.contains("break-before: page"));
    // Every figure states its unit and period somewhere near it.
    for must in [
        "75.0 %",
        "in range",
        "since last warm",
        "now",
        "Hit rate (%)",
        "Avg query time (ms)",
        "Memory (MB)",
        "Entries (count)",
        "Time (UTC)",
    ] {
        assert!(html.contains(must), "the HTML lacks `{must}`");
    }
    // SVG blocks: balanced and well formed, five charts per datasource.
    let opens = html.matches("<svg").count();
    assert_eq!(opens, html.matches("</svg>").count());
    // Five charts for DS 1 (warm, queried); the cold DS 2 gets notes instead.
    assert_eq!(opens, 5);
    if datasources == 2 {
        assert!(html.contains("No queries in this range: nothing to plot."));
        assert!(html.contains("No memory samples in this range"));
    }
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("</svg>") + start + "</svg>".len();
        let block = &rest[start..end];
        assert!(block.contains(xmlns));
        let n = check_xml(block).unwrap_or_else(|e| panic!("malformed SVG: {e}\n{block}"));
        assert!(n > 5, "an SVG with only {n} elements");
        rest = &rest[end..];
    }
    // The whole body is balanced too.
    let body = &html[html.find("<body>").expect("body")..html.rfind("</html>").expect("end")];
    check_xml(body).unwrap_or_else(|e| panic!("malformed HTML body: {e}"));
}

/// No cached row value, entry key or source date in the output.
fn check_no_row_values(what: &str, text: &str, want: &Expected) {
    for a in &want.amounts {
        assert!(!text.contains(a.as_str()), "{what} contains the amount {a}");
    }
    assert!(!text.contains("cache:{ds:"), "{what} names an entry key");
    assert!(!text.contains("\"2023-"), "{what} contains a source date");
    assert!(!text.contains(",2023-"), "{what} contains a source date");
}

fn unzip(path: &Path) -> HashMap<String, Vec<u8>> {
    let f = std::fs::File::open(path).expect("open zip");
    let mut z = zip::ZipArchive::new(f).expect("read zip");
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).expect("entry");
        assert_eq!(e.compression(), zip::CompressionMethod::Deflated);
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).expect("inflate");
        out.insert(e.name().expect("entry name").to_string(), bytes);
    }
    out
}

fn read_dir(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn report_figures_match_a_warmed_demo_in_every_format() {
    each_topology(async |r: &AnyRedis| {
        let f = fixture(r).await;
        let want = scenario(r, &f).await;
        let req = ReportRequest {
            range: ReportRange::parse("24h").expect("range"),
            datasources: vec![],
        };
        let rep = report::build(&f.redis, &f.store, &req)
            .await
            .expect("build");
        let j = serde_json::to_value(&rep).expect("json");
        check_json(&j, &want);
        let nodes = rep.redis.nodes.len();
        assert_eq!(nodes, if r.urls().len() > 1 { 3 } else { 1 });

        let dir = tempfile::tempdir().expect("tempdir");
        let steps = std::sync::Mutex::new(Vec::<String>::new());
        let progress = |s: &str| steps.lock().expect("lock").push(s.to_string());

        // JSON through export: the same document.
        let path = dir.path().join("r.json");
        let written = report::export(
            &f.redis,
            &f.store,
            &req,
            ReportFormat::Json,
            &path,
            progress,
        )
        .await
        .expect("export json");
        assert_eq!(written, path);
        let text = std::fs::read_to_string(&path).expect("read json");
        let back: Value = serde_json::from_str(&text).expect("parse json");
        check_json(&back, &want);
        check_no_row_values("the JSON", &text, &want);
        let steps_seen = steps.lock().expect("lock").clone();
        assert!(
            steps_seen.iter().any(|s| s.contains("health check")),
            "{steps_seen:?}"
        );
        assert!(steps_seen.last().is_some_and(|s| s.starts_with("Writing")));

        // CSV as a zip and into a directory: the same tables.
        let zip_path = dir.path().join("r.zip");
        report::export(
            &f.redis,
            &f.store,
            &req,
            ReportFormat::Csv,
            &zip_path,
            |_| {},
        )
        .await
        .expect("export zip");
        let zipped = unzip(&zip_path);
        check_csv(&zipped, &want, nodes);
        for (name, bytes) in &zipped {
            check_no_row_values(name, &String::from_utf8_lossy(bytes), &want);
        }
        let csv_dir = dir.path().join("tables");
        report::csv::write(&rep, &csv_dir).expect("csv dir");
        let files = read_dir(&csv_dir);
        check_csv(&files, &want, nodes);

        // HTML.
        let html_path = dir.path().join("r.html");
        report::export(
            &f.redis,
            &f.store,
            &req,
            ReportFormat::Html,
            &html_path,
            |_| {},
        )
        .await
        .expect("export html");
        let html = std::fs::read_to_string(&html_path).expect("read html");
        check_html(&html, 2);
        check_no_row_values("the HTML", &html, &want);

        // Nothing but the reports in the folder: no temp file left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["r.html", "r.json", "r.zip", "tables"]);

        // One datasource over 7 days: hour buckets, the same queries.
        let week = ReportRequest {
            range: ReportRange::parse("7d").expect("range"),
            datasources: vec![1],
        };
        let rep = report::build(&f.redis, &f.store, &week)
            .await
            .expect("build 7d");
        let j = serde_json::to_value(&rep).expect("json");
        assert_eq!(j["range"]["bucket"], "hour");
        assert_eq!(j["datasourceFilter"], serde_json::json!([1]));
        assert_eq!(j["datasources"].as_array().map(Vec::len), Some(1));
        assert_eq!(j["summary"]["now"]["datasources"], 1);
        assert_eq!(j["summary"]["range"]["queries"], 8);
        assert_eq!(num(&j, "summary.range.hitRate"), 75.0);
        // Only DS 1 and Redis are covered: no error-level finding.
        assert_ne!(j["summary"]["overallHealth"], "critical");
        let trend = j["datasources"][0]["trend"].as_array().expect("trend");
        assert!((168..=170).contains(&trend.len()), "{}", trend.len());

        // A custom range within the last hour, and an unknown datasource.
        let now = f.redis.time_ms().await.expect("time");
        let custom = format!("{}..{}", report::iso(now - 3_600_000), report::iso(now));
        let rep = report::build(
            &f.redis,
            &f.store,
            &ReportRequest {
                range: ReportRange::parse(&custom).expect("custom"),
                datasources: vec![1, 1],
            },
        )
        .await
        .expect("build custom");
        assert_eq!(rep.range.bucket, report::BucketSize::Minute);
        assert_eq!(rep.summary.range.queries, 8);
        assert_eq!(rep.datasource_filter, Some(vec![1]));
        let err = report::build(
            &f.redis,
            &f.store,
            &ReportRequest {
                range: ReportRange::default(),
                datasources: vec![1, 99],
            },
        )
        .await
        .expect_err("unknown datasource");
        assert!(
            matches!(err, cachedeck::Error::NoSuchDatasource(99)),
            "{err}"
        );
        f.pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn cli_writes_reports_and_refuses_bad_ranges() {
    // Usage errors come before any connection: one line, exit 2.
    let bare = CliRunner::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    for (range, says) in [
        ("2025-10-14..2025-10-01", "must be before"),
        ("2025-10-01T10:00..2025-10-01T10:00", "must be before"),
        ("100d", "90 days"),
        ("2025-01-01..2025-06-30", "90 days"),
        ("lastweek", "24h, 7d, 30d or FROM..TO"),
    ] {
        let o = bare
            .run(&[
                "report",
                "--format",
                "json",
                "--range",
                range,
                "-o",
                &out("x.json"),
            ])
            .failure_one_line()
            .code(2);
        assert!(o.stderr.contains(says), "{range}: {o}");
    }
    let o = bare
        .run(&["report", "--format", "csv", "-o", &out("x.csv")])
        .failure_one_line()
        .code(2);
    assert!(o.stderr.contains(".zip"), "{o}");
    bare.run(&["report", "--format", "pdf", "-o", &out("x.pdf")])
        .failure_one_line()
        .code(2);
    bare.run(&["report", "-o", &out("x.txt")])
        .failure_one_line()
        .code(2);
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "a refused report wrote something"
    );

    let r = AnyRedis::standalone();
    let f = fixture(&r).await;
    let want = scenario(&r, &f).await;
    let cli = CliRunner::new().database(f.db.url()).redis(r.url_arg());
    let json_path = out("report.json");
    let o = cli
        .run_async(&[
            "report", "--format", "json", "--range", "24h", "-o", &json_path,
        ])
        .await
        .success();
    assert!(o.stdout.contains(&json_path), "{o}");
    assert!(o.stdout.contains("hit rate 75.0% over 8 queries"), "{o}");
    assert_eq!(o.stdout.trim().lines().count(), 2, "{o}");
    let back: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).expect("read")).expect("parse");
    check_json(&back, &want);

    // --json: where and what, for scripts; the format from the name.
    let zip_path = out("report.zip");
    let o = cli
        .run_async(&["--json", "report", "--range", "24h", "-o", &zip_path])
        .await
        .success();
    let j = o.json();
    assert_eq!(j["path"], zip_path.as_str());
    assert_eq!(j["format"], "csv");
    assert_eq!(j["summary"]["range"]["queries"], 8);
    check_csv(&unzip(Path::new(&zip_path)), &want, 1);

    let csv_dir = format!("{}/", out("tables"));
    cli.run_async(&[
        "report", "--format", "csv", "--range", "24h", "-o", &csv_dir,
    ])
    .await
    .success();
    check_csv(&read_dir(Path::new(&csv_dir)), &want, 1);

    let html_path = out("report.html");
    cli.run_async(&[
        "report",
        "--format",
        "html",
        "--range",
        "24h",
        "--datasource",
        "1",
        "-o",
        &html_path,
    ])
    .await
    .success();
    let html = std::fs::read_to_string(&html_path).expect("read html");
    check_html(&html, 1);
    assert!(!html.contains("never warmed&gt;"), "DS 2 was not selected");

    let o = cli
        .run_async(&["report", "--datasource", "99", "-o", &out("none.json")])
        .await
        .failure_one_line();
    assert!(o.stderr.contains("datasource 99 does not exist"), "{o}");
    f.pool.close().await;
}

/// Writes `assets/example-report.html` from a real warmed demo with a day
/// of simulated reads (run by hand: `cargo test --test it
/// report::write_example_report -- --ignored`).
#[tokio::test]
#[ignore = "writes assets/example-report.html; run by hand"]
async fn write_example_report() {
    use cachedeck::demo_env::{DATASOURCES, backfill_traffic};
    // A server set up as in production: a memory limit, no eviction.
    let r = AnyRedis::Standalone(RedisServer::start_with(&[
        "--maxmemory",
        "256mb",
        "--maxmemory-policy",
        "noeviction",
    ]));
    let f = fixture(&r).await;
    demo::create(f.db.url(), "analytics_demo", 20_000, false)
        .await
        .expect("demo data");
    for d in &DATASOURCES {
        add_ds(
            &f,
            d.id,
            d.name,
            &demo::datasource_sql("analytics_demo", d.measures),
        )
        .await;
    }
    add_ds(
        &f,
        9,
        "Scheduling <beta> & tests",
        "SELECT measure, practice_uid, frequency FROM analytics_demo",
    )
    .await;
    // Three rounds of warms, the source growing between them, so the
    // memory and entry bars show the cache following its data.
    for round in 0..3 {
        if round > 0 {
            sqlx::query(&format!(
                "INSERT INTO analytics_demo SELECT measure, practice_uid + {k}, provider_uid + {k} * 100, \
                 frequency, period_start, amount, visit_count, updated_at FROM analytics_demo WHERE practice_uid < 104",
                k = 1000 * round
            ))
            .execute(&f.pool)
            .await
            .expect("grow the demo table");
        }
        for d in DATASOURCES.iter().filter(|d| d.warm_at_start) {
            let s = warm(&f, d.id).await;
            assert_eq!(s.state, JobState::Succeeded, "{:?}", s.error);
        }
    }
    let failed = warm(&f, 9).await;
    assert_eq!(failed.state, JobState::Failed);
    backfill_traffic(&f.redis, 24 * 60).await.expect("traffic");
    for d in DATASOURCES.iter().filter(|d| d.warm_at_start) {
        for _ in 0..5 {
            let (_, req) = random_entry(&r, d.id);
            query::query_recorded(&f.redis, &req).await.expect("query");
        }
    }
    let req = ReportRequest {
        range: ReportRange::parse("24h").expect("range"),
        datasources: vec![],
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/example-report.html");
    report::export(&f.redis, &f.store, &req, ReportFormat::Html, &path, |s| {
        eprintln!("{s}")
    })
    .await
    .expect("export");
    let size = std::fs::metadata(&path).expect("written").len();
    eprintln!("wrote {} ({size} bytes)", path.display());
    assert!(size < 300 * 1024, "the example is {size} bytes");
    f.pool.close().await;
}
