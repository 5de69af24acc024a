//! What the Settings and Audit tabs and the Export dialog ask of the backend
//! and what it answers.

use std::path::PathBuf;

use crate::config::secrets::KeyringState;
use crate::config::{ConfigFile, Profile};
use crate::governance::audit::{AuditFilter, AuditRow};
use crate::report::{ReportFormat, ReportRequest};

/// A password typed in the window on its way to the OS keyring (or to a
/// connection test). It is never written to the profile file, and `Debug`
/// never shows it, so a logged command cannot leak it.
pub use crate::config::secrets::Secret;

/// What to do with one password of a profile being saved or tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    /// Keep the reference the profile carries (`Profile::…password`).
    Keep,
    /// No password.
    Clear,
    /// Read it from this environment variable (the file stores the name only).
    Env(String),
    /// Store this password in the OS keyring (the file stores the entry name).
    Keyring(Secret),
}

/// A profile as the Settings editor asks to save or test it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileEdit {
    /// The name it had in the file when the edit began (`None`: a new
    /// profile); differs from `name` for a rename.
    pub original: Option<String>,
    /// The profile's name.
    pub name: String,
    /// Everything but new passwords; the password fields hold the
    /// references the file had (used by [`SecretInput::Keep`]).
    pub profile: Profile,
    /// The Redis password.
    pub redis_password: SecretInput,
    /// The database password.
    pub database_password: SecretInput,
    /// Make it the file's default profile.
    pub make_default: bool,
}

/// Audit rows the Audit tab asks for: one bounded page, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditQuery {
    /// Answers carry it, so a late answer to an older query is dropped.
    pub seq: u64,
    /// Time, action, user and datasource filters; `limit` is the page size.
    pub filter: AuditFilter,
    /// Case-insensitive text every row shown contains somewhere (action,
    /// users, parameters, result or detail); empty for any.
    pub text: String,
    /// Continue below the rows already shown ("Load more"); `None` for the
    /// first page.
    pub after: Option<AuditCursor>,
}

/// Where the next page starts: below the oldest row shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditCursor {
    /// Time of the oldest row shown (ms since the epoch).
    pub at_ms: i64,
    /// Ids of the rows shown with exactly that time (rows of the same
    /// millisecond are told apart by id).
    pub seen_ids: Vec<i64>,
}

/// The file formats the audit export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum AuditFormat {
    /// CSV with a header line (parameters as JSON text).
    #[default]
    Csv,
    /// A pretty JSON array, the shape of `cachedeck audit --json`.
    Json,
}

impl AuditFormat {
    /// The file extension (also the selector text).
    pub fn extension(self) -> &'static str {
        match self {
            AuditFormat::Csv => "csv",
            AuditFormat::Json => "json",
        }
    }
}

/// An administration request from the window.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminCommand {
    /// Read the profile file and probe the OS keyring (answered by
    /// [`AdminEvent::ProfileFile`]).
    LoadProfiles,
    /// Add or change a profile: passwords go to the keyring or become
    /// environment-variable references, then the file is written; the
    /// profile in use reconnects when it was the one edited.
    SaveProfile(Box<ProfileEdit>),
    /// Remove a profile (and its keyring entries).
    RemoveProfile(String),
    /// Try to connect with the edited values without saving them.
    TestProfile(Box<ProfileEdit>),
    /// Read one page of the audit log.
    QueryAudit(AuditQuery),
    /// Write every row matching the query's filters (not only the page
    /// shown) to a file.
    ExportAudit {
        /// The filters (`after` and `limit` are ignored).
        query: AuditQuery,
        /// CSV or JSON.
        format: AuditFormat,
        /// Where to write.
        path: PathBuf,
    },
    /// Build a cache-efficiency report and write it, with progress.
    ExportReport {
        /// Chosen by the window; progress and the result carry it.
        id: u64,
        /// Range and datasources.
        request: ReportRequest,
        /// HTML, CSV (zip or folder) or JSON.
        format: ReportFormat,
        /// Where to write.
        path: PathBuf,
    },
    /// Stop a report export under way (nothing is written).
    CancelReport(u64),
    /// Show this file's folder (or this folder) in the desktop's file
    /// manager.
    OpenFolder(PathBuf),
    /// Use this profile file instead of the one in the OS config dir (tests
    /// and embedding; the window never sends it).
    UseProfileFile(PathBuf),
}

/// The profile file as read by the backend.
#[derive(Debug, Clone)]
pub struct ProfileFileView {
    /// Where it is (shown in Settings).
    pub path: String,
    /// Its contents (password fields are references, never secrets), or
    /// why it cannot be read (malformed: it is not overwritten).
    pub file: Result<ConfigFile, String>,
    /// Whether passwords can go to the OS keyring on this machine.
    pub keyring: KeyringState,
}

/// The answer to [`AdminCommand::TestProfile`]: one line per server.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileTest {
    /// The profile tested.
    pub name: String,
    /// What Redis said (version, standalone or cluster), or why it failed.
    pub redis: Result<String, String>,
    /// What the database said, or why it failed.
    pub database: Result<String, String>,
}

/// Whether this window runs the schedules, and what runs next.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchedulerStatus {
    /// Running, and whether it leads; or why not.
    pub state: SchedulerState,
    /// The schedules with their next run, soonest first.
    pub next_runs: Vec<NextRun>,
}

/// The window's scheduler.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SchedulerState {
    /// Not running; why (links down, read-only admin, …).
    Stopped(String),
    /// Starting (checking permissions).
    #[default]
    Starting,
    /// Evaluating schedules every few seconds.
    Running {
        /// This window's name in the leader lease.
        instance_id: String,
        /// Holds the leader lease: this window fires the schedules.
        leader: bool,
    },
}

/// One schedule and its next run.
#[derive(Debug, Clone, PartialEq)]
pub struct NextRun {
    /// The schedule's id.
    pub schedule_id: i64,
    /// What it warms, for people.
    pub target: String,
    /// Its cron expression.
    pub cron: String,
    /// Its time zone.
    pub tz: String,
    /// Disabled schedules never fire.
    pub enabled: bool,
    /// The next run (ms since the epoch), if it has one.
    pub next_ms: Option<i64>,
    /// The same run in the schedule's zone (ISO-8601).
    pub next_local: Option<String>,
    /// Why it cannot run, if so.
    pub problem: Option<String>,
}

/// An administration answer to the window.
#[derive(Debug, Clone)]
pub enum AdminEvent {
    /// The profile file and the keyring state.
    ProfileFile(Box<ProfileFileView>),
    /// A profile save ended.
    ProfileSaved {
        /// The profile.
        name: String,
        /// Done, or the one-line reason (the file is unchanged then).
        result: Result<(), String>,
    },
    /// A profile removal ended.
    ProfileRemoved {
        /// The profile.
        name: String,
        /// Done, or the one-line reason.
        result: Result<(), String>,
    },
    /// A connection test ended.
    ProfileTested(ProfileTest),
    /// A page of audit rows.
    AuditRows {
        /// The query answered.
        seq: u64,
        /// Newest first.
        rows: Vec<AuditRow>,
        /// True for a "Load more" page (added below the rows shown).
        append: bool,
        /// More rows match below these.
        more: bool,
    },
    /// An audit query failed.
    AuditFailed {
        /// The query.
        seq: u64,
        /// One line.
        message: String,
    },
    /// An audit export ended.
    AuditExported {
        /// The file.
        path: PathBuf,
        /// Rows written, or why nothing was.
        result: Result<usize, String>,
    },
    /// A report export moved on a step.
    ReportProgress {
        /// The export.
        id: u64,
        /// What it does now, e.g. "Reading cache statistics…".
        step: String,
    },
    /// A report export ended.
    ReportDone {
        /// The export.
        id: u64,
        /// The path written, or why not.
        result: Result<PathBuf, String>,
    },
    /// The window's scheduler changed (started, stopped, lead, next runs).
    Scheduler(SchedulerStatus),
}
