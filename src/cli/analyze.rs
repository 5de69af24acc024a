//! `cachedeck analyze`: memory and big-key analysis on a terminal, as aligned
//! tables (or the JSON of [`Analysis`]), with progress on stderr.

use super::purge::{Reporter, cancel_on_ctrl_c};
use super::{AnalyzeArgs, Ctx};
use crate::error::Result;
use crate::redis_admin::analyze::{Analysis, AnalyzeOptions, TopKey, analyze};

/// Runs the analysis; exit 1 when Ctrl-C cut it short (the partial result
/// is still printed).
pub async fn run(ctx: &Ctx, args: AnalyzeArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    let opts = AnalyzeOptions {
        pattern: args.pattern.into_bytes(),
        type_filter: args.key_type,
        sample: if args.full { None } else { args.sample },
        top: args.top,
        depth: args.depth,
        ..AnalyzeOptions::default()
    };
    let (cancel, watcher) = cancel_on_ctrl_c();
    let mut reporter = Reporter::new();
    let result = analyze(redis, &opts, &cancel, |p| {
        reporter.update(format!(
            "analysed {} keys of {} in the keyspace",
            p.scanned, p.keyspace
        ))
    })
    .await;
    watcher.abort();
    reporter.finish();
    let a = result?;
    ctx.print(&a, || human(&a));
    Ok(if a.cancelled { 1 } else { 0 })
}

/// Bytes as MB with two decimals.
fn mb(n: u64) -> String {
    format!("{:.2} MB", n as f64 / 1_048_576.0)
}

/// A TTL in ms for people.
fn ttl(ms: Option<u64>) -> String {
    match ms {
        None => "none".into(),
        Some(ms) if ms < 60_000 => format!("{} s", ms / 1000),
        Some(ms) if ms < 3_600_000 => format!("{} min", ms / 60_000),
        Some(ms) if ms < 86_400_000 => format!("{} h", ms / 3_600_000),
        Some(ms) => format!("{} d", ms / 86_400_000),
    }
}

/// Rows as columns padded to their widest cell (first column left-aligned,
/// the others right-aligned).
fn table(header: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![fmt(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(fmt));
    out
}

fn key_rows(keys: &[TopKey]) -> Vec<Vec<String>> {
    keys.iter()
        .map(|k| {
            vec![
                k.key.display.clone(),
                k.key_type.clone(),
                mb(k.memory_bytes),
                k.length.to_string(),
                ttl(k.ttl_ms),
            ]
        })
        .collect()
}

/// The human form: summary line, then one table per section.
fn human(a: &Analysis) -> String {
    let mut lines = vec![format!(
        "{} keys analysed of {} in the keyspace{}{}: {} in {} ms",
        a.keys_scanned,
        a.keys_in_keyspace,
        if a.sampled {
            " (sampled; figures are estimates)"
        } else {
            ""
        },
        if a.cancelled { " (cancelled)" } else { "" },
        mb(a.total_memory_bytes),
        a.duration_ms
    )];
    let key_header = ["KEY", "TYPE", "MEMORY", "LENGTH", "TTL"];
    lines.push(String::new());
    lines.push("Top keys by memory".into());
    lines.extend(table(&key_header, key_rows(&a.top_keys)));
    lines.push(String::new());
    lines.push("Top keys by length".into());
    lines.extend(table(&key_header, key_rows(&a.top_keys_by_length)));
    lines.push(String::new());
    lines.push("Namespaces".into());
    lines.extend(table(
        &["PREFIX", "KEYS", "MEMORY", "AVG TTL", "NO EXPIRY"],
        a.namespaces
            .iter()
            .map(|n| {
                vec![
                    n.prefix.clone(),
                    n.keys.to_string(),
                    mb(n.memory_bytes),
                    ttl(n.avg_ttl_ms),
                    n.no_expiry.to_string(),
                ]
            })
            .collect(),
    ));
    lines.push(String::new());
    lines.push("Types".into());
    lines.extend(table(
        &["TYPE", "KEYS", "MEMORY"],
        a.types
            .iter()
            .map(|(t, v)| vec![t.clone(), v.keys.to_string(), mb(v.memory_bytes)])
            .collect(),
    ));
    lines.push(String::new());
    lines.push("TTL".into());
    let mut ttl_rows = vec![vec![
        "no expiry".to_string(),
        a.ttl.no_expiry.to_string(),
        String::new(),
    ]];
    ttl_rows.extend(a.ttl.buckets.iter().map(|b| {
        vec![
            match b.up_to_ms {
                Some(ms) => format!("up to {}", ttl(Some(ms))),
                None => "longer".into(),
            },
            b.keys.to_string(),
            mb(b.memory_bytes),
        ]
    }));
    lines.extend(table(&["EXPIRES IN", "KEYS", "MEMORY"], ttl_rows));
    if !a.recommendations.is_empty() {
        lines.push(String::new());
        lines.push("Recommendations".into());
        for r in &a.recommendations {
            lines.push(format!("- {}", r.message));
            if let Some(c) = &r.command {
                lines.push(format!("    {c}"));
            }
        }
    }
    lines.join("\n")
}
