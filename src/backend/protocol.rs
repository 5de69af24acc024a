//! What the window and the backend say to each other: [`Command`] in,
//! [`Event`] out. Plain data, no egui, so the UI can be driven in tests by
//! feeding events and reading commands.

use std::time::Duration;

use super::admin::{AdminCommand, AdminEvent};
use super::tools::{ToolsCommand, ToolsEvent};
use crate::cache::invalidate::InvalidateResult;
use crate::jobs::{JobSnapshot, RecentJob, WarmingStatus};
use crate::keys::DsId;
use crate::metrics::Trends;
use crate::metrics::discover::Discovered;
use crate::metrics::types::{HealthReport, StatsReport};
use crate::store::{Datasource, DatasourceInput};

/// A request from the window. Every command is answered by events (or by
/// nothing visible when it needs no answer); none of them blocks the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Re-read stats, health, jobs and datasources now (F5).
    Refresh,
    /// Shadow-warm these datasources (one job each, run by this backend).
    Warm {
        /// Datasources to warm.
        ids: Vec<DsId>,
        /// Warm even when warmed within the profile's skip window.
        force: bool,
    },
    /// Warm every enabled datasource.
    WarmAll {
        /// Warm even when warmed within the profile's skip window.
        force: bool,
    },
    /// Pause a running job (any instance's): it keeps its lock and stops reading.
    Pause {
        /// The job to pause.
        job_id: String,
    },
    /// Resume a paused job (any instance's).
    Resume {
        /// The job to resume.
        job_id: String,
    },
    /// Cancel a queued or running job (any instance's); the live cache stays.
    Cancel {
        /// The job to cancel.
        job_id: String,
    },
    /// Delete a datasource's whole cache.
    Invalidate {
        /// The datasource to invalidate.
        ds: DsId,
    },
    /// Load the Details view of one datasource.
    LoadDetails {
        /// The datasource shown.
        ds: DsId,
        /// How far back the trend plots reach.
        range: TrendRange,
    },
    /// Add or change a datasource (the Configure dialog).
    SaveDatasource(DatasourceInput),
    /// Check a source query without running it: does it parse, does it
    /// return the required columns.
    ValidateSql {
        /// The datasource being edited (named in error messages).
        ds: DsId,
        /// The query to check.
        sql: String,
        /// Where it would run; `None` means the profile's database.
        source_url: Option<String>,
        /// The source's password reference (`keyring:NAME`, `env:VAR`,
        /// `profile`), read only to open the source.
        source_password: Option<String>,
    },
    /// Connect to another profile of the profile file.
    SwitchProfile(String),
    /// Drop the connections and connect again now (skipping any backoff wait).
    Reconnect,
    /// A Redis tools request (Keys and Redis tabs).
    Tools(ToolsCommand),
    /// An administration request (Settings, Audit, report export).
    Admin(AdminCommand),
    /// Start the backend again after it stopped ([`Event::BackendStopped`]);
    /// ignored while it runs.
    Restart,
    /// Stop: cancel this backend's jobs (cleaning their shadow keys), close
    /// connections, stop a demo redis-server.
    Shutdown,
}

/// The time window of the Details trend plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TrendRange {
    /// The last hour, per minute.
    Hour,
    /// The last 24 hours, per minute.
    #[default]
    Day,
    /// The last 7 days, per hour.
    Week,
    /// The last 30 days, per hour.
    Month,
}

impl TrendRange {
    /// Every range, in the order the selector shows them.
    pub const ALL: [TrendRange; 4] = [
        TrendRange::Hour,
        TrendRange::Day,
        TrendRange::Week,
        TrendRange::Month,
    ];

    /// Length of the window.
    pub fn span(self) -> Duration {
        match self {
            TrendRange::Hour => Duration::from_secs(3600),
            TrendRange::Day => Duration::from_secs(24 * 3600),
            TrendRange::Week => Duration::from_secs(7 * 24 * 3600),
            TrendRange::Month => Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Whether the window is read from hour buckets (else minute buckets).
    pub fn hourly(self) -> bool {
        matches!(self, TrendRange::Week | TrendRange::Month)
    }

    /// Short label for the selector.
    pub fn label(self) -> &'static str {
        match self {
            TrendRange::Hour => "1 h",
            TrendRange::Day => "24 h",
            TrendRange::Week => "7 d",
            TrendRange::Month => "30 d",
        }
    }
}

/// The state of one connection (Redis or the app database).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LinkState {
    /// Not tried yet, or a first attempt is under way.
    #[default]
    Connecting,
    /// Up; the label names where (URL without password).
    Connected {
        /// Where it is connected to, safe to show.
        label: String,
    },
    /// Down; the next attempt comes after the backoff wait.
    Reconnecting {
        /// Time until the next attempt, counted from when the event was sent.
        next_retry_in: Duration,
        /// Why the last attempt or command failed.
        reason: String,
    },
    /// Cannot work until the profile is fixed (no retry until Reconnect or a
    /// profile switch).
    Failed(String),
}

impl LinkState {
    /// True when connected.
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Connected { .. })
    }
}

/// Both connections at once, so the status bar always shows a consistent pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectionStatus {
    /// The Redis cache.
    pub redis: LinkState,
    /// The app database (store): datasources, history.
    pub database: LinkState,
}

/// Which profiles exist and which one is in use.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileInfo {
    /// Profile names of the profile file (the switcher's entries).
    pub names: Vec<String>,
    /// The profile in use.
    pub current: String,
    /// Destructive actions need typed confirmation in a production profile.
    pub production: bool,
    /// Seconds between automatic refreshes (the window shows it).
    pub refresh_interval_secs: u64,
    /// Security warnings about the profile, shown in the top bar (e.g. a
    /// Redis URL that turns TLS certificate checks off).
    pub warnings: Vec<String>,
}

/// How many live entries one measure or one frequency holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Breakdown {
    /// Entries per measure, largest first.
    pub per_measure: Vec<(String, u64)>,
    /// Entries per frequency, largest first.
    pub per_frequency: Vec<(String, u64)>,
    /// Entry keys looked at.
    pub scanned: u64,
    /// True when the scan stopped at its bound before the end of the set, so
    /// the counts are a sample.
    pub truncated: bool,
}

/// Everything the Details view shows for one datasource.
#[derive(Debug, Clone)]
pub struct DatasourceDetails {
    /// The datasource.
    pub ds: DsId,
    /// The window the trends cover.
    pub range: TrendRange,
    /// Hit rate and query time per bucket, memory/entry samples and the warms.
    pub trends: Trends,
    /// Live entries per measure and per frequency.
    pub breakdown: Breakdown,
    /// This datasource's latest jobs, newest first.
    pub recent_jobs: Vec<RecentJob>,
}

/// Something the backend tells the window.
#[derive(Debug, Clone)]
pub enum Event {
    /// The profiles and the one in use (at start and after a switch).
    Profiles(ProfileInfo),
    /// Redis and database connection states changed.
    Connection(ConnectionStatus),
    /// A preparation step is under way (demo setup), or `None` when done.
    Setup(Option<String>),
    /// Redis server time minus this machine's time, so ages shown agree with
    /// what the server computed.
    ServerClock {
        /// Milliseconds to add to the local clock to get Redis TIME.
        offset_ms: i64,
    },
    /// The datasource registry.
    Datasources(Vec<Datasource>),
    /// Per-datasource cache metrics and the summary.
    Stats(StatsReport),
    /// Caches found in Redis whose datasource is not registered (discover,
    /// run in the background at most once a minute).
    Discovered(Vec<Discovered>),
    /// The health check's verdict.
    Health(HealthReport),
    /// Every live job (by any instance) and the recent history.
    Jobs(WarmingStatus),
    /// One job changed (progress of a job this backend runs, or a control
    /// answer). Progress is throttled to a few per second per job.
    Job(Box<JobSnapshot>),
    /// A running job's latest progress, waiting in its slot (take it: a
    /// slot already taken is empty). At most one per job is queued.
    JobProgress(super::emit::JobSlot),
    /// The newest periodic snapshot of one kind (stats, health, the jobs
    /// list…), waiting in its slot (take it: a slot already taken is
    /// empty). At most one per kind is queued.
    Latest(super::emit::LatestSlot),
    /// The Details view's data.
    Details(Box<DatasourceDetails>),
    /// A datasource's cache was invalidated.
    Invalidated {
        /// The datasource.
        ds: DsId,
        /// What was deleted.
        result: InvalidateResult,
    },
    /// A datasource was added or changed.
    DatasourceSaved(Datasource),
    /// The answer to [`Command::ValidateSql`].
    SqlValidated {
        /// The datasource being edited.
        ds: DsId,
        /// The query that was checked (the dialog may have moved on).
        sql: String,
        /// The columns, or why the query is not usable.
        result: Result<Vec<String>, String>,
    },
    /// A Redis tools answer (Keys and Redis tabs).
    Tools(ToolsEvent),
    /// An administration answer (Settings, Audit, report export).
    Admin(AdminEvent),
    /// Something worth a short notification.
    Notice(String),
    /// Something failed: one line, shown once.
    Error(String),
    /// The backend stopped on its own (a crash): why, in one line. Nothing
    /// works until [`Command::Restart`]; the window says so at once.
    BackendStopped(String),
    /// The backend was started again after [`Event::BackendStopped`].
    BackendRestarted,
}

impl Event {
    /// The event itself, or for [`Event::Latest`] the snapshot waiting in
    /// its slot (`None` when it was already taken).
    pub fn resolved(self) -> Option<Event> {
        match self {
            Event::Latest(slot) => slot.take(),
            other => Some(other),
        }
    }
}
