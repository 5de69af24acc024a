//! `cachedeck audit [--since 7d] [--action A] [--user U] [--datasource ID]
//! [--limit N] [--csv] [-o FILE]`: read or export the audit log.

use std::path::PathBuf;

use clap::Args;

use super::Ctx;
use crate::config::parse_duration;
use crate::error::{Error, Result};
use crate::governance::audit::{self, AuditFilter, AuditRow};

/// `cachedeck audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only rows this recent, e.g. 24h, 7d, 90d; `all` for every row.
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Only this action, e.g. cache_warm_initiated, permission_denied.
    #[arg(long)]
    pub action: Option<String>,
    /// Only this user: database/admin identity, Redis user, or OS user.
    #[arg(long)]
    pub user: Option<String>,
    /// Only rows about this datasource.
    #[arg(long)]
    pub datasource: Option<i64>,
    /// Most rows to show, newest first.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Print CSV (with a header line) instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Write the rows to FILE instead: CSV for `.csv` or with --csv, else JSON.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// The lowercase subcommand name of a command line, for audit rows.
pub(crate) fn command_name(cmd: &Option<super::Command>) -> String {
    match cmd {
        Some(c) => {
            let text = format!("{c:?}");
            let end = text
                .find(|ch: char| !ch.is_alphanumeric())
                .unwrap_or(text.len());
            let mut name = String::new();
            for (i, ch) in text[..end].chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    name.push('-');
                }
                name.push(ch.to_ascii_lowercase());
            }
            name
        }
        None => "gui".into(),
    }
}

fn line(r: &AuditRow) -> String {
    let ds = r
        .datasource_id
        .map(|d| format!("DS #{d}"))
        .unwrap_or_else(|| "-".into());
    let user = match &r.redis_user {
        Some(u) => format!("{} (redis {u}, {})", r.db_user, r.os_user),
        None => format!("{} ({})", r.db_user, r.os_user),
    };
    let params = if r.params.as_object().is_some_and(|m| m.is_empty()) {
        String::new()
    } else {
        format!(" {}", r.params)
    };
    let detail = r
        .detail
        .as_deref()
        .map(|d| format!(" — {d}"))
        .unwrap_or_default();
    format!(
        "{}  {:<22} {:<7} {:<12} {}  {}/{}{params}{detail}",
        r.at, r.action, ds, r.result, user, r.profile, r.origin
    )
}

/// Runs `cachedeck audit`: reads, prints or exports the audit log.
pub async fn run(ctx: &Ctx, a: AuditArgs) -> Result<i32> {
    let since_ms = match a.since.trim() {
        "all" => None,
        s => Some(crate::store::now_ms() - parse_duration(s)?.as_millis() as i64),
    };
    if a.limit <= 0 {
        return Err(Error::Invalid("--limit must be at least 1".into()));
    }
    let filter = AuditFilter {
        since_ms,
        until_ms: None,
        action: a.action,
        user: a.user,
        datasource_id: a.datasource,
        limit: Some(a.limit),
    };
    let store = ctx.store().await?;
    let rows = audit::query(store, &filter).await?;
    if let Some(path) = &a.output {
        let csv = a.csv
            || path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let file = std::fs::File::create(path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let w = std::io::BufWriter::new(file);
        if csv {
            audit::export_csv(&rows, w)?;
        } else {
            audit::export_json(&rows, w)?;
        }
        ctx.print(
            &serde_json::json!({ "rows": rows.len(), "file": path.display().to_string() }),
            || format!("wrote {} audit rows to {}", rows.len(), path.display()),
        );
        return Ok(0);
    }
    if a.csv {
        audit::export_csv(&rows, std::io::stdout().lock())?;
        return Ok(0);
    }
    ctx.print(&rows, || {
        if rows.is_empty() {
            "no audit rows match".into()
        } else {
            rows.iter().map(line).collect::<Vec<_>>().join("\n")
        }
    });
    Ok(0)
}
