//! The HTML report: one self-contained file (inline CSS and SVG charts, no
//! scripts, no fonts or images from anywhere), readable on screen and
//! printable to clean PDF pages (`@media print`: light colours only, each
//! datasource on its own page, charts and tables kept whole).
//!
//! Every text that comes from data (datasource names, errors, findings) goes
//! through [`esc`]. Every figure carries its unit and the period it
//! describes ("now", "in range", "since last warm", "at last warm",
//! "since Redis start").

use std::fmt::Write as _;
use std::io::Write;

use super::markup::esc;
use super::model::*;
use super::svg::{self, Frame, Marker, YFormat, thousands};
use crate::error::{Error, Result};
use crate::metrics::health::fmt_minutes;
use crate::metrics::{Health, Overall, Severity};

/// Most display slots per chart: minute buckets of a 2-day range (2,880)
/// are summed into wider slots so lines stay readable and the file small.
const MAX_SLOTS: usize = 300;
/// Most warms listed per datasource (the JSON and CSV have all).
const MAX_WARM_ROWS: usize = 12;

fn health_str(h: Health) -> &'static str {
    match h {
        Health::Excellent => "excellent",
        Health::Good => "good",
        Health::Degraded => "degraded",
        Health::Stale => "stale",
        Health::Cold => "cold",
    }
}

fn overall_str(o: Overall) -> &'static str {
    match o {
        Overall::Excellent => "excellent",
        Overall::Good => "good",
        Overall::Degraded => "degraded",
        Overall::Critical => "critical",
    }
}

fn overall_class(o: Overall) -> &'static str {
    match o {
        Overall::Excellent => "h-excellent",
        Overall::Good => "h-good",
        Overall::Degraded => "h-degraded",
        Overall::Critical => "h-cold",
    }
}

fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} %"))
        .unwrap_or_else(|| "– (no queries)".into())
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 0.1 => format!("{v:.3} ms"),
        Some(v) => format!("{v:.2} ms"),
        None => "– (no queries)".into(),
    }
}

fn mb(v: f64) -> String {
    format!("{v:.2} MB")
}

fn opt_ms(v: Option<i64>) -> String {
    v.map(|v| format!("{} ms", thousands(v.max(0) as u64)))
        .unwrap_or_else(|| "–".into())
}

/// `2025-10-15 20:00 UTC` from an ISO timestamp (the ISO form stays in JSON/CSV).
fn when(iso: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(iso) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string(),
        Err(_) => iso.to_string(),
    }
}

/// `5 min`, `1 h`, `1 d`: the width of a display slot.
fn span(ms: i64) -> String {
    if ms % 86_400_000 == 0 {
        format!("{} d", ms / 86_400_000)
    } else if ms % 3_600_000 == 0 {
        format!("{} h", ms / 3_600_000)
    } else {
        format!("{} min", ms / 60_000)
    }
}

/// Buckets summed into one display slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    start: i64,
    end: i64,
    hits: u64,
    misses: u64,
    query_ms: f64,
}

impl Slot {
    fn queries(&self) -> u64 {
        self.hits + self.misses
    }
    fn hit_rate(&self) -> Option<f64> {
        (self.queries() > 0).then(|| self.hits as f64 * 100.0 / self.queries() as f64)
    }
    fn avg_ms(&self) -> Option<f64> {
        (self.queries() > 0).then(|| self.query_ms / self.queries() as f64)
    }
}

/// The slot width for `n` buckets of `bucket_ms`: a round multiple that
/// keeps the slots at most [`MAX_SLOTS`].
fn slot_ms(bucket: BucketSize, bucket_ms: i64, n: usize) -> i64 {
    let factors: &[i64] = match bucket {
        BucketSize::Minute => &[1, 2, 5, 10, 15, 30, 60, 120],
        BucketSize::Hour => &[1, 2, 3, 6, 12, 24, 48],
    };
    let f = factors
        .iter()
        .copied()
        .find(|f| n.div_ceil(*f as usize) < MAX_SLOTS)
        .unwrap_or(factors[factors.len() - 1]);
    bucket_ms * f
}

fn slots(r: &Report, d: &DatasourceReport) -> (i64, Vec<Slot>) {
    let width = slot_ms(r.range.bucket, r.range.bucket_ms, d.trend.len());
    let mut out: Vec<Slot> = Vec::new();
    for p in &d.trend {
        let start = p.time_ms.div_euclid(width) * width;
        if out.last().is_none_or(|s| s.start != start) {
            out.push(Slot {
                start,
                end: start + width,
                ..Default::default()
            });
        }
        if let Some(s) = out.last_mut() {
            s.hits += p.hits;
            s.misses += p.misses;
            s.query_ms += p.avg_query_ms.unwrap_or(0.0) * p.queries as f64;
        }
    }
    for s in &mut out {
        s.start = s.start.max(r.range.from_ms);
        s.end = s.end.min(r.range.to_ms);
    }
    (width, out)
}

/// Most memory/entries bars per chart.
const MAX_BARS: usize = 48;

/// At most [`MAX_BARS`] samples: the latest of each equal time slot.
fn thin_samples(memory: &[MemoryRow], from_ms: i64, to_ms: i64) -> Vec<&MemoryRow> {
    if memory.len() <= MAX_BARS {
        return memory.iter().collect();
    }
    let width = ((to_ms - from_ms) / MAX_BARS as i64).max(1);
    let mut out: Vec<&MemoryRow> = Vec::new();
    for m in memory {
        let slot = (m.time_ms - from_ms).div_euclid(width);
        match out.last_mut() {
            Some(last) if (last.time_ms - from_ms).div_euclid(width) == slot => *last = m,
            _ => out.push(m),
        }
    }
    out
}

/// `30 min`, `3.5 h`: the width of one of `n` slots over `ms`.
fn span_text(ms: i64, n: usize) -> String {
    fmt_minutes(ms as f64 / n as f64 / 60_000.0)
}

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #ffffff; color: #1d2330;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 40px; }
h1 { font-size: 23px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #d8dee9; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.sub { font-weight: normal; color: #5a6478; font-size: 13px; }
.meta { color: #4a5568; margin: 2px 0; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; margin: 10px 0 16px; }
.tile { border: 1px solid #d8dee9; border-radius: 6px; padding: 8px 10px; }
.tile .v { font-size: 20px; font-weight: 650; }
.tile .l { color: #2d3748; font-size: 13px; }
.tile .p { color: #718096; font-size: 11.5px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 4px 0 10px; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 4px 6px; text-align: left; vertical-align: top; }
th { color: #2d3748; font-weight: 600; border-bottom: 1.5px solid #cbd5e0; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n { white-space: nowrap; }
table.kv td:first-child { white-space: nowrap; }
table.kv td.n { white-space: normal; }
td.period { color: #5a6478; white-space: nowrap; }
.cols { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 22px; }
.badge { display: inline-block; white-space: nowrap; padding: 0 8px; border-radius: 10px; border: 1px solid; font-size: 12px; font-weight: 600; vertical-align: middle; }
.h-excellent { color: #1b5e20; border-color: #81c784; background: #edf7ee; }
.h-good { color: #245a1f; border-color: #aed581; background: #f3f9ec; }
.h-degraded { color: #7a4f01; border-color: #ffb74d; background: #fff6e5; }
.h-stale { color: #8a3a00; border-color: #ff8a65; background: #fff0eb; }
.h-cold { color: #8e1b1b; border-color: #e57373; background: #fdecec; }
.sev { display: inline-block; min-width: 58px; text-align: center; border-radius: 4px; border: 1px solid; font-size: 11px; font-weight: 700; text-transform: uppercase; }
.sev-error { color: #8e1b1b; border-color: #e57373; background: #fdecec; }
.sev-warning { color: #7a4f01; border-color: #ffb74d; background: #fff6e5; }
.sev-info { color: #1f4e79; border-color: #90caf9; background: #edf5fd; }
figure { margin: 6px 0 14px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: 600; font-size: 13px; margin-bottom: 2px; }
figcaption .sub { font-size: 12px; }
svg { display: block; width: 100%; height: auto; }
ul.findings { padding-left: 0; list-style: none; margin: 4px 0; }
ul.findings li { margin: 0 0 8px; }
ul.findings .rec { color: #2d3748; margin-left: 66px; }
.ok { color: #1b5e20; font-weight: 600; }
.bad { color: #8e1b1b; font-weight: 600; }
.muted { color: #718096; }
footer { margin-top: 34px; padding-top: 8px; border-top: 1px solid #d8dee9; color: #5a6478; font-size: 12px; }
@media screen and (max-width: 900px) {
  .cols { grid-template-columns: minmax(0, 1fr); }
  .tiles { grid-template-columns: repeat(2, 1fr); }
}
@media print {
  @page { size: A4; margin: 13mm 12mm; }
  body { font-size: 10.5pt; }
  main { max-width: none; padding: 0; }
  section.ds { break-before: page; page-break-before: always; }
  .cols { grid-template-columns: minmax(0, 1fr); gap: 0; }
  figure, table, .tiles, .keep { break-inside: avoid; page-break-inside: avoid; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn tile(out: &mut String, value: &str, label: &str, period: &str) {
    let _ = write!(
        out,
        "<div class=\"tile\"><div class=\"v\">{}</div><div class=\"l\">{}</div><div class=\"p\">{}</div></div>",
        esc(value),
        esc(label),
        esc(period)
    );
}

fn kv(out: &mut String, figure: &str, value: &str, period: &str) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"period\">{}</td></tr>",
        esc(figure),
        esc(value),
        esc(period)
    );
}

fn findings(out: &mut String, issues: &[ReportIssue]) {
    out.push_str("<ul class=\"findings\">");
    for i in issues {
        let sev = severity_str(i.severity);
        let _ = write!(
            out,
            "<li><span class=\"sev sev-{sev}\">{sev}</span> {} <span class=\"muted\">[{}]</span><div class=\"rec\">→ {}</div></li>",
            esc(&i.issue),
            esc(&i.code),
            esc(&i.recommendation)
        );
    }
    out.push_str("</ul>");
}

fn header(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        "<header><h1>Analytics Cache V2 — cache efficiency report</h1>\
         <p class=\"meta\">Range <b>{} → {}</b> ({}, {} buckets) · generated {} (Redis server time)</p>\
         <p class=\"meta\">{} · Redis {} · health <span class=\"badge {}\">{}</span></p></header>",
        esc(&when(&r.range.from)),
        esc(&when(&r.range.to)),
        esc(&r.range.label),
        r.range.bucket.as_str(),
        esc(&when(&r.generated_at)),
        match &r.datasource_filter {
            None => format!("all {} registered datasources", r.datasources.len()),
            Some(ids) => format!(
                "selected datasources: {}",
                ids.iter()
                    .map(|i| format!("#{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        match r.redis.topology {
            crate::redis_conn::Topology::Standalone => "standalone",
            crate::redis_conn::Topology::Cluster => "cluster",
        },
        overall_class(r.summary.overall_health),
        overall_str(r.summary.overall_health),
    );
    for n in &r.notes {
        let _ = write!(out, "<p class=\"meta\">Note: {}</p>", esc(n));
    }
}

fn summary(out: &mut String, r: &Report) {
    let s = &r.summary;
    out.push_str("<section class=\"summary\"><h2>Summary</h2><div class=\"tiles\">");
    tile(
        out,
        &format!("{} / {}", s.now.warm_datasources, s.now.datasources),
        "datasources warm",
        &format!("now · {} cold", s.now.cold_datasources),
    );
    tile(
        out,
        &thousands(s.now.total_cache_entries),
        "cache entries",
        &format!("now · {} indexes", thousands(s.now.total_indexes)),
    );
    tile(
        out,
        &mb(s.now.total_memory_mb),
        "estimated memory",
        "at each last warm",
    );
    tile(
        out,
        &s.range
            .hit_rate
            .map(|v| format!("{v:.1} %"))
            .unwrap_or_else(|| "–".into()),
        "hit rate",
        "in range",
    );
    tile(
        out,
        &thousands(s.range.queries),
        "queries",
        &format!(
            "in range · {} hits, {} misses",
            thousands(s.range.hits),
            thousands(s.range.misses)
        ),
    );
    tile(
        out,
        &s.range
            .avg_query_ms
            .map(|v| format!("{v:.2} ms"))
            .unwrap_or_else(|| "–".into()),
        "average query time",
        "in range",
    );
    tile(
        out,
        &thousands(s.range.warms),
        "warm jobs",
        &format!(
            "in range · {} succeeded, {} failed",
            s.range.warms_succeeded, s.range.warms_failed
        ),
    );
    tile(
        out,
        overall_str(s.overall_health),
        "overall health",
        "now (health check)",
    );
    out.push_str("</div>");
    out.push_str(
        "<table class=\"keep\"><thead><tr><th>Datasource</th><th>Health (now)</th>\
         <th class=\"n\">Entries (now)</th><th class=\"n\">Memory (MB, last warm)</th>\
         <th class=\"n\">Hit rate (%, in range)</th><th class=\"n\">Queries (in range)</th>\
         <th class=\"n\">Avg query (ms, in range)</th><th class=\"n\">Warms (in range)</th></tr></thead><tbody>",
    );
    for d in &r.datasources {
        let h = health_str(d.now.health);
        let _ = write!(
            out,
            "<tr><td><a href=\"#ds-{}\">DS #{} · {}</a></td><td><span class=\"badge h-{h}\">{h} · {:.0}</span></td>\
             <td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            d.datasource_id,
            d.datasource_id,
            esc(&d.datasource_name),
            d.now.score.score,
            thousands(d.now.total_entries),
            d.now.estimated_memory_mb,
            d.range
                .hit_rate
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "–".into()),
            thousands(d.range.queries),
            d.range
                .avg_query_ms
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "–".into()),
            d.warms.count
        );
    }
    if r.datasources.is_empty() {
        out.push_str(
            "<tr><td colspan=\"8\" class=\"muted\">No datasources are registered.</td></tr>",
        );
    }
    out.push_str("</tbody></table></section>");
}

fn redis_section(out: &mut String, r: &Report) {
    let x = &r.redis;
    out.push_str("<section class=\"redis\"><h2>Redis <span class=\"sub\">");
    match &x.collected_at {
        Some(t) => {
            let _ = write!(out, "memory and evictions, read {}", esc(&when(t)));
        }
        None => out.push_str("figures unavailable"),
    }
    out.push_str("</span></h2>");
    if let Some(why) = &x.unavailable {
        let _ = write!(
            out,
            "<p class=\"bad\">Redis INFO could not be read: {}</p>",
            esc(why)
        );
    }
    if !x.nodes.is_empty() {
        out.push_str(
            "<table class=\"keep\"><thead><tr><th>Node</th><th class=\"n\">Used memory (MB, now)</th>\
             <th class=\"n\">maxmemory (MB)</th><th class=\"n\">Used of max (%)</th>\
             <th class=\"n\">Peak (MB, since start)</th><th class=\"n\">Fragmentation (RSS/used)</th>\
             <th class=\"n\">Evicted keys (since start)</th><th class=\"n\">Keys (now)</th><th>Policy</th></tr></thead><tbody>",
        );
        let rows: Vec<&RedisNode> = if x.nodes.len() > 1 {
            x.nodes.iter().chain(x.total.iter()).collect()
        } else {
            x.nodes.iter().collect()
        };
        for n in rows {
            let uptime = n
                .uptime_seconds
                .map(|s| {
                    format!(
                        " <span class=\"muted\">(up {})</span>",
                        esc(&fmt_minutes(s as f64 / 60.0))
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td>{}{uptime}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&n.node),
                n.used_memory_mb,
                n.max_memory_mb
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "unlimited".into()),
                n.used_memory_percent
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_else(|| "–".into()),
                n.peak_memory_mb,
                n.fragmentation_ratio
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| "–".into()),
                thousands(n.evicted_keys_since_start),
                thousands(n.keys),
                esc(n.maxmemory_policy.as_deref().unwrap_or("–")),
            );
        }
        out.push_str("</tbody></table>");
    }
    if x.issues.is_empty() {
        out.push_str("<p class=\"ok\">No Redis-wide findings.</p>");
    } else {
        findings(out, &x.issues);
    }
    out.push_str("</section>");
}

/// The sampled reads: shares, cold memory, hottest and coldest measures.
fn read_usage(out: &mut String, u: &ReadUsageSection) {
    let sub = format!(
        "now, sampled: {} of {} entries",
        thousands(u.sample_size),
        thousands(u.total_entries)
    );
    let _ = write!(
        out,
        "<h3>Reads <span class=\"sub\">{}</span></h3><table class=\"kv keep\"><tbody>",
        esc(&sub)
    );
    let share = |v: Option<f64>| match v {
        Some(_) => pct(v),
        None => "– (not told by LFU counters)".to_string(),
    };
    kv(
        out,
        "Read in the last hour",
        &share(u.read_last_hour),
        "sampled",
    );
    kv(
        out,
        "Read in the last day",
        &share(u.read_last_day),
        "sampled",
    );
    kv(
        out,
        "Not read for a day",
        &pct(Some(u.cold_share)),
        "sampled",
    );
    let list = |v: &[String]| {
        if v.is_empty() {
            "–".to_string()
        } else {
            v.join(", ")
        }
    };
    kv(out, "Hottest measures", &list(&u.hottest_measures), "");
    kv(out, "Coldest measures", &list(&u.coldest_measures), "");
    kv(
        out,
        "Hottest frequencies",
        &list(&u.hottest_frequencies),
        "",
    );
    kv(
        out,
        "Coldest frequencies",
        &list(&u.coldest_frequencies),
        "",
    );
    out.push_str("</tbody></table>");
    let _ = write!(out, "<p>{}</p>", esc(&u.summary));
    for n in &u.notes {
        let _ = write!(out, "<p class=\"muted\">{}</p>", esc(n));
    }
}

fn datasource(out: &mut String, r: &Report, d: &DatasourceReport) {
    let h = health_str(d.now.health);
    let _ = write!(
        out,
        "<section class=\"ds\" id=\"ds-{}\"><h2>DS #{} · {} <span class=\"badge h-{h}\">{h} · {:.0} / 100</span></h2>",
        d.datasource_id,
        d.datasource_id,
        esc(&d.datasource_name),
        d.now.score.score,
    );
    let age = match (&d.now.last_warmed, d.now.age_minutes) {
        (Some(t), Some(a)) => format!("last warmed {} ({} ago)", when(t), fmt_minutes(a)),
        _ => "never warmed".into(),
    };
    let _ = write!(
        out,
        "<p class=\"meta\">{} · {} · stale after {}{}</p>",
        if d.enabled { "enabled" } else { "disabled" },
        esc(&age),
        esc(&fmt_minutes(d.now.stale_after_minutes)),
        d.now
            .warming_job
            .as_ref()
            .map(|j| format!(" · being warmed by job {}", esc(j)))
            .unwrap_or_default()
    );

    // Key figures with their periods.
    let since = "since last warm";
    let part = |v: Option<f64>, max: f64| {
        v.map(|v| format!("{v:.0} / {max:.0}"))
            .unwrap_or_else(|| "n/a (no data)".into())
    };
    out.push_str(
        "<div class=\"cols\"><div><h3>Key figures</h3><table class=\"kv keep\"><thead><tr><th>Figure</th><th class=\"n\">Value</th><th>Period</th></tr></thead><tbody>",
    );
    kv(
        out,
        "Health score",
        &format!("{:.0} / 100 ({h})", d.now.score.score),
        "now",
    );
    kv(out, "· age part", &part(d.now.score.age_score, 40.0), "now");
    kv(
        out,
        "· hit-rate part",
        &part(d.now.score.hit_rate_score, 40.0),
        "since last warm",
    );
    kv(
        out,
        "· coverage part",
        &part(d.now.score.coverage_score, 20.0),
        "at last warm",
    );
    kv(out, "Entries", &thousands(d.now.total_entries), "now");
    kv(
        out,
        "Secondary indexes",
        &thousands(d.now.index_count),
        "now",
    );
    kv(
        out,
        "Estimated memory",
        &mb(d.now.estimated_memory_mb),
        &format!("at last warm ({} keys sampled)", d.now.memory_sample_size),
    );
    kv(out, "Hit rate", &pct(d.range.hit_rate), "in range");
    kv(out, "Queries", &thousands(d.range.queries), "in range");
    kv(
        out,
        "· hits / misses",
        &format!(
            "{} / {}",
            thousands(d.range.hits),
            thousands(d.range.misses)
        ),
        "in range",
    );
    kv(
        out,
        "Average query time",
        &ms(d.range.avg_query_ms),
        "in range",
    );
    if let Some(b) = &d.range.busiest_bucket {
        kv(
            out,
            &format!("Busiest {}", r.range.bucket.as_str()),
            &format!("{} queries", thousands(b.queries)),
            &format!("in range, at {}", when(&b.time).replace(":00 UTC", " UTC")),
        );
    }
    kv(out, "Hit rate", &pct(d.since_last_warm.hit_rate), since);
    kv(out, "Queries", &thousands(d.since_last_warm.queries), since);
    kv(
        out,
        "Average query time",
        &ms(d.since_last_warm.avg_query_ms),
        since,
    );
    out.push_str("</tbody></table></div>");

    // Coverage and integrity beside the key figures.
    let c = &d.coverage;
    let _ = write!(
        out,
        "<div><h3>Coverage <span class=\"sub\">{}</span></h3><table class=\"kv keep\"><tbody>",
        esc(&c
            .as_of
            .as_deref()
            .map(|t| format!("at last warm ({})", when(t)))
            .unwrap_or_else(|| "not warm".into()))
    );
    kv(out, "Measures", &thousands(c.measures), "distinct");
    kv(out, "Practices", &thousands(c.practices), "distinct");
    kv(
        out,
        "Providers",
        &thousands(c.providers),
        "distinct, non-NULL",
    );
    let freqs = if c.frequencies.is_empty() {
        "–".to_string()
    } else {
        c.frequencies.join(", ")
    };
    kv(
        out,
        "Frequencies",
        &freqs,
        &format!("{}", c.frequencies.len()),
    );
    out.push_str("</tbody></table>");
    if let Some(u) = &d.read_usage {
        read_usage(out, u);
    }
    let (class, status) = match d.integrity.status {
        IntegrityStatus::Ok => ("ok", "no problems found"),
        IntegrityStatus::Broken => ("bad", "problems found"),
        IntegrityStatus::NotChecked => ("muted", "not checked (not warm)"),
    };
    let _ = write!(
        out,
        "<h3>Index integrity <span class=\"sub\">now, sampled by the health check</span></h3>\
         <p><span class=\"{class}\">{status}</span> <span class=\"muted\">— random sample of up to 200 entries and 50 indexes (50 members each), not a full walk.</span></p>"
    );
    if !d.integrity.findings.is_empty() {
        out.push_str("<ul>");
        for f in &d.integrity.findings {
            let _ = write!(out, "<li>{}</li>", esc(f));
        }
        out.push_str("</ul>");
    }
    out.push_str("</div></div>");

    // Charts.
    let (width, slots) = slots(r, d);
    let markers: Vec<Marker> = d
        .warms
        .events
        .iter()
        .filter(|w| w.state != "skipped")
        .filter_map(|w| {
            let t = w.completed_at.as_deref().unwrap_or(&w.queued_at);
            chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| Marker {
                    t_ms: t.timestamp_millis(),
                    ok: w.state == "succeeded",
                })
        })
        .collect();
    let slot_text = span(width);
    let legend = if markers.is_empty() || d.range.queries == 0 {
        String::new()
    } else {
        " · ▲ warm (green succeeded, red failed)".to_string()
    };
    let _ = write!(
        out,
        "<h3>Query trends <span class=\"sub\">in range, one point per {slot_text} ({} buckets summed){legend}</span></h3>",
        r.range.bucket.as_str()
    );
    let name = &d.datasource_name;
    if d.range.queries == 0 {
        out.push_str("<p class=\"muted\">No queries in this range: nothing to plot.</p>");
    } else {
        let name = &d.datasource_name;
        let id = d.datasource_id;
        let charts = [
            (
                "Hit rate (%)",
                YFormat::Percent,
                format!("Hit rate in percent per {slot_text} of DS #{id} {name}"),
            ),
            (
                "Avg query time (ms)",
                YFormat::Ms,
                format!("Average query time in ms per {slot_text} of DS #{id} {name}"),
            ),
        ];
        for (i, (title, format, description)) in charts.into_iter().enumerate() {
            let f = Frame {
                from_ms: r.range.from_ms,
                to_ms: r.range.to_ms,
                y_title: title,
                y_format: format,
                height: 220.0,
                description: &description,
                markers: &markers,
            };
            let points: Vec<(i64, Option<f64>)> = slots
                .iter()
                .map(|s| {
                    (
                        (s.start + s.end) / 2,
                        if i == 0 { s.hit_rate() } else { s.avg_ms() },
                    )
                })
                .collect();
            let (caption, color) = if i == 0 {
                ("Hit rate (%)", "#2b6cb0")
            } else {
                ("Average query time (ms)", "#b7791f")
            };
            let _ = write!(
                out,
                "<figure><figcaption>{caption} <span class=\"sub\">per {slot_text}; gaps: no queries</span></figcaption>{}</figure>",
                svg::line_chart(&f, &points, color, "No queries in this range")
            );
        }
        let volume_title = format!("Queries per {slot_text}");
        let description = format!("Queries per {slot_text} of DS #{} {name}", d.datasource_id);
        let f = Frame {
            from_ms: r.range.from_ms,
            to_ms: r.range.to_ms,
            y_title: "Queries (count)",
            y_format: YFormat::Count,
            height: 190.0,
            description: &description,
            markers: &markers,
        };
        let columns: Vec<(i64, i64, f64)> = slots
            .iter()
            .map(|s| (s.start, s.end, s.queries() as f64))
            .collect();
        let _ = write!(
            out,
            "<figure><figcaption>Query volume <span class=\"sub\">{}, hits + misses</span></figcaption>{}</figure>",
            esc(&volume_title),
            svg::column_chart(&f, &columns, "#4a5568", 1.0, "No queries in this range")
        );
    }

    // Memory and entries: one bar per sample (the last of each of
    // MAX_BARS equal time slots when there are more).
    let samples = thin_samples(&d.memory, r.range.from_ms, r.range.to_ms);
    let _ = write!(
        out,
        "<h3>Memory and entries <span class=\"sub\">in range, one bar per sample (taken at each warm and periodically){}</span></h3>",
        if samples.len() < d.memory.len() {
            format!(
                "; the latest of each {}",
                span_text(r.range.to_ms - r.range.from_ms, MAX_BARS)
            )
        } else {
            String::new()
        }
    );
    if samples.is_empty() {
        out.push_str(
            "<p class=\"muted\">No memory samples in this range (they are taken at each warm and periodically while the cache is warm).</p>",
        );
    } else {
        for (i, (caption, title, format, color)) in [
            (
                "Estimated memory (MB)",
                "Memory (MB)",
                YFormat::Mb,
                "#6b46c1",
            ),
            (
                "Entries (count)",
                "Entries (count)",
                YFormat::Count,
                "#2c7a7b",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let description = format!("{caption} of DS #{} {name} per sample", d.datasource_id);
            let f = Frame {
                from_ms: r.range.from_ms,
                to_ms: r.range.to_ms,
                y_title: title,
                y_format: format,
                height: 180.0,
                description: &description,
                markers: &[],
            };
            let bars: Vec<(i64, f64)> = samples
                .iter()
                .map(|m| {
                    (
                        m.time_ms,
                        if i == 0 {
                            m.memory_mb
                        } else {
                            m.entries as f64
                        },
                    )
                })
                .collect();
            let _ = write!(
                out,
                "<figure><figcaption>{caption}</figcaption>{}</figure>",
                svg::bar_chart(&f, &bars, color, "No samples in this range")
            );
        }
    }

    // Warm history.
    let w = &d.warms;
    out.push_str("<h3>Warm history <span class=\"sub\">jobs queued in range</span></h3>");
    if w.count == 0 {
        out.push_str("<p class=\"muted\">No warm job was queued in this range.</p>");
    } else {
        let _ = write!(
            out,
            "<table class=\"keep\"><thead><tr><th class=\"n\">Warms</th><th class=\"n\">Succeeded</th><th class=\"n\">Failed</th>\
         <th class=\"n\">Cancelled</th><th class=\"n\">Skipped</th><th class=\"n\">Busy</th><th class=\"n\">Success rate (%)</th>\
         <th class=\"n\">Duration min (ms)</th><th class=\"n\">avg (ms)</th><th class=\"n\">max (ms)</th></tr></thead>\
         <tbody><tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr></tbody></table>",
            w.count,
            w.succeeded,
            w.failed,
            w.cancelled,
            w.skipped,
            w.busy,
            w.success_rate
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "–".into()),
            opt_ms(w.min_duration_ms).trim_end_matches(" ms"),
            w.avg_duration_ms
                .map(|v| thousands(v.round() as u64))
                .unwrap_or_else(|| "–".into()),
            opt_ms(w.max_duration_ms).trim_end_matches(" ms"),
        );
    }
    match &w.last_failure {
        Some(f) => {
            let _ = write!(
                out,
                "<p><span class=\"bad\">Last failure</span> {} (job {}): {}</p>",
                esc(&when(&f.at)),
                esc(&f.job_id),
                esc(&f.error)
            );
        }
        None if w.count > 0 => out.push_str("<p class=\"ok\">No failed warm in range.</p>"),
        None => {}
    }
    if !w.events.is_empty() {
        let shown = w.events.len().min(MAX_WARM_ROWS);
        let _ = write!(
            out,
            "<table><thead><tr><th>Queued (UTC)</th><th>State</th><th class=\"n\">Duration (ms)</th><th class=\"n\">Rows read</th>\
             <th class=\"n\">Entries written</th><th>By</th><th>Error</th></tr></thead><tbody>"
        );
        for e in w.events.iter().rev().take(shown) {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&when(&e.queued_at)),
                esc(&e.state),
                opt_ms(e.duration_ms).trim_end_matches(" ms"),
                thousands(e.rows_processed.max(0) as u64),
                thousands(e.entries_cached.max(0) as u64),
                esc(&e.actor),
                esc(e.error.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</tbody></table>");
        if w.events.len() > shown {
            let _ = write!(
                out,
                "<p class=\"muted\">The latest {shown} of {} warms; the JSON and CSV reports list all.</p>",
                w.events.len()
            );
        }
    }

    // Findings and recommendations.
    out.push_str(
        "<h3>Health findings and recommendations <span class=\"sub\">now, from the health check</span></h3>",
    );
    if d.issues.is_empty() {
        out.push_str("<p class=\"ok\">No findings: nothing to do.</p>");
    } else {
        findings(out, &d.issues);
    }
    out.push_str("</section>");
}

/// The whole report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"cachedeck {}\">\
         <title>Cache efficiency report · {} · {}</title><style>{CSS}</style></head><body><main>",
        env!("CARGO_PKG_VERSION"),
        esc(&r.range.label),
        esc(&when(&r.generated_at)),
    );
    header(&mut out, r);
    summary(&mut out, r);
    redis_section(&mut out, r);
    for d in &r.datasources {
        datasource(&mut out, r, d);
    }
    let _ = write!(
        out,
        "<footer><p><b>Periods.</b> <i>now</i>: read from Redis at {}. <i>in range</i>: summed from the {} statistics buckets \
         between {} and {}. <i>since last warm</i>: the reader counters reset by each swap (the health score's hit-rate part uses them). \
         <i>at last warm</i>: written by the last swap. Redis counters: since each server started.</p>\
         <p><b>Units.</b> Memory in MB (1 MB = 1,048,576 bytes; estimated from sampled keys), times in ms, hit rates in percent of \
         queries (hits + misses), all times UTC.</p>\
         <p>Aggregates only: this report holds no cached rows and no entry key names. Report schema version {}; \
         generated by cachedeck {}.</p></footer></main></body></html>",
        esc(&when(&r.generated_at)),
        r.range.bucket.as_str(),
        esc(&when(&r.range.from)),
        esc(&when(&r.range.to)),
        r.schema_version,
        env!("CARGO_PKG_VERSION"),
    );
    out.push('\n');
    out
}

/// Writes the HTML report to `w`.
pub fn write(r: &Report, mut w: impl Write) -> Result<()> {
    w.write_all(render(r).as_bytes())
        .and_then(|_| w.flush())
        .map_err(|e| Error::io("writing the HTML report", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<b>\"A&B\"</b> 'x'"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt; &#39;x&#39;"
        );
        assert_eq!(esc("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn slot_widths_stay_round() {
        assert_eq!(slot_ms(BucketSize::Minute, 60_000, 1441), 5 * 60_000);
        assert_eq!(slot_ms(BucketSize::Minute, 60_000, 61), 60_000);
        assert_eq!(slot_ms(BucketSize::Minute, 60_000, 2881), 10 * 60_000);
        assert_eq!(slot_ms(BucketSize::Hour, 3_600_000, 169), 3_600_000);
        assert_eq!(slot_ms(BucketSize::Hour, 3_600_000, 721), 3 * 3_600_000);
        assert_eq!(span(5 * 60_000), "5 min");
        assert_eq!(span(3 * 3_600_000), "3 h");
    }
}
