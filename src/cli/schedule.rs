//! `cachedeck schedule add|list|remove|preview`: warm schedules.

use clap::{Args, Subcommand};

use super::Ctx;
use crate::error::Result;
use crate::governance::schedules::{self, ScheduleRequest, ScheduleView};

/// `cachedeck schedule …`
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Add a schedule; prints its next runs.
    Add(ScheduleAddArgs),
    /// List schedules with their next runs and missed runs.
    List,
    /// Remove a schedule.
    Remove {
        /// The schedule's id (see `schedule list`).
        #[arg(long)]
        id: i64,
    },
    /// Check a cron expression and zone and show the next runs (changes nothing).
    Preview {
        /// 5-field cron expression, e.g. "0 */4 * * *".
        #[arg(long)]
        cron: String,
        /// IANA time zone, e.g. Europe/Berlin (default UTC).
        #[arg(long)]
        tz: Option<String>,
    },
}

/// `cachedeck schedule add (--datasource ID | --all) --cron C [--tz Z] [--before-stale]`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("schedule_target").required(true).args(["datasource", "all"])))]
pub struct ScheduleAddArgs {
    /// The datasource to warm.
    #[arg(long, conflicts_with = "all")]
    pub datasource: Option<i64>,
    /// Warm every enabled datasource ("Warm All").
    #[arg(long)]
    pub all: bool,
    /// 5-field cron expression, e.g. "0 */4 * * *" (with --before-stale it
    /// says when to check, default every 5 minutes).
    #[arg(long, required_unless_present = "before_stale")]
    pub cron: Option<String>,
    /// IANA time zone the cron is read in, e.g. Europe/Berlin (default UTC).
    #[arg(long)]
    pub tz: Option<String>,
    /// At each run, warm only caches whose age reached 90% of their stale-after.
    #[arg(long)]
    pub before_stale: bool,
}

fn describe(v: &ScheduleView) -> String {
    let s = &v.schedule;
    let mut out = format!(
        "#{:<3} {:<28} \"{}\" {}{}{}",
        s.id,
        v.target,
        s.cron,
        s.tz,
        if s.warm_before_stale {
            " (before stale)"
        } else {
            ""
        },
        if s.enabled { "" } else { " (disabled)" }
    );
    if !v.description.is_empty() {
        out.push_str(&format!("\n     {}", v.description));
    }
    if let Some(p) = &v.problem {
        out.push_str(&format!("\n     cannot run: {p}"));
    }
    if !v.next_runs.is_empty() {
        out.push_str(&format!("\n     next: {}", v.next_runs.join(", ")));
    }
    out.push_str(&format!(
        "\n     last run: {}",
        v.last_run.as_deref().unwrap_or("never")
    ));
    if s.missed_runs > 0 || v.unreported_missed_runs > 0 {
        out.push_str(&format!(
            "\n     MISSED: {} run(s) reported (latest {}){}",
            s.missed_runs,
            v.last_missed.as_deref().unwrap_or("-"),
            if v.unreported_missed_runs > 0 {
                format!(", {} more since nobody was up", v.unreported_missed_runs)
            } else {
                String::new()
            }
        ));
    }
    out
}

/// Runs `cachedeck schedule add|list|remove|preview`.
pub async fn run(ctx: &Ctx, cmd: ScheduleCmd) -> Result<i32> {
    match cmd {
        ScheduleCmd::Preview { cron, tz } => {
            let p = schedules::preview(&cron, tz.as_deref(), crate::store::now_ms())?;
            ctx.print(&p, || {
                format!(
                    "\"{}\" in {}: {}\nnext runs:\n  {}",
                    p.cron,
                    p.tz,
                    p.description,
                    p.next_runs
                        .iter()
                        .zip(&p.next_runs_utc)
                        .map(|(l, u)| format!("{l}  ({u})"))
                        .collect::<Vec<_>>()
                        .join("\n  ")
                )
            });
        }
        ScheduleCmd::Add(a) => {
            let store = ctx.store().await?;
            let actor = ctx.actor().await?;
            let req = ScheduleRequest {
                datasource_id: if a.all { None } else { a.datasource },
                cron: a.cron.unwrap_or_default(),
                tz: a.tz,
                before_stale: a.before_stale,
            };
            let v = schedules::add(store, &actor, &req).await?;
            ctx.print(&v, || format!("added {}", describe(&v)));
        }
        ScheduleCmd::List => {
            let store = ctx.store().await?;
            let all = schedules::list(store, crate::store::now_ms()).await?;
            ctx.print(&all, || {
                if all.is_empty() {
                    "no schedules (add one with `cachedeck schedule add`)".into()
                } else {
                    all.iter().map(describe).collect::<Vec<_>>().join("\n")
                }
            });
        }
        ScheduleCmd::Remove { id } => {
            let store = ctx.store().await?;
            let actor = ctx.actor().await?;
            schedules::remove(store, &actor, id).await?;
            ctx.print(&serde_json::json!({ "removed": id }), || {
                format!("removed schedule #{id}")
            });
        }
    }
    Ok(0)
}
