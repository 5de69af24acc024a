//! Running warm jobs: submit (queue), wait for a slot under the global limit,
//! warm, and publish progress to the caller and to the job record in Redis.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::slots::{self, Claim, Renewal};
use super::{JobSnapshot, JobState, heartbeat, iso, timing, write_record};
use crate::actor::Actor;
use crate::cache::meta;
use crate::cache::trend::{self, TrendSample};
use crate::cache::warm::{self, Control, Progress, WarmHandles, WarmOptions};
use crate::error::{Error, Result};
use crate::governance::audit;
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;
use crate::store::Store;

/// How often a job publishes progress, renews its run slot and reads its
/// control field.
const TICK: Duration = Duration::from_millis(250);
/// The reason the warm gives while an admin's pause holds it
/// (`cache::warm`'s gate).
const ADMIN_PAUSE: &str = "paused by an admin";
/// Shown while a job whose slot lease lapsed waits for a slot again.
const SLOT_WAIT: &str = "waiting for a free warm slot: its slot lapsed while this process was stalled and the concurrency limit is in use";

/// What running jobs needs.
#[derive(Clone)]
pub struct JobContext {
    pub redis: Redis,
    pub store: Store,
    /// Who starts the jobs.
    pub actor: Actor,
    /// Source URL for datasources that name none (the profile's database).
    pub default_source_url: String,
    pub options: WarmOptions,
    /// A warm younger than this is skipped unless forced.
    pub skip_within: Duration,
    /// Global number of warms that may run at once.
    pub concurrency: u32,
    /// A job running longer than this is ended, failed with that cause.
    pub warm_timeout: Duration,
    /// How many times a job whose worker died is run again by another.
    pub job_retries: u32,
}

/// Queues one job per datasource and returns their snapshots. Refused for
/// a reader, counted against the actor's warm rate limit as one operation
/// (none when every datasource would be skipped or is busy), and audited (`cache_warm_initiated` per job).
pub async fn submit(ctx: &JobContext, ds_ids: &[DsId], force: bool) -> Result<Vec<JobSnapshot>> {
    submit_as(ctx, ds_ids, force, false).await
}

/// [`submit`] for any worker (a `cachedeck agent`) to run: the jobs wait in
/// the pending queue, without a heartbeat and never stale, until a worker
/// takes them; each carries its estimated duration.
pub async fn submit_detached(
    ctx: &JobContext,
    ds_ids: &[DsId],
    force: bool,
) -> Result<Vec<JobSnapshot>> {
    submit_as(ctx, ds_ids, force, true).await
}

async fn submit_as(
    ctx: &JobContext,
    ds_ids: &[DsId],
    force: bool,
    detached: bool,
) -> Result<Vec<JobSnapshot>> {
    let single = (ds_ids.len() == 1).then(|| ds_ids[0]);
    let params = serde_json::json!({ "datasources": ds_ids, "force": force });
    crate::governance::require_write(&ctx.actor, "warm the cache", single, params.clone()).await?;
    let r = enqueue(ctx, ds_ids, force, detached).await;
    // A refusal for want of an audit row cannot be audited either.
    if r.as_ref()
        .is_err_and(|e| !matches!(e, crate::error::Error::AuditUnavailable { .. }))
    {
        audit::record_outcome(
            &ctx.actor,
            audit::actions::CACHE_WARM_INITIATED,
            single,
            params,
            &r,
        )
        .await;
    }
    r
}

async fn enqueue(
    ctx: &JobContext,
    ds_ids: &[DsId],
    force: bool,
    detached: bool,
) -> Result<Vec<JobSnapshot>> {
    let mut datasources = Vec::with_capacity(ds_ids.len());
    for &id in ds_ids {
        datasources.push(ctx.store.datasource(id).await?);
    }
    let single = (ds_ids.len() == 1).then(|| ds_ids[0]);
    let now = ctx.redis.time_ms().await?;
    // One submission is one operation, however many datasources it names;
    // it costs nothing when every one of them would be skipped (warmed
    // recently). A datasource being warmed now still counts: its job waits
    // and runs after the current warm (a refused warm is refused before it
    // gets here).
    let mut units = 0;
    for ds in &datasources {
        if !recently_warmed(ctx, ds.id, force, now).await? {
            units = 1;
            break;
        }
    }
    crate::governance::ratelimit::consume(
        &ctx.redis,
        &ctx.actor,
        crate::governance::RateAction::Warm,
        units,
        single,
    )
    .await?;
    let mut out = Vec::with_capacity(datasources.len());
    for (i, ds) in datasources.iter().enumerate() {
        let snap = JobSnapshot {
            job_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            datasource_id: ds.id,
            datasource_name: ds.name.clone(),
            state: JobState::Queued,
            queued_at: iso(now),
            owner: ctx.actor.identity.clone(),
            origin: ctx.actor.origin.as_str().to_string(),
            forced: force,
            detached,
            retries: if detached { ctx.job_retries } else { 0 },
            estimated_duration_ms: if detached {
                super::estimate_ms(&ctx.store, ds, &ctx.default_source_url).await
            } else {
                None
            },
            ..Default::default()
        };
        let params = serde_json::json!({
            "jobId": snap.job_id,
            "force": force,
            "concurrent": datasources.len() > 1,
        });
        // Fail closed: the job is queued only once its audit row is written.
        let intent = audit::begin_in(
            &ctx.store,
            &ctx.actor,
            audit::actions::CACHE_WARM_INITIATED,
            "warm the cache",
            Some(ds.id),
            &params,
        )
        .await?;
        let queued = queue(ctx, &snap, now, i).await;
        intent.finish(&ctx.actor, params, &queued).await;
        queued?;
        out.push(snap);
    }
    Ok(out)
}

/// True when an unforced warm of `ds` at `now` is skipped: warmed within
/// the skip window and nothing invalidated since.
async fn recently_warmed(ctx: &JobContext, ds: DsId, force: bool, now: i64) -> Result<bool> {
    if force {
        return Ok(false);
    }
    let Some(m) = meta::read(&ctx.redis, ds).await? else {
        return Ok(false);
    };
    // Entries invalidated since that warm are missing until a warm
    // restores them: a recent warm is no reason to skip then.
    Ok(now - m.warmed_at_ms < ctx.skip_within.as_millis() as i64
        && crate::cache::invalidate::pending(&ctx.redis, ds).await? == 0)
}

/// Writes a queued job's record, control, live membership and queue entry,
/// and its history row.
async fn queue(ctx: &JobContext, snap: &JobSnapshot, now: i64, i: usize) -> Result<()> {
    write_record(&ctx.redis, snap, now).await?;
    let mut p = redis::pipe();
    p.cmd("HSET")
        .arg(keys::job(&snap.job_id))
        .arg("control")
        .arg("run")
        .ignore();
    p.cmd("SADD")
        .arg(keys::jobs_live())
        .arg(&snap.job_id)
        .ignore();
    // Same-millisecond submissions keep their order. A detached job waits
    // for a worker in the pending queue; the worker moves it to the queue.
    p.cmd("ZADD")
        .arg(if snap.detached {
            keys::jobs_pending()
        } else {
            keys::jobs_queue()
        })
        .arg(now as f64 + i as f64 / 1000.0)
        .arg(&snap.job_id)
        .ignore();
    ctx.redis.pipe::<()>("queueing a warm job", &p).await?;
    ctx.store.save_job(&snap.to_record()).await?;
    Ok(())
}

async fn read_control(redis: &Redis, job_id: &str) -> Result<String> {
    let v: Option<String> = redis
        .query(
            "reading the job control",
            redis::cmd("HGET").arg(keys::job(job_id)).arg("control"),
        )
        .await?;
    Ok(v.unwrap_or_else(|| "run".into()))
}

/// Waits for a run slot; `Ok(false)` when the job was cancelled meanwhile.
async fn wait_for_slot(
    ctx: &JobContext,
    snap: &JobSnapshot,
    cancel: &CancellationToken,
) -> Result<bool> {
    let t = timing();
    loop {
        if cancel.is_cancelled() || read_control(&ctx.redis, &snap.job_id).await? == "cancel" {
            return Ok(false);
        }
        if !heartbeat(&ctx.redis, snap).await? {
            return Err(given_up(snap));
        }
        match slots::claim(&ctx.redis, &snap.job_id, ctx.concurrency, t).await? {
            Claim::Claimed => return Ok(true),
            Claim::Wait => {}
            // Dropped from the queue (its process stalled): take a place again.
            Claim::NotQueued => slots::requeue(&ctx.redis, &snap.job_id).await?,
            Claim::NotLive => return Err(given_up(snap)),
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            _ = tokio::time::sleep(t.claim_poll) => {}
        }
    }
}

/// The error of a job that ran longer than `defaults.warm_timeout`.
fn timed_out(limit: Duration) -> Error {
    Error::JobStopped(format!(
        "it ran longer than the warm timeout of {} (defaults.warm_timeout); the warm was stopped, its shadow keys removed and the live cache left unchanged",
        humantime::format_duration(limit)
    ))
}

/// The error of a job whose record was ended by another instance because
/// its heartbeat went stale (this process stalled, e.g. a laptop asleep).
fn given_up(snap: &JobSnapshot) -> Error {
    Error::JobStopped(format!(
        "job {} was given up as dead by another instance while this process was stalled; warm again",
        snap.job_id
    ))
}

/// Runs a submitted job to its end, calling `on_update` with every snapshot.
/// Never fails: a failure is the job's final state, with its cause.
pub async fn run_job(
    ctx: &JobContext,
    mut snap: JobSnapshot,
    cancel: CancellationToken,
    on_update: impl Fn(&JobSnapshot) + Send + Sync,
) -> JobSnapshot {
    let started = Instant::now();
    let outcome = run_inner(ctx, &mut snap, &cancel, &on_update).await;
    let now = ctx
        .redis
        .time_ms()
        .await
        .unwrap_or_else(|_| chrono::Utc::now().timestamp_millis());
    match outcome {
        Ok(state) => snap.state = state,
        Err(Error::Cancelled) => {
            snap.state = JobState::Cancelled;
            snap.error = Some("cancelled by an admin".into());
        }
        Err(e) => {
            snap.state = JobState::Failed;
            if matches!(e, Error::AlreadyWarming { .. } | Error::AppWarming { .. }) {
                snap.error_kind = Some("busy".into());
            }
            snap.error = Some(crate::redact::redact(&e.to_string()));
        }
    }
    snap.pause_reason = None;
    snap.eta_ms = None;
    snap.completed_at = Some(iso(now));
    if snap.started_at.is_some() {
        snap.duration_ms = Some(started.elapsed().as_millis() as u64);
    }
    if let Err(e) = write_record(&ctx.redis, &snap, now).await {
        tracing::warn!(
            "could not write the final record of job {}: {e}",
            snap.job_id
        );
    }
    if let Err(e) = ctx.store.save_job(&snap.to_record()).await {
        tracing::warn!("could not record job {} in the history: {e}", snap.job_id);
    }
    audit_end(ctx, &snap).await;
    on_update(&snap);
    snap
}

/// Audits a job's end: `cache_warm_completed` (also for a skip),
/// `cache_warm_failed` or `cache_warm_cancelled`.
async fn audit_end(ctx: &JobContext, snap: &JobSnapshot) {
    use audit::{actions, results};
    let (action, result) = match snap.state {
        JobState::Succeeded => (actions::CACHE_WARM_COMPLETED, results::OK),
        JobState::Skipped => (actions::CACHE_WARM_COMPLETED, results::SKIPPED),
        JobState::Cancelled => (actions::CACHE_WARM_CANCELLED, results::CANCELLED),
        _ => (actions::CACHE_WARM_FAILED, results::FAILED),
    };
    let params = serde_json::json!({
        "jobId": snap.job_id,
        "owner": snap.owner,
        "rowsProcessed": snap.rows_processed,
        "entriesCached": snap.entries_cached,
        "indexesCached": snap.indexes_cached,
        "durationMs": snap.duration_ms,
        "forced": snap.forced,
    });
    let detail = snap
        .error
        .as_deref()
        .or(snap.warnings.first().map(String::as_str));
    if let Err(e) = audit::record_detail(
        &ctx.store,
        &ctx.actor,
        action,
        Some(snap.datasource_id),
        params,
        result,
        detail,
    )
    .await
    {
        tracing::warn!("could not audit the end of job {}: {e}", snap.job_id);
    }
}

async fn run_inner(
    ctx: &JobContext,
    snap: &mut JobSnapshot,
    cancel: &CancellationToken,
    on_update: &(impl Fn(&JobSnapshot) + Send + Sync),
) -> Result<JobState> {
    on_update(snap);
    if !wait_for_slot(ctx, snap, cancel).await? {
        return Err(Error::Cancelled);
    }
    let now = ctx.redis.time_ms().await?;
    snap.started_at = Some(iso(now));
    snap.state = JobState::Running;
    let waiting = waiting_for_slot(snap);
    let slot_held = match slots::tick(&ctx.redis, snap, &waiting, ctx.concurrency, timing()).await?
    {
        Renewal::NotLive => return Err(given_up(snap)),
        Renewal::Lost => {
            *snap = waiting;
            false
        }
        Renewal::Renewed | Renewal::Retaken => true,
    };
    ctx.store.save_job(&snap.to_record()).await?;
    on_update(snap);

    if recently_warmed(ctx, snap.datasource_id, snap.forced, now).await?
        && let Some(m) = meta::read(&ctx.redis, snap.datasource_id).await?
    {
        let mins = (now - m.warmed_at_ms) / 60_000;
        snap.warnings.push(format!(
            "skipped: warmed {mins} min ago (less than {}); use --force to warm again",
            humantime::format_duration(ctx.skip_within)
        ));
        return Ok(JobState::Skipped);
    }
    let ds = ctx.store.datasource(snap.datasource_id).await?;
    // The source's password is read now, into memory only (the keyring on
    // a blocking thread).
    let source_url = crate::source::password::source_url(
        ds.source_url.as_deref(),
        ds.source_password.as_deref(),
        &ctx.default_source_url,
    )
    .await?;

    // A job paused while it queued starts paused (and so does one whose
    // slot lapsed already).
    let initial = match read_control(&ctx.redis, &snap.job_id).await?.as_str() {
        "cancel" => return Err(Error::Cancelled),
        "pause" => Control::Pause,
        _ if !slot_held => Control::Pause,
        _ => Control::Run,
    };
    let (control_tx, control_rx) = watch::channel(initial);
    let (progress_tx, mut progress_rx) = watch::channel(Progress::default());
    let warm_cancel = cancel.child_token();
    let handles = WarmHandles {
        control: control_rx,
        cancel: warm_cancel.clone(),
        progress: progress_tx,
    };
    let redis = ctx.redis.clone();
    // A forced warm also rebuilds every index set (what the health check
    // recommends for broken indexes).
    let options = WarmOptions {
        rebuild_indexes: ctx.options.rebuild_indexes || snap.forced,
        ..ctx.options.clone()
    };
    let job_id = snap.job_id.clone();
    let ds_for_task = ds.clone();
    let mut task = tokio::spawn(async move {
        warm::run(
            &redis,
            &ds_for_task,
            &source_url,
            &job_id,
            &options,
            handles,
        )
        .await
    });

    let mut rate = 0f64;
    let mut last = (Instant::now(), 0u64);
    // Past this the warm is stopped (`defaults.warm_timeout`).
    let deadline = Instant::now() + ctx.warm_timeout;
    // Whether the job holds its run slot (it may lapse while the process
    // stalls; then the job waits, paused, until a slot is free again).
    let mut slot_held = slot_held;
    // Why this runner stopped the warm itself, when it did.
    let mut stopped: Option<Error> = None;
    let result = loop {
        tokio::select! {
            r = &mut task => break r.map_err(|e| Error::Invalid(format!("the warm task stopped: {e}")))?,
            _ = tokio::time::sleep(TICK) => {}
        }
        let p = progress_rx.borrow_and_update().clone();
        let dt = last.0.elapsed().as_secs_f64();
        if dt > 0.0 {
            let inst = p.rows_processed.saturating_sub(last.1) as f64 / dt;
            rate = if rate == 0.0 {
                inst
            } else {
                0.8 * rate + 0.2 * inst
            };
            last = (Instant::now(), p.rows_processed);
        }
        if stopped.is_none() && Instant::now() >= deadline {
            stopped = Some(timed_out(ctx.warm_timeout));
            warm_cancel.cancel();
        }
        // What the admin asks for (the control field), read first so the
        // record written below already reflects it.
        let asked = read_control(&ctx.redis, &snap.job_id).await.ok();
        apply_progress(snap, &p, rate);
        if asked.as_deref() == Some("run")
            && snap.state == JobState::Paused
            && snap.pause_reason.as_deref() == Some(ADMIN_PAUSE)
        {
            // Resuming now (the warm obeys at its next batch).
            snap.state = JobState::Running;
            snap.pause_reason = None;
        }
        let waiting = waiting_for_slot(snap);
        match slots::tick(&ctx.redis, snap, &waiting, ctx.concurrency, timing()).await {
            Ok(Renewal::Renewed | Renewal::Retaken) => slot_held = true,
            Ok(Renewal::Lost) => slot_held = false,
            Ok(Renewal::NotLive) => {
                stopped.get_or_insert_with(|| given_up(snap));
                warm_cancel.cancel();
            }
            // Redis is slow or gone: the warm's guard decides.
            Err(_) => {}
        }
        if !slot_held {
            if snap.state == JobState::Swapping && stopped.is_none() {
                stopped = Some(Error::JobStopped(format!(
                    "its run slot lapsed while this process was stalled and every slot (limit {}) is taken; the warm stopped rather than exceed the limit",
                    ctx.concurrency.max(1)
                )));
                warm_cancel.cancel();
            }
            *snap = waiting;
        }
        let wanted = match asked.as_deref() {
            Some("cancel") => {
                warm_cancel.cancel();
                None
            }
            _ if !slot_held => Some(Control::Pause),
            Some("pause") => Some(Control::Pause),
            Some(_) => Some(Control::Run),
            None => None,
        };
        if let Some(c) = wanted {
            control_tx.send_if_modified(|cur| {
                let changed = *cur != c;
                *cur = c;
                changed
            });
        }
        on_update(snap);
    };
    let p = progress_rx.borrow().clone();
    apply_progress(snap, &p, rate);
    match result {
        Ok(r) => {
            snap.progress = 100.0;
            snap.entries_cached = r.meta.entries;
            snap.indexes_cached = r.meta.indexes;
            snap.rows_processed = r.meta.rows;
            snap.rows_total = Some(r.meta.rows);
            snap.warnings.extend(r.warnings);
            let sample = TrendSample {
                t: r.meta.warmed_at_ms,
                memory_bytes: r.meta.memory_bytes,
                entries: r.meta.entries,
            };
            if let Err(e) = trend::record(&ctx.redis, ds.id, sample).await {
                tracing::warn!("could not record a trend sample: {e}");
            }
            Ok(JobState::Succeeded)
        }
        Err(_) if stopped.is_some() => Err(stopped.unwrap_or(Error::Cancelled)),
        Err(Error::Cancelled) if warm_cancel.is_cancelled() => Err(Error::Cancelled),
        Err(e) => Err(e),
    }
}

/// How a running job reads while it waits for a slot again.
fn waiting_for_slot(snap: &JobSnapshot) -> JobSnapshot {
    let mut w = snap.clone();
    if !w.state.is_final() {
        w.state = JobState::Paused;
        w.pause_reason = Some(SLOT_WAIT.into());
        w.eta_ms = None;
        w.rows_per_second = 0.0;
    }
    w
}

fn apply_progress(snap: &mut JobSnapshot, p: &Progress, rate: f64) {
    snap.state = JobSnapshot::phase_state(p.phase);
    snap.rows_processed = p.rows_processed;
    snap.rows_total = p.rows_total;
    snap.entries_cached = p.entries;
    snap.indexes_cached = p.indexes;
    snap.pause_reason = p.pause_reason.clone();
    snap.rows_per_second = rate.round();
    snap.progress = match p.rows_total {
        Some(t) if t > 0 => (p.rows_processed as f64 * 100.0 / t as f64).min(100.0),
        _ => 0.0,
    };
    snap.eta_ms = match (p.rows_total, rate > 1.0) {
        (Some(t), true) if snap.state == JobState::Running => {
            Some((t.saturating_sub(p.rows_processed) as f64 / rate * 1000.0) as u64)
        }
        _ => None,
    };
}
