//! Everything the backend has told the window, folded from [`Event`]s. The
//! drawing code only reads it.

use std::collections::{BTreeMap, HashMap};

use crate::backend::{
    ConnectionStatus, DatasourceDetails, Event, LinkState, ProfileInfo, TrendRange,
};
use crate::jobs::{JobSnapshot, JobState, RecentJob, WorkerInfo};
use crate::keys::DsId;
use crate::metrics::types::{DatasourceCacheMetrics, HealthReport, StatsReport};
use crate::store::Datasource;

/// History rows kept in the window.
const RECENT_KEPT: usize = 100;

/// The state of a query check in the Configure dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// Sent; waiting for the backend.
    Pending {
        /// The query checked.
        sql: String,
    },
    /// Usable; these are its columns.
    Valid {
        /// The query checked.
        sql: String,
        /// Its columns.
        columns: Vec<String>,
    },
    /// Not usable, and why.
    Invalid {
        /// The query checked.
        sql: String,
        /// One line.
        message: String,
    },
}

impl Validation {
    /// The query this result is about.
    pub fn sql(&self) -> &str {
        match self {
            Validation::Pending { sql }
            | Validation::Valid { sql, .. }
            | Validation::Invalid { sql, .. } => sql,
        }
    }
}

/// What the window knows.
#[derive(Debug, Default)]
pub struct Model {
    /// Profiles and the one in use.
    pub profiles: ProfileInfo,
    /// Redis and database connection states.
    pub connection: ConnectionStatus,
    /// When (local clock, ms) the connection state arrived: countdowns start there.
    pub connection_at_ms: i64,
    /// A preparation step under way (demo setup).
    pub setup: Option<String>,
    /// Redis TIME minus local time, so ages match the server's.
    pub server_offset_ms: i64,
    /// The registry by id.
    pub datasources: BTreeMap<DsId, Datasource>,
    /// The latest stats.
    pub stats: Option<StatsReport>,
    /// When (local clock, ms) the stats arrived: ages grow from there.
    pub stats_at_ms: i64,
    /// The latest health check.
    pub health: Option<HealthReport>,
    /// Caches found in Redis whose datasource was not registered when the
    /// backend last looked (see [`Model::unregistered`]).
    pub discovered: Vec<crate::metrics::discover::Discovered>,
    /// Jobs that have not ended, by id (any instance's).
    pub jobs: BTreeMap<String, JobSnapshot>,
    /// Ended jobs, newest first.
    pub recent: Vec<RecentJob>,
    /// The workers (agents) alive at the last refresh, which run queued jobs.
    pub workers: Vec<WorkerInfo>,
    /// The Details view's data.
    pub details: Option<DatasourceDetails>,
    /// The details asked for and not yet answered.
    pub details_pending: Option<(DsId, TrendRange)>,
    /// Query checks of the Configure dialog, by datasource.
    pub validations: HashMap<DsId, Validation>,
    /// A datasource saved since the dialog asked (closes the dialog).
    pub saved: Option<DsId>,
    /// An invalidation finished for this datasource (reload its details).
    pub invalidated: Option<DsId>,
    /// The backend stopped on its own, and why: nothing runs until Restart.
    pub stopped: Option<String>,
}

impl Model {
    /// Found caches still not registered (one registered since the last
    /// discover is left out at once).
    pub fn unregistered(&self) -> impl Iterator<Item = &crate::metrics::discover::Discovered> {
        self.discovered
            .iter()
            .filter(|d| !self.datasources.contains_key(&d.datasource_id))
    }

    /// Folds one event in. Notices and errors are not model state: the
    /// caller turns them into notifications.
    pub fn apply(&mut self, event: Event, now_ms: i64) {
        match event {
            Event::Profiles(p) => self.profiles = p,
            Event::Connection(c) => {
                if !c.redis.is_up() && self.connection.redis.is_up() {
                    // Live job data is unknown while Redis is away.
                    self.jobs.clear();
                }
                self.connection = c;
                self.connection_at_ms = now_ms;
            }
            Event::Setup(s) => self.setup = s,
            Event::ServerClock { offset_ms } => self.server_offset_ms = offset_ms,
            Event::Datasources(list) => {
                self.datasources = list.into_iter().map(|d| (d.id, d)).collect()
            }
            Event::Stats(report) => {
                self.stats = Some(report);
                self.stats_at_ms = now_ms;
            }
            Event::Health(h) => self.health = Some(h),
            Event::Discovered(list) => self.discovered = list,
            Event::Jobs(status) => {
                let mut next = BTreeMap::new();
                for job in status.active_jobs {
                    let keep_ours = self.jobs.get(&job.job_id).is_some_and(|ours| {
                        ours.state.is_final()
                            || (ours.state == job.state && ours.rows_processed > job.rows_processed)
                    });
                    match self.jobs.remove(&job.job_id) {
                        Some(ours) if keep_ours => next.insert(ours.job_id.clone(), ours),
                        _ => next.insert(job.job_id.clone(), job),
                    };
                }
                self.jobs = next;
                self.recent = status.recent_jobs;
                self.workers = status.workers;
            }
            Event::JobProgress(slot) => {
                if let Some(snap) = slot.take() {
                    self.apply(Event::Job(snap), now_ms);
                }
            }
            Event::Latest(slot) => {
                if let Some(snapshot) = slot.take() {
                    self.apply(snapshot, now_ms);
                }
            }
            Event::Job(snap) => {
                if snap.state.is_final() {
                    self.jobs.remove(&snap.job_id);
                    self.recent.retain(|r| r.job_id != snap.job_id);
                    self.recent.insert(0, recent_of(&snap));
                    self.recent.truncate(RECENT_KEPT);
                } else {
                    self.jobs.insert(snap.job_id.clone(), *snap);
                }
            }
            Event::Details(d) => {
                if self.details_pending == Some((d.ds, d.range)) {
                    self.details_pending = None;
                }
                self.details = Some(*d);
            }
            Event::Invalidated { ds, .. } => self.invalidated = Some(ds),
            Event::DatasourceSaved(d) => {
                self.saved = Some(d.id);
                self.datasources.insert(d.id, d);
            }
            Event::SqlValidated { ds, sql, result } => {
                let v = match result {
                    Ok(columns) => Validation::Valid { sql, columns },
                    Err(message) => Validation::Invalid { sql, message },
                };
                self.validations.insert(ds, v);
            }
            Event::BackendStopped(why) => self.stopped = Some(why),
            Event::BackendRestarted => self.stopped = None,
            // Notifications, and answers the tools and admin views fold in.
            Event::Notice(_) | Event::Error(_) | Event::Tools(_) | Event::Admin(_) => {}
        }
    }

    /// The server's "now" by the local clock `now_ms`.
    pub fn server_now(&self, now_ms: i64) -> i64 {
        now_ms + self.server_offset_ms
    }

    /// The metrics of one datasource.
    pub fn metrics(&self, ds: DsId) -> Option<&DatasourceCacheMetrics> {
        self.stats
            .as_ref()?
            .datasources
            .iter()
            .find(|m| m.datasource_id == ds)
    }

    /// Minutes since `ds` was warmed, now: the server's age plus the time
    /// since the stats arrived.
    pub fn age_minutes(&self, m: &DatasourceCacheMetrics, now_ms: i64) -> Option<f64> {
        let since = (now_ms - self.stats_at_ms).max(0) as f64 / 60_000.0;
        m.age_minutes.map(|a| a + since)
    }

    /// The job working on `ds` now (running, paused, swapping or queued), if any.
    pub fn job_for(&self, ds: DsId) -> Option<&JobSnapshot> {
        let mut best: Option<&JobSnapshot> = None;
        for j in self
            .jobs
            .values()
            .filter(|j| j.datasource_id == ds && !j.state.is_final())
        {
            // A running job says more than a queued one.
            if best.is_none_or(|b| b.state == JobState::Queued && j.state != JobState::Queued) {
                best = Some(j);
            }
        }
        best
    }

    /// Jobs that have started and not ended, oldest first.
    pub fn running_jobs(&self) -> Vec<&JobSnapshot> {
        let mut v: Vec<&JobSnapshot> = self
            .jobs
            .values()
            .filter(|j| {
                matches!(
                    j.state,
                    JobState::Running | JobState::Paused | JobState::Swapping
                ) || (j.state == JobState::Stale && j.started_at.is_some())
            })
            .collect();
        v.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
        v
    }

    /// Jobs waiting for a slot, oldest first.
    pub fn queued_jobs(&self) -> Vec<&JobSnapshot> {
        let mut v: Vec<&JobSnapshot> = self
            .jobs
            .values()
            .filter(|j| {
                j.state == JobState::Queued
                    || (j.state == JobState::Stale && j.started_at.is_none())
            })
            .collect();
        v.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
        v
    }

    /// True when both connections are up.
    pub fn connected(&self) -> bool {
        self.connection.redis.is_up() && self.connection.database.is_up()
    }

    /// The one-line reason nothing can be shown, when neither side is up.
    pub fn blocking_problem(&self) -> Option<String> {
        for link in [&self.connection.redis, &self.connection.database] {
            match link {
                LinkState::Failed(reason) => return Some(reason.clone()),
                LinkState::Reconnecting { reason, .. } if self.stats.is_none() => {
                    return Some(reason.clone());
                }
                _ => {}
            }
        }
        None
    }
}

/// The history row of an ended snapshot (until the next refresh brings the
/// store's).
fn recent_of(s: &JobSnapshot) -> RecentJob {
    RecentJob {
        job_id: s.job_id.clone(),
        datasource_id: s.datasource_id,
        datasource_name: s.datasource_name.clone(),
        state: s.state.as_str().to_string(),
        started_at: s.started_at.clone(),
        completed_at: s.completed_at.clone(),
        duration_ms: s.duration_ms.map(|d| d as i64),
        rows_processed: s.rows_processed as i64,
        entries_cached: s.entries_cached as i64,
        indexes_cached: s.indexes_cached as i64,
        success: matches!(s.state, JobState::Succeeded | JobState::Skipped),
        error: s.error.clone(),
        owner: s.owner.clone(),
        attempts: s.attempts.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Emitter;
    use crate::jobs::{JobSnapshot, JobState};

    #[test]
    fn a_window_that_reads_late_gets_each_jobs_latest_progress_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let emit = Emitter::new(tx, std::sync::Arc::new(|| {}))
            .with_progress_interval(std::time::Duration::ZERO);
        let mut snap = JobSnapshot {
            job_id: "j".into(),
            state: JobState::Running,
            ..Default::default()
        };
        for i in 0..1000 {
            snap.rows_processed = i;
            emit.job(&snap);
        }
        assert_eq!(rx.len(), 2, "the first snapshot and one progress slot");
        let mut model = Model::default();
        while let Ok(ev) = rx.try_recv() {
            model.apply(ev, 0);
        }
        assert_eq!(model.jobs["j"].rows_processed, 999);
    }
}
