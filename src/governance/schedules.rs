//! Schedule changes (permission-checked, audited as `schedule_changed`) and
//! the schedule list with the next runs and missed runs.
//!
//! A schedule warms one datasource, or every enabled one ("Warm All"), at
//! each run of a 5-field cron in an IANA zone (default UTC). With
//! `warm_before_stale` it warms, at each run, only the datasources whose
//! cache age has reached 90% of their stale-after (or that were never
//! warmed); pair it with a frequent cron such as `*/5 * * * *`.

use serde::Serialize;

use super::audit::{self, actions};
use super::cron::{CronSpec, Preview};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::keys::DsId;
use crate::store::{Schedule, ScheduleInput, Store};

/// Runs younger than this that nobody ran yet are still run (a leader
/// hand-over); older ones are reported as missed.
pub const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(120);

/// How many next runs the list and the preview show.
pub const PREVIEW_RUNS: usize = 5;

/// The cron a `--before-stale` schedule gets when none is given: check every
/// five minutes.
pub const BEFORE_STALE_DEFAULT_CRON: &str = "*/5 * * * *";

/// What an admin asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRequest {
    /// The datasource to warm; `None` for every enabled one.
    pub datasource_id: Option<DsId>,
    /// 5-field cron expression.
    pub cron: String,
    /// IANA zone; `None` for UTC.
    pub tz: Option<String>,
    /// Warm only caches nearing stale (age ≥ 90% of stale-after).
    pub before_stale: bool,
}

/// A schedule as the list shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// The stored schedule.
    #[serde(flatten)]
    pub schedule: Schedule,
    /// What it warms, for people: `DS #3 Sales` or `all enabled datasources`.
    pub target: String,
    /// croner's description of the cron.
    pub description: String,
    /// The next runs in the schedule's zone (ISO-8601).
    pub next_runs: Vec<String>,
    /// The same runs in UTC.
    pub next_runs_utc: Vec<String>,
    /// The last run (ISO-8601 UTC), if it ever ran.
    pub last_run: Option<String>,
    /// The most recent missed run (ISO-8601 UTC), if any was reported.
    pub last_missed: Option<String>,
    /// Runs that have passed with nobody up and are not reported yet (the
    /// next scheduler reports them); `missedRuns` counts the reported ones.
    pub unreported_missed_runs: u64,
    /// Why the schedule cannot run, e.g. a zone this build does not know.
    pub problem: Option<String>,
}

/// Checks a cron and zone, and previews their next runs.
pub fn preview(cron: &str, tz: Option<&str>, now_ms: i64) -> Result<Preview> {
    Ok(CronSpec::parse(cron, tz)?.preview(now_ms, PREVIEW_RUNS))
}

/// Adds a schedule after validating it; returns it with its next runs.
pub async fn add(store: &Store, actor: &Actor, req: &ScheduleRequest) -> Result<ScheduleView> {
    let cron = if req.cron.trim().is_empty() && req.before_stale {
        BEFORE_STALE_DEFAULT_CRON.to_string()
    } else {
        req.cron.trim().to_string()
    };
    let spec = CronSpec::parse(&cron, req.tz.as_deref())?;
    let p = serde_json::json!({
        "op": "add",
        "datasourceId": req.datasource_id,
        "cron": cron,
        "tz": spec.tz.name(),
        "beforeStale": req.before_stale,
    });
    super::require_write(actor, "change schedules", req.datasource_id, p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::SCHEDULE_CHANGED,
        "change schedules",
        req.datasource_id,
        &p,
    )
    .await?;
    let result = async {
        if let Some(id) = req.datasource_id {
            store.datasource(id).await?;
        }
        store
            .add_schedule(&ScheduleInput {
                datasource_id: req.datasource_id,
                cron: cron.clone(),
                tz: spec.tz.name().to_string(),
                warm_before_stale: req.before_stale,
                created_by: actor.identity.clone(),
            })
            .await
    }
    .await;
    let mut p = p;
    if let Ok(s) = &result {
        p["id"] = s.id.into();
    }
    intent.finish(actor, p, &result).await;
    let s = result?;
    view(store, s, crate::store::now_ms()).await
}

/// Removes a schedule.
pub async fn remove(store: &Store, actor: &Actor, id: i64) -> Result<()> {
    let existing = store.schedule(id).await.ok();
    let ds = existing.as_ref().and_then(|s| s.datasource_id);
    let p = serde_json::json!({
        "op": "remove",
        "id": id,
        "cron": existing.as_ref().map(|s| s.cron.clone()),
        "tz": existing.as_ref().map(|s| s.tz.clone()),
    });
    super::require_write(actor, "change schedules", ds, p.clone()).await?;
    let intent = audit::begin(actor, actions::SCHEDULE_CHANGED, "change schedules", ds, &p).await?;
    let result = store.remove_schedule(id).await;
    intent.finish(actor, p, &result).await;
    result
}

/// Every schedule with its next runs and missed runs, as of `now_ms`.
pub async fn list(store: &Store, now_ms: i64) -> Result<Vec<ScheduleView>> {
    let mut out = Vec::new();
    for s in store.schedules().await? {
        out.push(view(store, s, now_ms).await?);
    }
    Ok(out)
}

/// Where the scheduler resumes a schedule: its last evaluated tick, or its
/// creation (no run before a schedule existed is missed).
pub fn watermark(s: &Schedule) -> i64 {
    s.last_tick_ms
        .unwrap_or(s.created_at_ms)
        .max(s.created_at_ms)
}

async fn view(store: &Store, s: Schedule, now_ms: i64) -> Result<ScheduleView> {
    let target = match s.datasource_id {
        Some(id) => match store.datasource(id).await {
            Ok(d) => format!("DS #{id} {}", d.name),
            Err(Error::NoSuchDatasource(_)) => format!("DS #{id} (removed)"),
            Err(e) => return Err(e),
        },
        None => "all enabled datasources".to_string(),
    };
    let mut v = ScheduleView {
        target,
        description: String::new(),
        next_runs: Vec::new(),
        next_runs_utc: Vec::new(),
        last_run: s.last_run_ms.map(crate::jobs::iso),
        last_missed: s.last_missed_ms.map(crate::jobs::iso),
        unreported_missed_runs: 0,
        problem: None,
        schedule: s,
    };
    match CronSpec::parse(&v.schedule.cron, Some(&v.schedule.tz)) {
        Ok(spec) => {
            let p = spec.preview(now_ms, PREVIEW_RUNS);
            v.description = p.description;
            v.next_runs = p.next_runs;
            v.next_runs_utc = p.next_runs_utc;
            let late = now_ms / 60_000 * 60_000 - CATCH_UP.as_millis() as i64;
            if v.schedule.enabled {
                let (runs, _) = spec.runs_between(watermark(&v.schedule), late);
                v.unreported_missed_runs = runs.len() as u64;
            }
        }
        Err(e) => v.problem = Some(e.to_string()),
    }
    Ok(v)
}
