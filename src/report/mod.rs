//! Cache efficiency reports (seed plan, phase 4): for a range (24 h, 7 d,
//! 30 d or `FROM..TO`, up to the 90 days the hour buckets are kept) and all
//! or some datasources — a summary; per datasource its health and score
//! parts, hit-rate and query-time trends, query volume, memory and entries
//! over warms, warm history, coverage, sampled index integrity and the
//! health check's recommendations; and Redis memory, evictions and
//! fragmentation.
//!
//! [`build`] gathers a [`Report`] (the JSON document, schema version
//! [`SCHEMA_VERSION`]); [`html::write`], [`csv::write`] and [`json::write`]
//! render it; [`export`] does both and writes the file atomically, for the
//! CLI (`cachedeck report`) and the window's Export button.
//!
//! Reports hold aggregates only — counts, rates, sizes, durations — never a
//! cached row value nor an entry key name, so they can be mailed around
//! although the cache holds practice and provider data.
//!
//! JSON shape (camelCase; `…Ms` durations and epoch times in ms, `…MB`
//! memory in MB, hit rates in percent or `null` without queries, times
//! ISO-8601 UTC):
//! ```text
//! schemaVersion: 1, generatedAt, generatedAtMs,
//! range {label, fromMs, toMs, from, to, bucket: "minute"|"hour", bucketMs},
//! datasourceFilter: [id…] | null,
//! summary {now {datasources, warmDatasources, coldDatasources, totalCacheEntries, totalIndexes, totalMemoryMB},
//!          range {hits, misses, queries, hitRate, avgQueryMs, warms, warmsSucceeded, warmsFailed},
//!          overallHealth},
//! datasources [{datasourceId, datasourceName, enabled,
//!   now {isWarm, lastWarmed, ageMinutes, staleAfterMinutes, totalEntries, indexCount, estimatedMemoryMB,
//!        memorySampleSize, health, score {health, score, ageScore, hitRateScore, coverageScore}, warmingJob},
//!   sinceLastWarm {since, queries, hitRate, avgQueryMs},
//!   range {hits, misses, queries, hitRate, avgQueryMs, activeBuckets, busiestBucket {time, queries}},
//!   coverage {asOf, measures, practices, providers, frequencies[]},
//!   trend [{time, timeMs, hits, misses, queries, hitRate, avgQueryMs}],
//!   memory [{time, timeMs, memoryMB, entries}],
//!   warms {count, succeeded, failed, cancelled, skipped, busy, unfinished, successRate,
//!          minDurationMs, avgDurationMs, maxDurationMs, lastFailure {jobId, at, error}, events [...]},
//!   integrity {method: "sampled", status: "ok"|"broken"|"notChecked", findings[]},
//!   issues [{severity, code, issue, recommendation}], recommendations[]}],
//! redis {topology, collectedAt, unavailable, nodes [{node, redisVersion, uptimeSeconds, usedMemoryMB,
//!        maxMemoryMB, usedMemoryPercent, peakMemoryMB, fragmentationRatio, evictedKeysSinceStart,
//!        expiredKeysSinceStart, keys, maxmemoryPolicy}], total, issues, recommendations},
//! notes []
//! ```

mod build;
pub mod csv;
pub mod html;
pub mod json;
mod markup;
mod model;
mod range;
mod svg;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use model::*;
pub use range::{ReportRange, ResolvedRange, iso};

use crate::error::{Error, Result};
use crate::keys::DsId;
use crate::redis_conn::Redis;
use crate::store::Store;

/// What a report covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportRequest {
    /// The period (default: the last 7 days).
    pub range: ReportRange,
    /// Datasource ids to include; empty means every registered datasource.
    pub datasources: Vec<DsId>,
}

/// The file formats of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// One self-contained, printable HTML page with inline SVG charts.
    Html,
    /// Tidy CSV tables, as a `.zip` or into a directory.
    Csv,
    /// The whole report document.
    Json,
}

impl ReportFormat {
    /// `html`, `csv`, `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
        }
    }

    /// The format a path asks for by its name: `.html`/`.htm`, `.json`,
    /// `.zip` (CSV), or a trailing `/` (CSV into a directory).
    pub fn from_path(path: &Path) -> Option<ReportFormat> {
        if path.as_os_str().to_string_lossy().ends_with(['/', '\\']) {
            return Some(ReportFormat::Csv);
        }
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "html" | "htm" => Some(ReportFormat::Html),
            "json" => Some(ReportFormat::Json),
            "zip" => Some(ReportFormat::Csv),
            _ => None,
        }
    }

    /// A file name to suggest in a save dialog.
    pub fn default_file_name(self) -> &'static str {
        match self {
            ReportFormat::Html => "cache-report.html",
            ReportFormat::Csv => "cache-report.zip",
            ReportFormat::Json => "cache-report.json",
        }
    }
}

impl FromStr for ReportFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "html" => Ok(ReportFormat::Html),
            "csv" => Ok(ReportFormat::Csv),
            "json" => Ok(ReportFormat::Json),
            other => Err(Error::Invalid(format!(
                "`{other}` is not a report format: use html, csv or json"
            ))),
        }
    }
}

/// Rounds to `decimals` places (report figures carry no float noise).
pub(crate) fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    // `+ 0.0` turns -0.0 (an empty float sum) into 0.0.
    (v * f).round() / f + 0.0
}

/// Gathers the report for `req`: stats, the health check, trends of each
/// datasource over the range and Redis INFO. A range longer than 90 days,
/// starting more than 90 days ago or in the future, or empty is
/// `Error::Invalid` (exit 2); an unknown datasource is `NoSuchDatasource`.
pub async fn build(redis: &Redis, store: &Store, req: &ReportRequest) -> Result<Report> {
    build::build_with(redis, store, req, &|_: &str| {}).await
}

/// Checks before any work that `path` can take `format`: CSV needs a `.zip`
/// or a directory; HTML and JSON need a file in an existing folder.
pub fn check_target(format: ReportFormat, path: &Path) -> Result<()> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(Error::Invalid("no output path given".into()));
    }
    let is_dir = path.is_dir();
    match format {
        ReportFormat::Csv if csv::is_zip(path) || is_dir => {}
        ReportFormat::Csv => {
            let named_dir = path.as_os_str().to_string_lossy().ends_with(['/', '\\'])
                || path.extension().is_none();
            if !named_dir {
                return Err(Error::Invalid(format!(
                    "a CSV report is several tables: write it to a .zip file or a folder (e.g. -o report.zip or -o report/), not {shown}"
                )));
            }
        }
        _ if is_dir => {
            return Err(Error::Invalid(format!(
                "{shown} is a folder: give a file name, e.g. {}",
                path.join(format.default_file_name()).display()
            )));
        }
        _ => {}
    }
    // Everything but a CSV directory is one file in an existing folder.
    if format != ReportFormat::Csv || csv::is_zip(path) {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(Error::Invalid(format!(
                "the folder {} does not exist",
                parent.display()
            )));
        }
    }
    Ok(())
}

/// Writes `write`'s output to a temporary file beside `path`, syncs it and
/// renames it over `path`, so a reader (or a crash) never sees half a report.
pub(crate) fn atomic_write(
    path: &Path,
    write: impl FnOnce(&std::fs::File) -> Result<()>,
) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} is not a file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    let result = write(&file).and_then(|_| {
        file.sync_all()
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))
    });
    drop(file);
    let result = result.and_then(|_| {
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("moving the report to {}", path.display()), e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `report` as `format` to `path` atomically (synchronous; the
/// async [`export`] runs it off the runtime's workers). Returns the path
/// written: the file, the zip, or the CSV directory.
pub fn write_file(report: &Report, format: ReportFormat, path: &Path) -> Result<PathBuf> {
    check_target(format, path)?;
    match format {
        ReportFormat::Html => atomic_write(path, |f| {
            let mut w = std::io::BufWriter::new(f);
            html::write(report, &mut w)?;
            w.flush()
                .map_err(|e| Error::io("writing the HTML report", e))
        })?,
        ReportFormat::Json => atomic_write(path, |f| {
            let mut w = std::io::BufWriter::new(f);
            json::write(report, &mut w)?;
            w.flush()
                .map_err(|e| Error::io("writing the JSON report", e))
        })?,
        ReportFormat::Csv => return csv::write(report, path),
    }
    Ok(path.to_path_buf())
}

/// Builds the report for `req` and writes it as `format` to `path`
/// atomically (temporary file + rename; CSV: every file of a directory, or
/// the zip). `progress` hears each step ("Reading cache statistics…", …,
/// "Writing …"). Returns the path written. The window's Export button and
/// `cachedeck report` both call this.
pub async fn export(
    redis: &Redis,
    store: &Store,
    req: &ReportRequest,
    format: ReportFormat,
    path: &Path,
    progress: impl Fn(&str),
) -> Result<PathBuf> {
    // A path that cannot take the format fails before the work, not after.
    check_target(format, path)?;
    let report = build::build_with(redis, store, req, &progress).await?;
    progress(&format!("Writing {}…", path.display()));
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_file(&report, format, &path))
        .await
        .map_err(|e| Error::Invalid(format!("the report writer stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window's backend spawns exports on tokio: the future must be Send.
    #[allow(dead_code)]
    fn export_future_is_send(redis: &Redis, store: &Store, req: &ReportRequest, path: &Path) {
        fn send<T: Send>(_: T) {}
        send(export(
            redis,
            store,
            req,
            ReportFormat::Html,
            path,
            |_: &str| {},
        ));
        send(build(redis, store, req));
    }

    /// A total over no datasources is 0, not -0 ("-0.00 MB" on the cards).
    #[test]
    fn an_empty_sum_rounds_to_plus_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert!(round(empty, 2).is_sign_positive());
        assert_eq!(format!("{:.2}", round(empty, 2)), "0.00");
    }

    #[test]
    fn formats_from_names_and_paths() {
        assert_eq!("HTML".parse::<ReportFormat>().unwrap(), ReportFormat::Html);
        assert_eq!("pdf".parse::<ReportFormat>().unwrap_err().exit_code(), 2);
        assert_eq!(
            ReportFormat::from_path(Path::new("a/r.zip")),
            Some(ReportFormat::Csv)
        );
        assert_eq!(
            ReportFormat::from_path(Path::new("out/")),
            Some(ReportFormat::Csv)
        );
        assert_eq!(
            ReportFormat::from_path(Path::new("r.HTM")),
            Some(ReportFormat::Html)
        );
        assert_eq!(ReportFormat::from_path(Path::new("r.txt")), None);
    }

    #[test]
    fn targets_are_checked_before_the_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert!(check_target(ReportFormat::Html, &d.join("r.html")).is_ok());
        assert!(check_target(ReportFormat::Csv, &d.join("r.zip")).is_ok());
        assert!(check_target(ReportFormat::Csv, &d.join("tables")).is_ok());
        assert!(check_target(ReportFormat::Csv, d).is_ok());
        let e = check_target(ReportFormat::Csv, &d.join("r.csv")).unwrap_err();
        assert!(e.to_string().contains(".zip"), "{e}");
        assert!(check_target(ReportFormat::Html, d).is_err());
        assert!(check_target(ReportFormat::Json, &d.join("missing/r.json")).is_err());
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.txt");
        atomic_write(&p, |f| {
            let mut w = f;
            w.write_all(b"one").map_err(|e| Error::io("test", e))
        })
        .expect("write");
        let failed = atomic_write(&p, |_| Err(Error::Invalid("boom".into())));
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.txt")]);
    }
}
