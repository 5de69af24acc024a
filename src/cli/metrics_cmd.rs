//! `cachedeck stats` and `cachedeck health [--strict]`.

use std::fmt::Write as _;

use super::Ctx;
use crate::error::Result;
use crate::metrics::{self, DatasourceCacheMetrics, HealthReport, Severity, StatsReport};

/// Exit code of `health --strict` when an error-level issue exists (DESIGN.md).
pub const STRICT_FAILURE: i32 = 7;

fn health_word(h: metrics::Health) -> &'static str {
    match h {
        metrics::Health::Excellent => "excellent",
        metrics::Health::Good => "good",
        metrics::Health::Degraded => "degraded",
        metrics::Health::Stale => "stale",
        metrics::Health::Cold => "cold",
    }
}

fn percent(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.1}%"))
        .unwrap_or_else(|| "no queries yet".into())
}

/// One line per datasource: health, age, entries, memory, hit rate, avg ms.
fn ds_line(m: &DatasourceCacheMetrics) -> String {
    let age = m
        .age_minutes
        .map(|a| format!("warmed {} ago", metrics::health::fmt_minutes(a)))
        .unwrap_or_else(|| "never warmed".into());
    let mut line = format!(
        "DS #{} {}: {} ({:.0}) • {age} • {} entries • {} indexes • {:.2} MB • hit rate {}",
        m.datasource_id,
        m.datasource_name,
        health_word(m.health),
        m.health_score.score,
        m.total_entries,
        m.index_count,
        m.estimated_memory_mb,
        if m.reads_unreported() {
            metrics::READS_NOT_REPORTED.to_string()
        } else {
            percent(m.cache_hit_rate)
        },
    );
    if let Some(avg) = m.avg_query_time_ms {
        let _ = write!(line, " • avg {avg:.2} ms over {} queries", m.total_queries);
    }
    if !m.enabled {
        line.push_str(" • disabled");
    }
    if let Some(job) = &m.warming_job {
        let _ = write!(line, " • warming (job {job})");
    }
    if m.written_elsewhere {
        let how = |s: metrics::Source| match s {
            metrics::Source::Recorded => "recorded",
            metrics::Source::Observed => "observed",
            metrics::Source::Estimated => "estimated",
        };
        let _ = write!(
            line,
            "\n    written by another tool: last warm {}, coverage {}, memory {}",
            how(m.sources.last_warm),
            how(m.sources.coverage),
            how(m.sources.memory)
        );
    }
    if let Some(u) = &m.read_usage {
        let _ = write!(line, "\n    reads (sampled, {} entries): ", u.sample_size);
        if let (Some(h), Some(d)) = (u.read_last_hour, u.read_last_day) {
            let _ = write!(
                line,
                "{h:.1}% read in the last hour, {d:.1}% in the last day; "
            );
        }
        line.push_str(&u.cold_sentence());
    }
    for w in &m.warnings {
        let _ = write!(line, "\n    ⚠ {w}");
    }
    line
}

/// The human form of a stats report.
pub fn stats_text(r: &StatsReport) -> String {
    let s = &r.summary;
    let mut out = format!(
        "{} datasources • {} warm • {} cold • {} entries • {} indexes • {:.2} MB • hit rate {}",
        s.total_datasources,
        s.warm_datasources,
        s.cold_datasources,
        s.total_cache_entries,
        s.total_indexes,
        s.total_memory_mb,
        percent(s.overall_cache_hit_rate),
    );
    for m in &r.datasources {
        out.push('\n');
        out.push_str(&ds_line(m));
    }
    out
}

/// The human form of a health report.
pub fn health_text(r: &HealthReport) -> String {
    let overall = match r.overall {
        metrics::Overall::Excellent => "excellent",
        metrics::Overall::Good => "good",
        metrics::Overall::Degraded => "degraded",
        metrics::Overall::Critical => "critical",
    };
    let mut out = format!("overall: {overall}");
    if r.issues.is_empty() {
        out.push_str("\nno issues");
    }
    for i in &r.issues {
        let sev = match i.severity {
            Severity::Error => "ERROR",
            Severity::Warning => "WARN ",
            Severity::Info => "INFO ",
        };
        let who = match (i.datasource_id, &i.datasource_name) {
            (Some(id), Some(name)) => format!("DS #{id} {name}"),
            (Some(id), None) => format!("DS #{id}"),
            _ => "Redis".into(),
        };
        let _ = write!(out, "\n{sev} {who} [{}]: {}", i.code, i.issue);
    }
    if !r.recommendations.is_empty() {
        out.push_str("\nrecommendations:");
        for (n, rec) in r.recommendations.iter().enumerate() {
            let _ = write!(out, "\n  {}. {rec}", n + 1);
        }
    }
    out
}

/// `cachedeck stats`
pub async fn stats(ctx: &Ctx) -> Result<i32> {
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    let r = metrics::stats(redis, store).await?;
    ctx.print(&r, || stats_text(&r));
    Ok(0)
}

/// `cachedeck health [--strict]`: exit 7 with `--strict` when an error-level
/// issue exists, so a cron job or CI can alert on it.
pub async fn health(ctx: &Ctx, strict: bool) -> Result<i32> {
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    let r = metrics::check(redis, store).await?;
    ctx.print(&r, || health_text(&r));
    let has_error = r.issues.iter().any(|i| i.severity == Severity::Error);
    Ok(if strict && has_error {
        STRICT_FAILURE
    } else {
        0
    })
}
