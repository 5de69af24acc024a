//! `cachedeck report --format html|csv|json [--range 24h|7d|30d|FROM..TO]
//! [--datasource ID…] -o FILE`: builds the cache efficiency report and
//! writes it atomically; prints where it wrote and a one-line summary (or,
//! with `--json`, `{path, format, range, summary}`). A bad range or format
//! is a one-line error with exit code 2, checked before connecting.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::Ctx;
use crate::error::{Error, Result};
use crate::report::{self, Report, ReportFormat, ReportRange, ReportRequest};

/// `cachedeck report …`
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// html (one printable page with charts), csv (tables: -o FILE.zip or -o DIR/) or json.
    /// Default: from the -o name (.html, .json, .zip, DIR/).
    #[arg(long, value_name = "html|csv|json")]
    pub format: Option<String>,
    /// 24h, 7d, 30d (any duration up to 90d), or FROM..TO with ISO dates or
    /// date-times in UTC (e.g. 2025-10-01..2025-10-14; a TO date covers its whole day).
    #[arg(long, default_value = "7d", value_name = "24h|7d|30d|FROM..TO")]
    pub range: String,
    /// Only these datasources (repeat the flag or list several); default: all.
    #[arg(long, num_args = 1.., value_name = "ID")]
    pub datasource: Vec<i64>,
    /// Where to write: a file (.html/.json/.zip) or, for csv, a directory.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Written<'a> {
    /// The file, zip or directory written.
    path: String,
    /// html, csv or json.
    format: &'static str,
    /// The period covered.
    range: &'a report::RangeInfo,
    /// The report's headline figures.
    summary: &'a report::Summary,
}

/// `2 of 3 warm · 12,458 entries · 45.20 MB · hit rate 75.0% over 8 queries · avg 1.23 ms`
fn one_line(r: &Report) -> String {
    let s = &r.summary;
    let rate = s
        .range
        .hit_rate
        .map(|v| format!("hit rate {v:.1}% over {} queries", s.range.queries))
        .unwrap_or_else(|| "no queries in range".into());
    let avg = s
        .range
        .avg_query_ms
        .map(|v| format!(" · avg query {v:.2} ms"))
        .unwrap_or_default();
    format!(
        "{} to {} ({} buckets): {} of {} datasources warm · {} entries · {:.2} MB · {rate}{avg} · {} warms ({} failed) · health {}",
        r.range.from,
        r.range.to,
        r.range.bucket.as_str(),
        s.now.warm_datasources,
        s.now.datasources,
        s.now.total_cache_entries,
        s.now.total_memory_mb,
        s.range.warms,
        s.range.warms_failed,
        serde_json::to_value(s.overall_health)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    )
}

/// `cachedeck report`
pub async fn run(ctx: &Ctx, args: ReportArgs) -> Result<i32> {
    let format = match &args.format {
        Some(f) => f.parse::<ReportFormat>()?,
        None => ReportFormat::from_path(&args.output).ok_or_else(|| {
            Error::Invalid(format!(
                "give --format html|csv|json (the name {} does not tell)",
                args.output.display()
            ))
        })?,
    };
    let req = ReportRequest {
        range: ReportRange::parse(&args.range)?,
        datasources: args.datasource.clone(),
    };
    report::check_target(format, &args.output)?;
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    let verbose = !ctx.json && std::io::stderr().is_terminal();
    let report = report::build(redis, store, &req).await?;
    if verbose {
        eprintln!("writing {}…", args.output.display());
    }
    let output = args.output.clone();
    let written = {
        let report = report.clone();
        tokio::task::spawn_blocking(move || report::write_file(&report, format, &output))
            .await
            .map_err(|e| Error::Invalid(format!("the report writer stopped: {e}")))??
    };
    let shown = written.display().to_string();
    ctx.print(
        &Written {
            path: shown.clone(),
            format: format.as_str(),
            range: &report.range,
            summary: &report.summary,
        },
        || {
            format!(
                "wrote {} report to {shown}\n{}",
                format.as_str(),
                one_line(&report)
            )
        },
    );
    Ok(0)
}
