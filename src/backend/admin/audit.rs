//! The Audit tab's reads: bounded pages of `governance::audit::query`, newest
//! first, with a text filter applied over the rows the store returns, and
//! the export of every matching row to CSV or JSON.

use std::collections::HashSet;
use std::path::PathBuf;

use super::protocol::{AuditFormat, AuditQuery};
use super::{AdminEvent, send};
use crate::backend::Emitter;
use crate::error::{Error, Result};
use crate::governance::audit::{self, AuditRow};
use crate::store::Store;

/// Rows per page when the window does not say.
pub const DEFAULT_PAGE: i64 = 200;
/// Largest page the window may ask for.
pub const MAX_PAGE: i64 = 1000;
/// Most rows one export writes (the notice says when it stopped there).
pub const EXPORT_MAX: usize = 100_000;
/// Rows read from the store per round while a text filter skips rows.
const CHUNK: i64 = 500;
/// Rounds one page may take before it is returned short (a rare text over a
/// huge log): the window then offers "Load more".
const MAX_ROUNDS: usize = 40;

/// True when `row` contains `needle` (lowercase) in any shown field.
pub fn matches_text(row: &AuditRow, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    let has = |s: &str| s.to_lowercase().contains(needle);
    has(&row.action)
        || has(&row.result)
        || has(&row.db_user)
        || has(&row.os_user)
        || has(&row.profile)
        || has(&row.origin)
        || row.redis_user.as_deref().is_some_and(has)
        || row.detail.as_deref().is_some_and(has)
        || has(&row.params.to_string())
        || row
            .datasource_id
            .is_some_and(|d| format!("#{d}").contains(needle))
}

/// Reads up to `want` matching rows below the query's cursor. Returns them
/// (newest first) and whether more match below them.
pub async fn read_rows(
    store: &Store,
    q: &AuditQuery,
    want: usize,
) -> Result<(Vec<AuditRow>, bool)> {
    let needle = q.text.trim().to_lowercase();
    let mut filter = q.filter.clone();
    let mut until = filter.until_ms;
    let mut skip: HashSet<i64> = HashSet::new();
    if let Some(c) = &q.after {
        let below = c.at_ms.saturating_add(1);
        until = Some(until.map_or(below, |u| u.min(below)));
        skip.extend(c.seen_ids.iter().copied());
    }
    let mut out = Vec::new();
    for _ in 0..MAX_ROUNDS {
        // One more than wanted tells whether more follow.
        let chunk = if needle.is_empty() {
            want as i64 + 1
        } else {
            CHUNK.max(want as i64 + 1)
        };
        filter.until_ms = until;
        filter.limit = Some(chunk + skip.len() as i64);
        let rows = audit::query(store, &filter).await?;
        let exhausted = (rows.len() as i64) < chunk + skip.len() as i64;
        let Some(last) = rows.last().map(|r| r.at_ms) else {
            return Ok((out, false));
        };
        let mut next_skip: HashSet<i64> = skip
            .iter()
            .copied()
            .filter(|_| until == Some(last.saturating_add(1)))
            .collect();
        for r in rows {
            if r.at_ms == last {
                next_skip.insert(r.id);
            }
            if skip.contains(&r.id) || !matches_text(&r, &needle) {
                continue;
            }
            if out.len() == want {
                return Ok((out, true));
            }
            out.push(r);
        }
        if exhausted {
            return Ok((out, false));
        }
        until = Some(last.saturating_add(1));
        skip = next_skip;
    }
    // Stopped looking: say more may follow, the window offers Load more.
    Ok((out, true))
}

/// Answers one page.
pub(super) async fn query(emit: Emitter, store: Store, q: AuditQuery) {
    let page = q.filter.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize;
    match read_rows(&store, &q, page).await {
        Ok((rows, more)) => send(
            &emit,
            AdminEvent::AuditRows {
                seq: q.seq,
                rows,
                append: q.after.is_some(),
                more,
            },
        ),
        Err(e) => {
            let message = format!("cannot read the audit log: {e}");
            send(
                &emit,
                AdminEvent::AuditFailed {
                    seq: q.seq,
                    message: message.clone(),
                },
            );
            emit.error(message);
        }
    }
}

/// Writes rows to `path` atomically (blocking).
pub fn write_rows(rows: &[AuditRow], format: AuditFormat, path: &std::path::Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::Invalid("choose a file to export to".into()));
    }
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{} is a folder: give a file name, e.g. {}",
            path.display(),
            path.join(format!("audit.{}", format.extension())).display()
        )));
    }
    crate::report::atomic_write(path, |f| {
        let w = std::io::BufWriter::new(f);
        match format {
            AuditFormat::Csv => audit::export_csv(rows, w),
            AuditFormat::Json => audit::export_json(rows, w),
        }
    })
}

/// Exports every row matching the query's filters (up to [`EXPORT_MAX`]).
pub(super) async fn export(
    emit: Emitter,
    store: Store,
    mut q: AuditQuery,
    format: AuditFormat,
    path: PathBuf,
) {
    q.after = None;
    let outcome = async {
        let (rows, more) = read_rows(&store, &q, EXPORT_MAX).await?;
        let p = path.clone();
        let n = rows.len();
        tokio::task::spawn_blocking(move || write_rows(&rows, format, &p))
            .await
            .map_err(|e| Error::Invalid(format!("the export writer stopped: {e}")))??;
        Ok::<_, Error>((n, more))
    }
    .await;
    match outcome {
        Ok((n, more)) => {
            emit.notice(format!(
                "Exported {n} audit rows to {}{}",
                path.display(),
                if more {
                    format!(" (stopped at {EXPORT_MAX}; narrow the filters for the rest)")
                } else {
                    String::new()
                }
            ));
            send(
                &emit,
                AdminEvent::AuditExported {
                    path,
                    result: Ok(n),
                },
            );
        }
        Err(e) => {
            let message = format!("cannot export the audit log to {}: {e}", path.display());
            emit.error(message.clone());
            send(
                &emit,
                AdminEvent::AuditExported {
                    path,
                    result: Err(message),
                },
            );
        }
    }
}
