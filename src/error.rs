//! Typed errors of the core. Each variant says what failed and what to check, in
//! one line, so the GUI, the CLI and the agent can show it as it is.

use crate::keys::DsId;

/// Result alias for the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),

    /// No usable OS keyring (no Secret Service, locked, hung): the message
    /// says how to use an environment variable instead.
    #[error("{0}")]
    KeyringUnavailable(String),

    #[error(
        "cannot reach Redis at {url}: {reason} (check that redis-server runs there and the URL, password and TLS settings)"
    )]
    RedisConnect { url: String, reason: String },

    #[error("Redis refused {what}: {reason} (check the ACL of the profile's Redis user)")]
    RedisPermission { what: String, reason: String },

    #[error("Redis: {context}: {source}")]
    Redis {
        context: String,
        #[source]
        source: redis::RedisError,
    },

    #[error(
        "cannot open the database {url}: {reason} (check that the server runs, and the URL and password)"
    )]
    DbConnect { url: String, reason: String },

    #[error("database: {context}: {source}")]
    Db {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error(
        "the store schema is missing or out of date and this user may not create it: {0} (ask an admin to run `cachedeck migrate`)"
    )]
    MigrationsNeeded(String),

    #[error(
        "the source query of datasource {ds} is missing the column `{column}` (it must return measure, practice_uid, provider_uid, frequency)"
    )]
    MissingColumn { ds: DsId, column: String },

    #[error("the source query of datasource {ds} failed: {reason}")]
    SourceQuery { ds: DsId, reason: String },

    #[error("datasource {0} does not exist (see `cachedeck datasource list`)")]
    NoSuchDatasource(DsId),

    /// The warm lock is held: by a warm, or by an invalidation (which takes
    /// the same lock so the two never overlap).
    #[error("datasource {ds} is busy: {} holds it", lock_holder_text(.holder))]
    AlreadyWarming { ds: DsId, holder: String },

    /// The seed application's own warm lock (`lock:shadow:warm:<id>`) is
    /// held: its warmer is running, so cachedeck neither starts nor swaps.
    #[error(
        "datasource {ds} is busy: the application's warmer holds {key} ({}); wait for it or stop the application's warmer",
        expiry_text(*.ttl_ms)
    )]
    AppWarming {
        /// The datasource.
        ds: DsId,
        /// The lock's key name, as the message names it.
        key: String,
        /// Its PTTL when read (-1: no expiry).
        ttl_ms: i64,
    },

    #[error("the invalidation of datasource {ds} stopped: {reason}; invalidate again")]
    InvalidationStopped { ds: DsId, reason: String },

    #[error("job {0} does not exist or has ended")]
    NoSuchJob(String),

    /// A job stopped by its own runner for a reason other than a request
    /// (it lost its run slot mid-swap, or was given up as dead).
    #[error("{0}")]
    JobStopped(String),

    #[error("the swap of datasource {ds} was aborted: {reason}; the live cache is unchanged")]
    SwapAborted { ds: DsId, reason: String },

    #[error("lost the warm lock of datasource {ds} to {holder}; nothing of this warm was applied")]
    LostLock { ds: DsId, holder: String },

    /// A warm's writer found its lease may have ended (turned into
    /// `LostLock` or `SwapAborted` before it reaches anyone).
    #[error("the warm lock's lease may have ended; nothing more was written")]
    LeaseLapsed,

    #[error(
        "not enough Redis memory to warm datasource {ds}: the shadow copy needs about {needed_mb:.1} MB but {node} has {free_mb:.1} MB left below {percent}% of maxmemory ({max_mb:.1} MB); free memory, raise maxmemory or lower the datasource's size"
    )]
    NotEnoughMemory {
        ds: DsId,
        needed_mb: f64,
        free_mb: f64,
        max_mb: f64,
        percent: u32,
        node: String,
    },

    #[error("cancelled")]
    Cancelled,

    #[error(
        "refused to {what}: its audit row cannot be written ({reason}); nothing was changed (check the store and that its database user may INSERT into cachedeck.audit_log)"
    )]
    AuditUnavailable { what: String, reason: String },

    #[error("permission denied: {0}")]
    PermissionDenied(String),

    #[error("rate limited: {what}; allowed again in {retry_after_secs} s")]
    RateLimited { what: String, retry_after_secs: u64 },

    #[error("{0}")]
    Invalid(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// Holder id prefix of an invalidation holding the warm lock.
pub const INVALIDATION_HOLDER_PREFIX: &str = "invalidate:";

/// Who holds the warm lock, for people: a warm job, or an invalidation.
/// When a lock with this PTTL frees itself, for a person.
fn expiry_text(ttl_ms: i64) -> String {
    if ttl_ms < 0 {
        return "it has no expiry".into();
    }
    let s = (ttl_ms + 999) / 1000;
    if s >= 60 {
        format!("expires in {} min {} s", s / 60, s % 60)
    } else {
        format!("expires in {s} s")
    }
}

fn lock_holder_text(holder: &str) -> String {
    if holder.starts_with(INVALIDATION_HOLDER_PREFIX) {
        format!("an invalidation ({holder})")
    } else if holder.starts_with("cleanup-") {
        format!("the clean-up of a dead warm ({holder})")
    } else {
        format!("warm job {holder}")
    }
}

/// Whether a recorded error text says the datasource was busy (a refused
/// attempt, not a failed warm); also recognises the wording of earlier
/// versions kept in the history.
pub fn is_busy_text(text: &str) -> bool {
    text.contains(" is busy: ") || text.contains("is already being warmed")
}

impl Error {
    /// Wraps a Redis error with what we were doing, turning NOPERM and
    /// connection failures into their own variants.
    pub fn redis(context: impl Into<String>, source: redis::RedisError) -> Self {
        let context = context.into();
        // A write refused inside a script comes back as ERR with this text.
        let script_refusal = source
            .to_string()
            .contains("user executing the script can't run this command");
        if source.code() == Some("NOPERM") || script_refusal {
            return Error::RedisPermission {
                what: context,
                reason: source.to_string(),
            };
        }
        Error::Redis { context, source }
    }

    /// Wraps a database error with what we were doing.
    pub fn db(context: impl Into<String>, source: sqlx::Error) -> Self {
        Error::Db {
            context: context.into(),
            source,
        }
    }

    /// Wraps an IO error with what we were doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code of DESIGN.md's CLI contract.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::AlreadyWarming { .. } | Error::AppWarming { .. } => 3,
            Error::PermissionDenied(_) | Error::RedisPermission { .. } => 4,
            Error::RateLimited { .. } => 5,
            Error::Invalid(_) | Error::Config(_) => 2,
            _ => 1,
        }
    }
}
