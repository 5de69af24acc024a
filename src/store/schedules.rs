//! Warm schedules: a 5-field cron in an IANA time zone for one datasource or
//! for all of them ("Warm All"), optionally only when a cache nears stale.

use serde::Serialize;

use super::{Store, now_ms, on_pool};
use crate::error::{Error, Result};
use crate::keys::DsId;

/// One stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Row id; also names the schedule's tick claims in Redis.
    pub id: i64,
    /// The datasource it warms; `None` warms every enabled datasource.
    pub datasource_id: Option<DsId>,
    /// 5-field cron expression, e.g. `0 */4 * * *`.
    pub cron: String,
    /// IANA time zone the cron is read in, e.g. `Europe/Berlin`.
    pub tz: String,
    /// Warm at a tick only the datasources whose cache age has reached 90% of
    /// their stale-after (or that were never warmed).
    pub warm_before_stale: bool,
    /// Disabled schedules are kept but never fire.
    pub enabled: bool,
    /// When it was created (ms since the epoch): no run before it is missed.
    pub created_at_ms: i64,
    /// The last tick at which it fired (ms since the epoch).
    pub last_run_ms: Option<i64>,
    /// The last tick the scheduler has evaluated it through, so a missed run
    /// is reported once and never again.
    pub last_tick_ms: Option<i64>,
    /// How many runs nobody was up to do, in total.
    pub missed_runs: i64,
    /// The most recent missed run (ms since the epoch).
    pub last_missed_ms: Option<i64>,
    /// The identity that created it.
    pub created_by: Option<String>,
}

/// What a new schedule needs (validated by `governance::schedules`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleInput {
    /// The datasource it warms; `None` for all.
    pub datasource_id: Option<DsId>,
    /// 5-field cron expression.
    pub cron: String,
    /// IANA time zone.
    pub tz: String,
    /// Warm only caches that near stale.
    pub warm_before_stale: bool,
    /// The identity creating it.
    pub created_by: String,
}

const COLUMNS: &str = "id, datasource_id, cron, tz, warm_before_stale, enabled, created_at_ms, last_run_ms, last_tick_ms, missed_runs, last_missed_ms, created_by";

impl Store {
    /// Every schedule, by id.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let sql = format!("SELECT {COLUMNS} FROM schedules ORDER BY id");
        on_pool!(self, p => sqlx::query_as::<_, Schedule>(&sql).fetch_all(p).await)
            .map_err(|e| Error::db("reading schedules", e))
    }

    /// One schedule.
    pub async fn schedule(&self, id: i64) -> Result<Schedule> {
        let sql = format!("SELECT {COLUMNS} FROM schedules WHERE id = $1");
        on_pool!(self, p => sqlx::query_as::<_, Schedule>(&sql).bind(id).fetch_optional(p).await)
            .map_err(|e| Error::db("reading a schedule", e))?
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "schedule {id} does not exist (see `cachedeck schedule list`)"
                ))
            })
    }

    /// Stores a new schedule and returns it.
    pub async fn add_schedule(&self, s: &ScheduleInput) -> Result<Schedule> {
        let sql = "INSERT INTO schedules (datasource_id, cron, tz, warm_before_stale, enabled, created_at_ms, created_by) \
                   VALUES ($1, $2, $3, $4, TRUE, $5, $6) RETURNING id";
        let id: i64 = on_pool!(self, p => sqlx::query_scalar::<_, i64>(sql)
            .bind(s.datasource_id).bind(&s.cron).bind(&s.tz).bind(s.warm_before_stale)
            .bind(now_ms()).bind(&s.created_by)
            .fetch_one(p).await)
        .map_err(|e| Error::db("adding a schedule", e))?;
        self.schedule(id).await
    }

    /// Deletes a schedule.
    pub async fn remove_schedule(&self, id: i64) -> Result<()> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id).execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| Error::db("removing a schedule", e))?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "schedule {id} does not exist (see `cachedeck schedule list`)"
            )));
        }
        Ok(())
    }

    /// Records that the scheduler evaluated schedule `id` through `tick_ms`
    /// (never moving backwards), and that it fired then when `fired`.
    pub async fn mark_schedule_tick(&self, id: i64, tick_ms: i64, fired: bool) -> Result<()> {
        let sql = "UPDATE schedules SET \
                   last_tick_ms = CASE WHEN last_tick_ms IS NULL OR last_tick_ms < $1 THEN $1 ELSE last_tick_ms END, \
                   last_run_ms = CASE WHEN $2 AND (last_run_ms IS NULL OR last_run_ms < $1) THEN $1 ELSE last_run_ms END \
                   WHERE id = $3";
        on_pool!(self, p => sqlx::query(sql)
            .bind(tick_ms).bind(fired).bind(id)
            .execute(p).await.map(|_| ()))
        .map_err(|e| Error::db("recording a schedule tick", e))
    }

    /// Adds `count` missed runs to schedule `id`, the latest at `last_ms`.
    pub async fn add_missed_runs(&self, id: i64, count: i64, last_ms: i64) -> Result<()> {
        let sql = "UPDATE schedules SET missed_runs = missed_runs + $1, \
                   last_missed_ms = CASE WHEN last_missed_ms IS NULL OR last_missed_ms < $2 THEN $2 ELSE last_missed_ms END \
                   WHERE id = $3";
        on_pool!(self, p => sqlx::query(sql)
            .bind(count).bind(last_ms).bind(id)
            .execute(p).await.map(|_| ()))
        .map_err(|e| Error::db("recording missed schedule runs", e))
    }
}
