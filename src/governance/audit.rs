//! The audit log: every write action and every refused attempt, with who
//! (OS user, database/admin identity, Redis user), from where (profile,
//! origin), what (action, datasource, parameters) and how it ended. Rows are
//! appended to the store and kept for a configurable period
//! (`defaults.audit_retention`, one year by default, at least
//! [`MIN_RETENTION`]); [`prune`] drops older ones when the agent or the
//! window starts, and is itself audited (`audit_pruned`).
//!
//! **Fail closed.** A write action first writes its row with result
//! `started` ([`begin`]); when that row cannot be written the action is
//! refused ([`Error::AuditUnavailable`]) before it changes anything. The
//! row gets its outcome when the action ends ([`Intent::finish`]).
//!
//! [`record`] is the one way in for code that holds a store; [`record_via`]
//! uses the store an actor carries (its [`AuditSink`]), so paths that only
//! have an actor (invalidation, the Redis tools) are audited too.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::keys::DsId;
use crate::store::{self, AuditInsert, Store};

pub use crate::store::{AuditFilter, AuditRow};

/// The action names written to the log (the GUI's filter offers these).
pub mod actions {
    /// A warm job was queued.
    pub const CACHE_WARM_INITIATED: &str = "cache_warm_initiated";
    /// A warm job swapped its generation in (or was skipped as recent).
    pub const CACHE_WARM_COMPLETED: &str = "cache_warm_completed";
    /// A warm job failed.
    pub const CACHE_WARM_FAILED: &str = "cache_warm_failed";
    /// A warm job was cancelled.
    pub const CACHE_WARM_CANCELLED: &str = "cache_warm_cancelled";
    /// Pause, resume or cancel was asked of a job.
    pub const JOB_CONTROLLED: &str = "job_controlled";
    /// A job whose process stopped was found and cleaned up by the leader.
    pub const JOB_ABANDONED: &str = "job_abandoned";
    /// A datasource's cache (or part of it) was invalidated.
    pub const CACHE_INVALIDATED: &str = "cache_invalidated";
    /// Keys were purged with the Redis tools.
    pub const KEYS_PURGED: &str = "keys_purged";
    /// Key expiries were changed with the Redis tools.
    pub const TTL_CHANGED: &str = "ttl_changed";
    /// A schedule was added or removed.
    pub const SCHEDULE_CHANGED: &str = "schedule_changed";
    /// A schedule fired and queued its warms.
    pub const SCHEDULE_FIRED: &str = "schedule_fired";
    /// Runs of a schedule were missed because no scheduler was up.
    pub const SCHEDULE_MISSED: &str = "schedule_missed";
    /// A datasource was added, edited or removed.
    pub const DATASOURCE_CHANGED: &str = "datasource_changed";
    /// A permission grant was added or removed.
    pub const GRANT_CHANGED: &str = "grant_changed";
    /// A write was refused for lack of permission (grant or Redis ACL).
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// A write was refused by a rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Audit rows older than the retention were deleted.
    pub const AUDIT_PRUNED: &str = "audit_pruned";
    /// A node's slow log was cleared (`SLOWLOG RESET`).
    pub const SLOWLOG_RESET: &str = "slowlog_reset";

    /// Every action above, for filters and validation.
    pub const ALL: [&str; 18] = [
        CACHE_WARM_INITIATED,
        CACHE_WARM_COMPLETED,
        CACHE_WARM_FAILED,
        CACHE_WARM_CANCELLED,
        JOB_CONTROLLED,
        JOB_ABANDONED,
        CACHE_INVALIDATED,
        KEYS_PURGED,
        TTL_CHANGED,
        SCHEDULE_CHANGED,
        SCHEDULE_FIRED,
        SCHEDULE_MISSED,
        DATASOURCE_CHANGED,
        GRANT_CHANGED,
        PERMISSION_DENIED,
        RATE_LIMITED,
        AUDIT_PRUNED,
        SLOWLOG_RESET,
    ];
}

/// The result words written to the log.
pub mod results {
    /// The action was done.
    pub const OK: &str = "ok";
    /// Refused for lack of permission.
    pub const DENIED: &str = "denied";
    /// Refused by a rate limit.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Tried and failed.
    pub const FAILED: &str = "failed";
    /// Cancelled by an admin or a shutdown.
    pub const CANCELLED: &str = "cancelled";
    /// Not done because it was not needed (a recent warm).
    pub const SKIPPED: &str = "skipped";
    /// Should have happened while nobody was up.
    pub const MISSED: &str = "missed";
    /// Written before a write action runs; replaced by its outcome. A row
    /// left `started` is an action whose process stopped before it ended.
    pub const STARTED: &str = "started";
}

/// Default retention of audit rows.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The shortest retention accepted: a month of history always stays.
pub const MIN_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Reads `defaults.audit_retention`; a period shorter than
/// [`MIN_RETENTION`] is refused.
pub fn retention(text: &str) -> Result<Duration> {
    let keep = crate::config::parse_duration(text)?;
    check_retention(keep)?;
    Ok(keep)
}

fn check_retention(keep: Duration) -> Result<()> {
    if keep < MIN_RETENTION {
        return Err(Error::Config(format!(
            "defaults.audit_retention is {}, shorter than the minimum of 30 days: audit rows are kept at least 30 days (set 30d or more)",
            humantime::format_duration(keep)
        )));
    }
    Ok(())
}

fn row(
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: &serde_json::Value,
    result: &str,
    detail: Option<&str>,
) -> AuditInsert {
    AuditInsert {
        at_ms: store::now_ms(),
        action: action.to_string(),
        datasource_id: ds,
        os_user: actor.os_user.clone(),
        db_user: actor.identity.clone(),
        redis_user: actor.redis_user.clone(),
        profile: actor.profile.clone(),
        origin: actor.origin.as_str().to_string(),
        params: params.to_string(),
        result: result.to_string(),
        detail: detail.map(str::to_string),
    }
}

/// Appends one audit row: `action` by `actor` on datasource `ds` with
/// `params`, ending in `result` (see [`results`]).
pub async fn record(
    store: &Store,
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
    result: &str,
) -> Result<()> {
    record_detail(store, actor, action, ds, params, result, None).await
}

/// [`record`] with a human sentence (the error, or what was found).
pub async fn record_detail(
    store: &Store,
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
    result: &str,
    detail: Option<&str>,
) -> Result<()> {
    store
        .append_audit(&row(actor, action, ds, &params, result, detail))
        .await
        .map(|_| ())
}

/// Records through the store the actor carries; a failure to write is
/// logged, never returned (the action itself has happened or been refused).
/// Actors without a store (tests, tools) log the row instead.
pub async fn record_via(
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
    result: &str,
    detail: Option<&str>,
) {
    let r = row(actor, action, ds, &params, result, detail);
    match &actor.audit {
        Some(sink) => {
            sink.note(action);
            if let Err(e) = sink.store.append_audit(&r).await {
                tracing::warn!(target: "cachedeck::audit", "could not write the audit row {action} by {}: {e}", actor.identity);
            }
        }
        None => log_row(&r),
    }
}

/// Records the outcome of a write: `result` ok with `params`, or the error
/// (a Redis NOPERM becomes `permission_denied`). Never fails.
pub async fn record_outcome<T>(
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
    outcome: &Result<T>,
) {
    match outcome {
        Ok(_) => record_via(actor, action, ds, params, results::OK, None).await,
        Err(e @ (Error::RedisPermission { .. } | Error::PermissionDenied(_))) => {
            let mut params = params;
            if let serde_json::Value::Object(m) = &mut params {
                m.insert("attempted".into(), action.into());
            }
            record_via(
                actor,
                actions::PERMISSION_DENIED,
                ds,
                params,
                results::DENIED,
                Some(&e.to_string()),
            )
            .await
        }
        Err(Error::RateLimited { .. }) => {}
        Err(Error::Cancelled) => {
            record_via(actor, action, ds, params, results::CANCELLED, None).await
        }
        Err(e) => {
            record_via(
                actor,
                action,
                ds,
                params,
                results::FAILED,
                Some(&e.to_string()),
            )
            .await
        }
    }
}

/// Records a refused attempt of a command that failed with `err`, when the
/// refusal came from Redis (NOPERM) rather than from the checks that audit
/// themselves. The CLI calls this for every failed command.
pub async fn record_refusal(actor: &Actor, command: &str, err: &Error) {
    let already = actor
        .audit
        .as_ref()
        .is_some_and(AuditSink::refusal_recorded);
    if let Error::RedisPermission { what, .. } = err
        && !already
    {
        record_via(
            actor,
            actions::PERMISSION_DENIED,
            None,
            serde_json::json!({ "attempted": command, "refusedBy": "redis", "what": what }),
            results::DENIED,
            Some(&err.to_string()),
        )
        .await;
    }
}

fn log_row(r: &AuditInsert) {
    tracing::info!(
        target: "cachedeck::audit",
        action = %r.action,
        identity = %r.db_user,
        origin = %r.origin,
        datasource = ?r.datasource_id,
        result = %r.result,
        params = %r.params,
        "{}",
        r.detail.as_deref().unwrap_or("")
    );
}

/// Reads audit rows matching `filter`, newest first (the CLI and the GUI's
/// Audit tab).
pub async fn query(store: &Store, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
    if let Some(a) = &filter.action
        && !actions::ALL.contains(&a.as_str())
    {
        return Err(Error::Invalid(format!(
            "`{a}` is not an audit action (one of: {})",
            actions::ALL.join(", ")
        )));
    }
    store.audit_rows(filter).await
}

/// Deletes rows older than `keep` (at least [`MIN_RETENTION`]); returns how
/// many went. A prune that deleted rows is recorded as `audit_pruned` by
/// `actor`.
pub async fn prune(store: &Store, actor: &Actor, keep: Duration) -> Result<u64> {
    check_retention(keep)?;
    let cutoff = store::now_ms() - keep.as_millis().min(i64::MAX as u128) as i64;
    let n = store.prune_audit(cutoff).await?;
    if n > 0 {
        let params = serde_json::json!({
            "deleted": n,
            "olderThan": crate::jobs::iso(cutoff),
            "retentionSecs": keep.as_secs(),
        });
        let detail = format!(
            "deleted {n} rows older than {}",
            humantime::format_duration(keep)
        );
        record_detail(
            store,
            actor,
            actions::AUDIT_PRUNED,
            None,
            params,
            results::OK,
            Some(&detail),
        )
        .await?;
    }
    Ok(n)
}

/// A write action's audit row, written before the action with result
/// `started`; [`Intent::finish`] gives it the outcome.
#[must_use = "an intent records nothing until it is finished"]
pub struct Intent {
    /// Where the row is (none for an actor without a store: logged instead).
    store: Option<Store>,
    /// The row's id.
    id: i64,
    /// The action, for the log when the outcome cannot be written.
    action: String,
    /// The datasource, for logging rows of actors without a store.
    ds: Option<DsId>,
}

/// Writes the `started` row of write action `action` (`what` says it for a
/// person: "invalidate the cache"). When the row cannot be written the
/// action must not run: the error says why.
pub async fn begin(
    actor: &Actor,
    action: &str,
    what: &str,
    ds: Option<DsId>,
    params: &serde_json::Value,
) -> Result<Intent> {
    match &actor.audit {
        Some(sink) => begin_in(&sink.store, actor, action, what, ds, params).await,
        None => Ok(Intent {
            store: None,
            id: 0,
            action: action.to_string(),
            ds,
        }),
    }
}

/// [`begin`] into `store` (code that holds the store, such as the warm's
/// job context).
pub async fn begin_in(
    store: &Store,
    actor: &Actor,
    action: &str,
    what: &str,
    ds: Option<DsId>,
    params: &serde_json::Value,
) -> Result<Intent> {
    let r = row(actor, action, ds, params, results::STARTED, None);
    match store.append_audit(&r).await {
        Ok(id) => Ok(Intent {
            store: Some(store.clone()),
            id,
            action: action.to_string(),
            ds,
        }),
        Err(e) => {
            let reason = match &e {
                Error::Db { source, .. } => source
                    .as_database_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| source.to_string()),
                other => other.to_string(),
            };
            tracing::debug!(target: "cachedeck::audit", "refused {action}: {e}");
            Err(Error::AuditUnavailable {
                what: what.to_string(),
                reason,
            })
        }
    }
}

impl Intent {
    /// Gives the row its outcome, as [`record_outcome`] words it. Never
    /// fails: the action has happened; a failure to write is logged.
    pub async fn finish<T>(self, actor: &Actor, params: serde_json::Value, outcome: &Result<T>) {
        let (action, params, result, detail) = outcome_row(&self.action, params, outcome);
        let Some(store) = &self.store else {
            log_row(&row(
                actor,
                action,
                self.ds,
                &params,
                result,
                detail.as_deref(),
            ));
            return;
        };
        if let Err(e) = store
            .finish_audit(
                self.id,
                action,
                &params.to_string(),
                result,
                detail.as_deref(),
            )
            .await
        {
            tracing::warn!(target: "cachedeck::audit", "could not write the outcome of audit row {} ({}): {e}", self.id, self.action);
        }
    }
}

/// The action, parameters, result and detail that record `outcome` of
/// `action`.
fn outcome_row<'a, T>(
    action: &'a str,
    mut params: serde_json::Value,
    outcome: &Result<T>,
) -> (&'a str, serde_json::Value, &'static str, Option<String>) {
    match outcome {
        Ok(_) => (action, params, results::OK, None),
        Err(e @ (Error::RedisPermission { .. } | Error::PermissionDenied(_))) => {
            if let serde_json::Value::Object(m) = &mut params {
                m.insert("attempted".into(), action.into());
            }
            (
                actions::PERMISSION_DENIED,
                params,
                results::DENIED,
                Some(e.to_string()),
            )
        }
        Err(e @ Error::RateLimited { .. }) => {
            (action, params, results::RATE_LIMITED, Some(e.to_string()))
        }
        Err(Error::Cancelled) => (action, params, results::CANCELLED, None),
        Err(e) => (action, params, results::FAILED, Some(e.to_string())),
    }
}

/// Writes `rows` as CSV with a header line (params as JSON text); cells a
/// spreadsheet would run get a leading `'` ([`crate::csv_safe`]).
pub fn export_csv(rows: &[AuditRow], writer: impl Write) -> Result<()> {
    let mut w = crate::csv_safe::writer(writer);
    let csv_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io("writing the audit CSV", io),
        other => Error::Invalid(format!("cannot write the audit CSV: {other:?}")),
    };
    w.write_record([
        "id",
        "at",
        "action",
        "datasourceId",
        "osUser",
        "dbUser",
        "redisUser",
        "profile",
        "origin",
        "params",
        "result",
        "detail",
    ])
    .map_err(csv_err)?;
    for r in rows {
        let cells = [
            r.id.to_string(),
            r.at.clone(),
            r.action.clone(),
            r.datasource_id.map(|d| d.to_string()).unwrap_or_default(),
            r.os_user.clone(),
            r.db_user.clone(),
            r.redis_user.clone().unwrap_or_default(),
            r.profile.clone(),
            r.origin.clone(),
            r.params.to_string(),
            r.result.clone(),
            r.detail.clone().unwrap_or_default(),
        ];
        w.write_record(crate::csv_safe::record(&cells))
            .map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::io("writing the audit CSV", e))
}

/// Writes `rows` as a pretty JSON array (the shape of `cachedeck audit --json`).
pub fn export_json(rows: &[AuditRow], mut writer: impl Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut writer, rows)
        .map_err(|e| Error::io("writing the audit JSON", std::io::Error::other(e)))?;
    writeln!(writer).map_err(|e| Error::io("writing the audit JSON", e))
}

/// Rows that are being written in the background.
#[derive(Debug, Default)]
struct Pending {
    /// How many writes have not ended yet.
    count: AtomicUsize,
    /// Woken whenever one ends.
    done: Notify,
    /// A `permission_denied` row was recorded through this sink, so the
    /// CLI's catch-all for NOPERM does not record the refusal twice.
    denied: std::sync::atomic::AtomicBool,
}

/// The store an actor records into, carried inside the [`Actor`] so that
/// code holding only an actor (a refusal in `require_write`, invalidation,
/// the Redis tools) can append audit rows. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    /// Where rows go.
    store: Store,
    /// Background writes not yet finished, so [`AuditSink::flush`] can wait.
    pending: Arc<Pending>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("store", &self.store.label())
            .finish()
    }
}

impl AuditSink {
    /// A sink writing into `store`.
    pub fn new(store: Store) -> AuditSink {
        AuditSink {
            store,
            pending: Arc::new(Pending::default()),
        }
    }

    /// The store rows go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Appends a row without waiting (from synchronous code such as
    /// `Actor::require_write`); [`AuditSink::flush`] waits for it.
    pub fn record_detached(
        &self,
        actor: &Actor,
        action: &str,
        ds: Option<DsId>,
        params: serde_json::Value,
        result: &str,
        detail: Option<&str>,
    ) {
        self.note(action);
        let r = row(actor, action, ds, &params, result, detail);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            log_row(&r);
            return;
        };
        let store = self.store.clone();
        let pending = self.pending.clone();
        pending.count.fetch_add(1, Ordering::SeqCst);
        handle.spawn(async move {
            if let Err(e) = store.append_audit(&r).await {
                tracing::warn!(target: "cachedeck::audit", "could not write the audit row {}: {e}", r.action);
                log_row(&r);
            }
            pending.count.fetch_sub(1, Ordering::SeqCst);
            pending.done.notify_waiters();
        });
    }

    fn note(&self, action: &str) {
        if action == actions::PERMISSION_DENIED {
            self.pending.denied.store(true, Ordering::SeqCst);
        }
    }

    /// Whether a `permission_denied` row was recorded through this sink.
    pub fn refusal_recorded(&self) -> bool {
        self.pending.denied.load(Ordering::SeqCst)
    }

    /// Waits until every row recorded so far is written (the CLI calls it
    /// before exiting).
    pub async fn flush(&self) {
        // Bounded: a store that hangs must not keep the process from exiting.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::time::Instant::now() < deadline {
            let done = self.pending.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.pending.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            // A bounded wait per round, so a lost wake-up cannot hang the exit.
            let _ = tokio::time::timeout(Duration::from_secs(1), done).await;
        }
    }
}

/// Records through the actor's sink without waiting, for synchronous code
/// (the Redis tools' `audit` hook); actors without a store log the row.
/// [`flush`] waits for it.
pub fn record_detached(
    actor: &Actor,
    action: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
    result: &str,
    detail: Option<&str>,
) {
    match &actor.audit {
        Some(sink) => sink.record_detached(actor, action, ds, params, result, detail),
        None => log_row(&row(actor, action, ds, &params, result, detail)),
    }
}

/// Waits for the actor's background audit writes (see [`AuditSink::flush`]).
pub async fn flush(actor: &Actor) {
    if let Some(sink) = &actor.audit {
        sink.flush().await;
    }
}
