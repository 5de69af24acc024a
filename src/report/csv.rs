//! The CSV report: one tidy table per section, each a header row and one
//! observation per row, units and periods in the column names
//! (`memory_mb_now`, `avg_query_ms_in_range`), timestamps ISO-8601 UTC, empty
//! cells for "no value" (e.g. a hit rate without queries), `.` as the
//! decimal mark, UTF-8 without BOM. A cell a spreadsheet would run as a
//! formula (a name starting with `=`, …) gets a leading `'` and every cell
//! that is not a number is quoted ([`crate::csv_safe`]). Written into a
//! directory, or as a zip
//! of the same files (deflate).
//!
//! | file | one row per |
//! |---|---|
//! | `summary.csv` | the report (headline figures) |
//! | `datasources.csv` | datasource |
//! | `trends.csv` | datasource × statistics bucket |
//! | `memory.csv` | datasource × memory/entries sample |
//! | `warms.csv` | warm job |
//! | `recommendations.csv` | health finding (Redis-wide or of a datasource) |
//! | `redis.csv` | Redis master, plus a `total` row on a cluster |
//! | `read_usage.csv` | datasource with sampled reads (access clocks) |

use std::io::Write;
use std::path::{Path, PathBuf};

use super::model::*;
use crate::error::{Error, Result};

/// The files of a CSV report, in the order they are written.
pub const FILES: [&str; 8] = [
    "summary.csv",
    "datasources.csv",
    "trends.csv",
    "memory.csv",
    "warms.csv",
    "recommendations.csv",
    "redis.csv",
    "read_usage.csv",
];

/// One CSV file of the report, in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTable {
    /// File name, e.g. `trends.csv`.
    pub name: &'static str,
    /// Its bytes (UTF-8, header row first).
    pub bytes: Vec<u8>,
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn severity(s: crate::metrics::Severity) -> &'static str {
    match s {
        crate::metrics::Severity::Error => "error",
        crate::metrics::Severity::Warning => "warning",
        crate::metrics::Severity::Info => "info",
    }
}

fn json_word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Builds one table from a header and rows of cells.
fn table(name: &'static str, header: &[&str], rows: Vec<Vec<String>>) -> Result<CsvTable> {
    let err = |e: ::csv::Error| Error::Invalid(format!("writing {name}: {e}"));
    let mut w = crate::csv_safe::writer(Vec::new());
    w.write_record(header).map_err(err)?;
    for r in rows {
        debug_assert_eq!(r.len(), header.len(), "{name}");
        w.write_record(crate::csv_safe::record(&r)).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Invalid(format!("writing {name}: {e}")))?;
    Ok(CsvTable { name, bytes })
}

fn summary(r: &Report) -> Result<CsvTable> {
    let s = &r.summary;
    table(
        "summary.csv",
        &[
            "schema_version",
            "generated_at",
            "range_label",
            "range_from",
            "range_to",
            "bucket",
            "datasources_now",
            "warm_datasources_now",
            "cold_datasources_now",
            "entries_now",
            "indexes_now",
            "memory_mb_now",
            "hits_in_range",
            "misses_in_range",
            "queries_in_range",
            "hit_rate_pct_in_range",
            "avg_query_ms_in_range",
            "warms_in_range",
            "warms_succeeded_in_range",
            "warms_failed_in_range",
            "overall_health_now",
        ],
        vec![vec![
            r.schema_version.to_string(),
            r.generated_at.clone(),
            r.range.label.clone(),
            r.range.from.clone(),
            r.range.to.clone(),
            r.range.bucket.as_str().into(),
            s.now.datasources.to_string(),
            s.now.warm_datasources.to_string(),
            s.now.cold_datasources.to_string(),
            s.now.total_cache_entries.to_string(),
            s.now.total_indexes.to_string(),
            s.now.total_memory_mb.to_string(),
            s.range.hits.to_string(),
            s.range.misses.to_string(),
            s.range.queries.to_string(),
            opt(s.range.hit_rate),
            opt(s.range.avg_query_ms),
            s.range.warms.to_string(),
            s.range.warms_succeeded.to_string(),
            s.range.warms_failed.to_string(),
            json_word(&s.overall_health),
        ]],
    )
}

fn datasources(r: &Report) -> Result<CsvTable> {
    let rows = r
        .datasources
        .iter()
        .map(|d| {
            let n = &d.now;
            let w = &d.warms;
            vec![
                d.datasource_id.to_string(),
                d.datasource_name.clone(),
                d.enabled.to_string(),
                n.is_warm.to_string(),
                json_word(&n.health),
                n.score.score.to_string(),
                opt(n.score.age_score),
                opt(n.score.hit_rate_score),
                opt(n.score.coverage_score),
                n.last_warmed.clone().unwrap_or_default(),
                opt(n.age_minutes),
                n.stale_after_minutes.to_string(),
                n.total_entries.to_string(),
                n.index_count.to_string(),
                n.estimated_memory_mb.to_string(),
                d.coverage.measures.to_string(),
                d.coverage.practices.to_string(),
                d.coverage.providers.to_string(),
                d.coverage.frequencies.join(";"),
                d.range.hits.to_string(),
                d.range.misses.to_string(),
                d.range.queries.to_string(),
                opt(d.range.hit_rate),
                opt(d.range.avg_query_ms),
                d.since_last_warm.queries.to_string(),
                opt(d.since_last_warm.hit_rate),
                opt(d.since_last_warm.avg_query_ms),
                w.count.to_string(),
                w.succeeded.to_string(),
                w.failed.to_string(),
                w.cancelled.to_string(),
                w.skipped.to_string(),
                w.busy.to_string(),
                opt(w.success_rate),
                opt(w.min_duration_ms),
                opt(w.avg_duration_ms),
                opt(w.max_duration_ms),
                w.last_failure
                    .as_ref()
                    .map(|f| f.at.clone())
                    .unwrap_or_default(),
                w.last_failure
                    .as_ref()
                    .map(|f| f.error.clone())
                    .unwrap_or_default(),
                json_word(&d.integrity.status),
                d.integrity.method.clone(),
                d.issues.len().to_string(),
            ]
        })
        .collect();
    table(
        "datasources.csv",
        &[
            "datasource_id",
            "datasource_name",
            "enabled",
            "is_warm_now",
            "health_now",
            "score_now",
            "age_score_now",
            "hit_rate_score_now",
            "coverage_score_now",
            "last_warmed_at",
            "age_minutes_now",
            "stale_after_minutes",
            "entries_now",
            "indexes_now",
            "memory_mb_now",
            "measures_at_last_warm",
            "practices_at_last_warm",
            "providers_at_last_warm",
            "frequencies_at_last_warm",
            "hits_in_range",
            "misses_in_range",
            "queries_in_range",
            "hit_rate_pct_in_range",
            "avg_query_ms_in_range",
            "queries_since_last_warm",
            "hit_rate_pct_since_last_warm",
            "avg_query_ms_since_last_warm",
            "warms_in_range",
            "warms_succeeded_in_range",
            "warms_failed_in_range",
            "warms_cancelled_in_range",
            "warms_skipped_in_range",
            "warms_busy_in_range",
            "warm_success_rate_pct_in_range",
            "warm_duration_ms_min_in_range",
            "warm_duration_ms_avg_in_range",
            "warm_duration_ms_max_in_range",
            "last_failure_at_in_range",
            "last_failure_error_in_range",
            "integrity_status_now",
            "integrity_method",
            "health_findings_now",
        ],
        rows,
    )
}

fn trends(r: &Report) -> Result<CsvTable> {
    let mut rows = Vec::new();
    for d in &r.datasources {
        for p in &d.trend {
            rows.push(vec![
                d.datasource_id.to_string(),
                p.time.clone(),
                r.range.bucket.as_str().into(),
                p.hits.to_string(),
                p.misses.to_string(),
                p.queries.to_string(),
                opt(p.hit_rate),
                opt(p.avg_query_ms),
            ]);
        }
    }
    table(
        "trends.csv",
        &[
            "datasource_id",
            "bucket_start",
            "bucket",
            "hits",
            "misses",
            "queries",
            "hit_rate_pct",
            "avg_query_ms",
        ],
        rows,
    )
}

fn memory(r: &Report) -> Result<CsvTable> {
    let mut rows = Vec::new();
    for d in &r.datasources {
        for m in &d.memory {
            rows.push(vec![
                d.datasource_id.to_string(),
                m.time.clone(),
                m.memory_mb.to_string(),
                m.entries.to_string(),
            ]);
        }
    }
    table(
        "memory.csv",
        &["datasource_id", "sampled_at", "memory_mb", "entries"],
        rows,
    )
}

fn warms(r: &Report) -> Result<CsvTable> {
    let mut rows = Vec::new();
    for d in &r.datasources {
        for w in &d.warms.events {
            rows.push(vec![
                d.datasource_id.to_string(),
                w.job_id.clone(),
                w.state.clone(),
                w.queued_at.clone(),
                w.started_at.clone().unwrap_or_default(),
                w.completed_at.clone().unwrap_or_default(),
                opt(w.duration_ms),
                w.rows_processed.to_string(),
                w.entries_cached.to_string(),
                w.success.to_string(),
                w.error.clone().unwrap_or_default(),
                w.actor.clone(),
            ]);
        }
    }
    table(
        "warms.csv",
        &[
            "datasource_id",
            "job_id",
            "state",
            "queued_at",
            "started_at",
            "completed_at",
            "duration_ms",
            "rows_processed",
            "entries_cached",
            "success",
            "error",
            "actor",
        ],
        rows,
    )
}

fn recommendations(r: &Report) -> Result<CsvTable> {
    let mut rows = Vec::new();
    let mut push = |scope: &str, ds: String, i: &ReportIssue| {
        rows.push(vec![
            scope.to_string(),
            ds,
            severity(i.severity).into(),
            i.code.clone(),
            i.issue.clone(),
            i.recommendation.clone(),
        ]);
    };
    for i in &r.redis.issues {
        push("redis", String::new(), i);
    }
    for d in &r.datasources {
        for i in &d.issues {
            push("datasource", d.datasource_id.to_string(), i);
        }
    }
    table(
        "recommendations.csv",
        &[
            "scope",
            "datasource_id",
            "severity",
            "code",
            "issue",
            "recommendation",
        ],
        rows,
    )
}

fn redis(r: &Report) -> Result<CsvTable> {
    let x = &r.redis;
    let rows = x
        .nodes
        .iter()
        .chain(x.total.iter().filter(|_| x.nodes.len() > 1))
        .map(|n| {
            vec![
                n.node.clone(),
                x.collected_at.clone().unwrap_or_default(),
                n.redis_version.clone().unwrap_or_default(),
                opt(n.uptime_seconds),
                n.used_memory_mb.to_string(),
                opt(n.max_memory_mb),
                opt(n.used_memory_percent),
                n.peak_memory_mb.to_string(),
                opt(n.fragmentation_ratio),
                n.evicted_keys_since_start.to_string(),
                n.expired_keys_since_start.to_string(),
                n.keys.to_string(),
                n.maxmemory_policy.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        "redis.csv",
        &[
            "node",
            "collected_at",
            "redis_version",
            "uptime_seconds",
            "used_memory_mb_now",
            "max_memory_mb",
            "used_memory_pct_of_max_now",
            "peak_memory_mb_since_start",
            "fragmentation_ratio_now",
            "evicted_keys_since_start",
            "expired_keys_since_start",
            "keys_now",
            "maxmemory_policy",
        ],
        rows,
    )
}

fn read_usage(r: &Report) -> Result<CsvTable> {
    let rows = r
        .datasources
        .iter()
        .filter_map(|d| d.read_usage.as_ref().map(|u| (d, u)))
        .map(|(d, u)| {
            vec![
                d.datasource_id.to_string(),
                d.datasource_name.clone(),
                u.sample_size.to_string(),
                u.total_entries.to_string(),
                json_word(&u.clock),
                opt(u.read_last_hour),
                opt(u.read_last_day),
                u.cold_share.to_string(),
                u.entries_memory_mb.to_string(),
                u.cold_memory_mb.to_string(),
                u.hottest_measures.join(";"),
                u.coldest_measures.join(";"),
                u.hottest_frequencies.join(";"),
                u.coldest_frequencies.join(";"),
            ]
        })
        .collect();
    table(
        "read_usage.csv",
        &[
            "datasource_id",
            "datasource_name",
            "sampled_entries",
            "entries_now",
            "access_clock",
            "read_last_hour_pct_sampled",
            "read_last_day_pct_sampled",
            "not_read_for_a_day_pct_sampled",
            "entries_memory_mb_sampled",
            "not_read_for_a_day_memory_mb_sampled",
            "hottest_measures",
            "coldest_measures",
            "hottest_frequencies",
            "coldest_frequencies",
        ],
        rows,
    )
}

/// Every table of the report, in [`FILES`] order.
pub fn tables(r: &Report) -> Result<Vec<CsvTable>> {
    Ok(vec![
        summary(r)?,
        datasources(r)?,
        trends(r)?,
        memory(r)?,
        warms(r)?,
        recommendations(r)?,
        redis(r)?,
        read_usage(r)?,
    ])
}

/// True when `path` names a zip file (`*.zip`, any case).
pub fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Writes the tables as a zip (deflate) to `w`.
pub fn write_zip<W: Write + std::io::Seek>(r: &Report, w: W) -> Result<()> {
    let io = |e: std::io::Error| Error::io("writing the CSV zip", e);
    let zerr =
        |e: zip::result::ZipError| Error::io("writing the CSV zip", std::io::Error::other(e));
    let mut zip = zip::ZipWriter::new(w);
    let mut options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    if let Some(t) = chrono::DateTime::parse_from_rfc3339(&r.generated_at)
        .ok()
        .and_then(|t| {
            use chrono::{Datelike, Timelike};
            zip::DateTime::from_date_and_time(
                u16::try_from(t.year()).ok()?,
                t.month() as u8,
                t.day() as u8,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
            )
            .ok()
        })
    {
        options = options.last_modified_time(t);
    }
    for t in tables(r)? {
        zip.start_file(t.name, options).map_err(zerr)?;
        zip.write_all(&t.bytes).map_err(io)?;
    }
    let mut inner = zip.finish().map_err(zerr)?;
    inner.flush().map_err(io)
}

/// Writes the CSV report to `target`: a zip when it ends in `.zip`,
/// otherwise a directory (created if missing) that receives the files of
/// [`FILES`]. Every file is written to a temporary name and renamed, so a
/// reader never sees half a file. Returns what was written.
pub fn write(r: &Report, target: &Path) -> Result<PathBuf> {
    if is_zip(target) {
        super::atomic_write(target, |f| write_zip(r, std::io::BufWriter::new(f)))?;
    } else {
        std::fs::create_dir_all(target)
            .map_err(|e| Error::io(format!("creating the folder {}", target.display()), e))?;
        for t in tables(r)? {
            let path = target.join(t.name);
            super::atomic_write(&path, |mut f| {
                f.write_all(&t.bytes)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))
            })?;
        }
    }
    Ok(target.to_path_buf())
}
