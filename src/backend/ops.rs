//! The backend's operations, each run in its own task: the periodic refresh,
//! warm jobs, job control, invalidation, details, datasource edits and query
//! validation.

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::emit::Emitter;
use super::links::{self, Broken};
use super::protocol::{Command, Event};
use super::{Internal, details};
use crate::actor::Actor;
use crate::cache::invalidate::{self, Selection};
use crate::config::Resolved;
use crate::error::{Error, Result};
use crate::jobs::{self, ControlRequest, JobContext, JobSnapshot, JobState};
use crate::keys::DsId;
use crate::redis_conn::Redis;
use crate::source::Source;
use crate::store::{DatasourceInput, Store};
use crate::text::thousands;

/// Recent jobs the Warming tab's history shows.
const HISTORY_LEN: i64 = 50;

/// What an operation needs: both connections, who acts, and where to report.
pub(super) struct Ctx {
    /// Redis handle (cheap clone of the backend's).
    pub redis: Redis,
    /// Store handle (cheap clone of the backend's).
    pub store: Store,
    /// The admin, origin `gui`.
    pub actor: Actor,
    /// The profile in use (defaults for jobs).
    pub resolved: Resolved,
    /// Events to the window.
    pub emit: Emitter,
    /// Reports back to the backend loop (lost links, refresh requests).
    pub internal: UnboundedSender<Internal>,
    /// The profile generation this runs for.
    pub generation: u64,
    /// Cancelled when the window closes: jobs stop and clean up.
    pub shutdown: CancellationToken,
}

impl Ctx {
    /// Shows an error and tells the backend when it means a lost server.
    fn fail(&self, what: &str, e: &Error) {
        if let Some(which) = links::broken(e) {
            let _ = self.internal.send(Internal::LinkLost {
                generation: self.generation,
                which,
                reason: e.to_string(),
            });
        }
        self.emit.error(format!("{what}: {e}"));
    }

    fn refresh_soon(&self) {
        let _ = self.internal.send(Internal::RefreshSoon);
    }

    /// What warm jobs need, for this context's actor (also the window's
    /// scheduler, `admin::schedules`).
    pub(super) fn job_context(&self) -> Result<JobContext> {
        let d = &self.resolved.defaults;
        Ok(JobContext {
            redis: self.redis.clone(),
            store: self.store.clone(),
            actor: self.actor.clone(),
            default_source_url: self.resolved.database_url.clone(),
            options: crate::cache::warm::WarmOptions {
                memory_pause_percent: d.memory_pause_percent,
                lease: crate::jobs::timing().warm_lease,
                ..Default::default()
            },
            skip_within: crate::config::parse_duration(&d.skip_if_warmed_within)?,
            concurrency: d.concurrency,
            warm_timeout: crate::jobs::warm_timeout(d)?,
            job_retries: d.job_retries,
        })
    }
}

/// One refresh: registry, stats, health, jobs and the server clock. Sends
/// what it gets; returns the servers found unreachable and the first other
/// error. `admin` (unresolved) ends jobs whose process stopped when the
/// refresh finds any and the admin may write.
pub(super) async fn refresh(
    emit: &Emitter,
    redis: Option<&Redis>,
    store: Option<&Store>,
    sampler: Option<Actor>,
    admin: Option<Actor>,
    observations: &crate::metrics::Observations,
) -> (Vec<(Broken, String)>, Option<String>) {
    let mut seen = Seen::default();
    if let Some(store) = store {
        match store.datasources().await {
            Ok(list) => emit.send(Event::Datasources(list)),
            Err(e) => seen.note(e, "reading datasources"),
        }
    }
    if let Some(redis) = redis {
        match redis.time_ms().await {
            Ok(server) => emit.send(Event::ServerClock {
                offset_ms: server - chrono::Utc::now().timestamp_millis(),
            }),
            Err(e) => seen.note(e, "reading the server time"),
        }
    }
    match (redis, store) {
        (Some(redis), Some(store)) if seen.broken.is_empty() => {
            match crate::metrics::stats_with(redis, store, observations).await {
                Ok(report) => emit.send(Event::Stats(report)),
                Err(e) => seen.note(e, "reading cache statistics"),
            }
            match crate::metrics::check_with(redis, store, observations).await {
                Ok(report) => emit.send(Event::Health(report)),
                Err(e) => seen.note(e, "checking cache health"),
            }
            match jobs::status(redis, store, HISTORY_LEN).await {
                Ok(status) => {
                    let stale = status
                        .active_jobs
                        .iter()
                        .any(|j| j.state == JobState::Stale);
                    emit.send(Event::Jobs(status));
                    if stale && let Some(admin) = &admin {
                        reap_stopped(emit, redis, store, admin).await;
                    }
                }
                Err(e) => seen.note(e, "reading warm jobs"),
            }
            if let Some(actor) = sampler {
                // Only an instance that may write records samples.
                let facts = crate::governance::ActorFacts {
                    profile: actor.profile.clone(),
                    origin: actor.origin,
                    redis_user: actor.redis_user.clone(),
                    limits: crate::governance::Limits::off(),
                };
                let sampled =
                    match crate::governance::resolve_actor(store, Some(redis), facts).await {
                        Ok(actor) => crate::metrics::trend_sampler(redis, store, &actor)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    };
                if let Err(e) = sampled {
                    seen.note(e, "sampling memory trends");
                }
            }
        }
        (None, Some(store)) if seen.broken.is_empty() => {
            // Redis is down: the history still shows, live jobs are unknown.
            match store.recent_jobs(None, HISTORY_LEN).await {
                Ok(records) => emit.send(Event::Jobs(jobs::WarmingStatus {
                    active_jobs: Vec::new(),
                    recent_jobs: records
                        .iter()
                        .filter(|r| {
                            !matches!(
                                r.state.as_str(),
                                "queued" | "running" | "paused" | "swapping"
                            )
                        })
                        .map(jobs::RecentJob::from)
                        .collect(),
                    workers: Vec::new(),
                })),
                Err(e) => seen.note(e, "reading warm job history"),
            }
        }
        _ => {}
    }
    (seen.broken, seen.error)
}

/// Ends the jobs whose process stopped (any instance may; no agent is
/// needed), says so, and sends the jobs again. Only an admin who may write
/// does; otherwise they stay shown as stale.
async fn reap_stopped(emit: &Emitter, redis: &Redis, store: &Store, admin: &Actor) {
    let facts = crate::governance::ActorFacts {
        profile: admin.profile.clone(),
        origin: admin.origin,
        redis_user: admin.redis_user.clone(),
        limits: crate::governance::Limits::off(),
    };
    let actor = match crate::governance::resolve_actor(store, Some(redis), facts).await {
        Ok(a) if a.can_write => a,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!("could not check who may clean up stopped jobs: {e}");
            return;
        }
    };
    match jobs::reap(redis, store, &actor).await {
        Ok(r) if !r.abandoned.is_empty() => {
            for a in &r.abandoned {
                emit.notice(format!(
                    "Job {} (DS #{}) stopped with its process; marked failed",
                    a.job_id, a.datasource_id
                ));
            }
            if let Ok(status) = jobs::status(redis, store, HISTORY_LEN).await {
                emit.send(Event::Jobs(status));
            }
        }
        Ok(_) => {}
        Err(e) => emit.error(format!("cleaning up stopped jobs: {e}")),
    }
}

/// What went wrong during one refresh.
#[derive(Default)]
struct Seen {
    /// Servers found unreachable (each once).
    broken: Vec<(Broken, String)>,
    /// The first other failure.
    error: Option<String>,
}

impl Seen {
    fn note(&mut self, e: Error, what: &str) {
        match links::broken(&e) {
            Some(which) => {
                if !self.broken.iter().any(|(b, _)| *b == which) {
                    self.broken.push((which, e.to_string()));
                }
            }
            None => {
                if self.error.is_none() {
                    self.error = Some(format!("{what}: {e}"));
                }
            }
        }
    }
}

/// The window's admin as the servers see it: grants in the store, the Redis
/// ACL (a read-only user stays read-only whatever the window offers), the
/// profile's rate limits, and the audit sink.
pub(super) async fn resolve_actor(ctx: &Ctx) -> Result<Actor> {
    let facts = crate::governance::ActorFacts {
        profile: ctx.resolved.name.clone(),
        origin: crate::actor::Origin::Gui,
        redis_user: crate::governance::permissions::redis_user_of(&ctx.resolved.redis),
        limits: crate::governance::Limits::from_defaults(&ctx.resolved.defaults)?,
    };
    crate::governance::resolve_actor(&ctx.store, Some(&ctx.redis), facts).await
}

/// Runs one command that needs both connections.
pub(super) async fn run(mut ctx: Ctx, cmd: Command) {
    let writes = matches!(
        cmd,
        Command::Warm { .. }
            | Command::WarmAll { .. }
            | Command::Pause { .. }
            | Command::Resume { .. }
            | Command::Cancel { .. }
            | Command::Invalidate { .. }
            | Command::SaveDatasource(_)
    );
    if writes {
        match resolve_actor(&ctx).await {
            Ok(actor) => ctx.actor = actor,
            Err(e) => {
                ctx.fail("cannot check this admin's permissions", &e);
                return;
            }
        }
    }
    match cmd {
        Command::Warm { ids, force } => warm(&ctx, ids, force).await,
        Command::WarmAll { force } => match ctx.store.datasources().await {
            Ok(list) => {
                let ids: Vec<DsId> = list.iter().filter(|d| d.enabled).map(|d| d.id).collect();
                if ids.is_empty() {
                    ctx.emit.error("no enabled datasources to warm");
                } else {
                    warm(&ctx, ids, force).await;
                }
            }
            Err(e) => ctx.fail("cannot warm all", &e),
        },
        Command::Pause { job_id } => control(&ctx, &job_id, ControlRequest::Pause).await,
        Command::Resume { job_id } => control(&ctx, &job_id, ControlRequest::Resume).await,
        Command::Cancel { job_id } => control(&ctx, &job_id, ControlRequest::Cancel).await,
        Command::Invalidate { ds } => invalidate_all(&ctx, ds).await,
        Command::LoadDetails { ds, range } => {
            match details::load(&ctx.redis, &ctx.store, ds, range).await {
                Ok(d) => ctx.emit.send(Event::Details(Box::new(d))),
                Err(e) => ctx.fail(&format!("cannot load the details of datasource {ds}"), &e),
            }
        }
        Command::SaveDatasource(input) => save(&ctx, input).await,
        Command::ValidateSql {
            ds,
            sql,
            source_url,
            source_password,
        } => {
            let result = async {
                if let Some(u) = &source_url {
                    crate::source::password::check_source_url(u)?;
                }
                let url = crate::source::password::source_url(
                    source_url.as_deref(),
                    source_password.as_deref(),
                    &ctx.resolved.database_url,
                )
                .await?;
                validate(ds, &sql, &url).await
            }
            .await
            .map_err(|e| crate::redact::redact(&e.to_string()));
            ctx.emit.send(Event::SqlValidated { ds, sql, result });
        }
        // Handled by the backend loop or its tools/admin modules, never here.
        Command::Refresh
        | Command::SwitchProfile(_)
        | Command::Reconnect
        | Command::Shutdown
        | Command::Restart
        | Command::Tools(_)
        | Command::Admin(_) => {}
    }
}

/// Queues one job per datasource for the workers when one is alive;
/// otherwise runs them here, reporting progress.
async fn warm(ctx: &Ctx, ids: Vec<DsId>, force: bool) {
    let jc = match ctx.job_context() {
        Ok(jc) => jc,
        Err(e) => return ctx.fail("cannot warm", &e),
    };
    // With a worker alive the jobs go to it: closing the window never stops
    // them, and the refresh follows them like any instance's jobs.
    let workers = jobs::workers(&jc.redis).await.unwrap_or_default();
    if let Some(w) = workers.first() {
        match jobs::submit_detached(&jc, &ids, force).await {
            Ok(submitted) => {
                for s in &submitted {
                    ctx.emit.job(s);
                }
                ctx.emit.notice(format!(
                    "Queued {} warm(s) for worker {}{}; they go on if this window closes",
                    submitted.len(),
                    w.instance,
                    if workers.len() > 1 { " and others" } else { "" }
                ));
                ctx.refresh_soon();
            }
            Err(e) => ctx.fail("cannot queue the warm", &e),
        }
        return;
    }
    let submitted = match jobs::submit(&jc, &ids, force).await {
        Ok(s) => s,
        Err(e) => return ctx.fail("cannot queue the warm", &e),
    };
    for s in &submitted {
        ctx.emit.job(s);
    }
    ctx.refresh_soon();
    let runs = submitted.into_iter().map(|snap| {
        let jc = jc.clone();
        let emit = ctx.emit.clone();
        let cancel = ctx.shutdown.child_token();
        async move { jobs::run_job(&jc, snap, cancel, move |s| emit.job(s)).await }
    });
    let finals: Vec<JobSnapshot> = futures::future::join_all(runs).await;
    for s in &finals {
        report_end(ctx, s);
    }
    ctx.refresh_soon();
}

/// One notification per ended job.
fn report_end(ctx: &Ctx, s: &JobSnapshot) {
    let name = format!("{} (#{})", s.datasource_name, s.datasource_id);
    match s.state {
        JobState::Succeeded => ctx.emit.notice(format!(
            "Warmed {name}: {} entries from {} rows in {}",
            thousands(s.entries_cached),
            thousands(s.rows_processed),
            seconds(s.duration_ms.unwrap_or(0))
        )),
        JobState::Skipped => ctx.emit.notice(format!(
            "{name}: {}",
            s.warnings.first().map(String::as_str).unwrap_or("skipped")
        )),
        JobState::Cancelled => ctx.emit.notice(format!(
            "Warm of {name} cancelled; the live cache is unchanged"
        )),
        JobState::Failed => ctx.emit.error(format!(
            "Warm of {name} failed: {}",
            s.error.as_deref().unwrap_or("unknown error")
        )),
        _ => {}
    }
}

/// Writes pause/resume/cancel into a job's control field.
async fn control(ctx: &Ctx, job_id: &str, req: ControlRequest) {
    match jobs::control(&ctx.redis, &ctx.actor, job_id, req).await {
        Ok(snap) => {
            ctx.emit.job(&snap);
            ctx.refresh_soon();
        }
        Err(e) => ctx.fail("job control", &e),
    }
}

/// Deletes a datasource's whole cache.
async fn invalidate_all(ctx: &Ctx, ds: DsId) {
    let name = match ctx.store.datasource(ds).await {
        Ok(d) => d.name,
        Err(e) => return ctx.fail("cannot invalidate", &e),
    };
    match invalidate::invalidate(&ctx.redis, &ctx.actor, ds, &Selection::default()).await {
        Ok(result) => {
            ctx.emit.notice(format!(
                "Invalidated {name} (#{ds}): {} entries and {} indexes deleted, {:.2} MB freed",
                thousands(result.keys_deleted),
                thousands(result.indexes_deleted),
                result.memory_freed_mb
            ));
            ctx.emit.send(Event::Invalidated { ds, result });
            ctx.refresh_soon();
        }
        Err(e) => ctx.fail(&format!("cannot invalidate {name}"), &e),
    }
}

/// Adds or updates a datasource.
async fn save(ctx: &Ctx, input: DatasourceInput) {
    if let Err(e) = ctx.actor.require_write("change datasources") {
        return ctx.fail("cannot save", &e);
    }
    let exists = match ctx.store.datasource(input.id).await {
        Ok(_) => true,
        Err(Error::NoSuchDatasource(_)) => false,
        Err(e) => return ctx.fail("cannot save", &e),
    };
    // Through governance: checked and audited like the CLI's changes.
    let result = if exists {
        crate::governance::datasources::update(&ctx.store, &ctx.actor, &input).await
    } else {
        crate::governance::datasources::add(&ctx.store, &ctx.actor, &input).await
    };
    match result {
        Ok(d) => {
            ctx.emit.notice(format!("Saved {} (#{})", d.name, d.id));
            ctx.emit.send(Event::DatasourceSaved(d));
            ctx.refresh_soon();
        }
        Err(e) => ctx.fail(&format!("cannot save {}", input.name), &e),
    }
}

/// Opens the source and checks the query's columns without running it.
async fn validate(ds: DsId, sql: &str, url: &str) -> Result<Vec<String>> {
    // Describing does not run the query; the default timeout is plenty.
    let timeout =
        std::time::Duration::from_secs(crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS as u64);
    let source = Source::open(url, timeout).await?;
    let result = source.validate(ds, sql).await;
    source.close().await;
    result
}

/// `3.2 s`
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}
