//! Running warm jobs: submit (queue), wait for a slot under the global limit,
//! warm, and publish progress to the caller and to the job record in Redis.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{JobSnapshot, JobState, iso, write_record};
use crate::actor::Actor;
use crate::cache::meta;
use crate::cache::trend::{self, TrendSample};
use crate::cache::warm::{self, Control, Progress, WarmHandles, WarmOptions};
use crate::error::{Error, Result};
use crate::governance::audit;
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;
use crate::store::Store;

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua_claim.lua")));

/// How often a job publishes progress and reads its control field.
const TICK: Duration = Duration::from_millis(250);
/// Lease of a run slot; renewed every tick, so a dead runner frees it soon.
const SLOT_LEASE_MS: i64 = 15_000;

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
}

/// Queues one job per datasource and returns their snapshots. Refused for
/// a reader, counted against the actor's warm rate limit (each datasource
/// once), and audited (`cache_warm_initiated` per job).
pub async fn submit(ctx: &JobContext, ds_ids: &[DsId], force: bool) -> Result<Vec<JobSnapshot>> {
    let single = (ds_ids.len() == 1).then(|| ds_ids[0]);
    let params = serde_json::json!({ "datasources": ds_ids, "force": force });
    crate::governance::require_write(&ctx.actor, "warm the cache", single, params.clone()).await?;
    let r = enqueue(ctx, ds_ids, force).await;
    if r.is_err() {
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

async fn enqueue(ctx: &JobContext, ds_ids: &[DsId], force: bool) -> Result<Vec<JobSnapshot>> {
    let mut datasources = Vec::with_capacity(ds_ids.len());
    for &id in ds_ids {
        datasources.push(ctx.store.datasource(id).await?);
    }
    let single = (ds_ids.len() == 1).then(|| ds_ids[0]);
    crate::governance::ratelimit::consume(
        &ctx.redis,
        &ctx.actor,
        crate::governance::RateAction::Warm,
        datasources.len() as u32,
        single,
    )
    .await?;
    let now = ctx.redis.time_ms().await?;
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
            ..Default::default()
        };
        write_record(&ctx.redis, &snap, now).await?;
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
        // Same-millisecond submissions keep their order.
        p.cmd("ZADD")
            .arg(keys::jobs_queue())
            .arg(now as f64 + i as f64 / 1000.0)
            .arg(&snap.job_id)
            .ignore();
        ctx.redis.pipe::<()>("queueing a warm job", &p).await?;
        ctx.store.save_job(&snap.to_record()).await?;
        let params = serde_json::json!({
            "jobId": snap.job_id,
            "force": force,
            "concurrent": datasources.len() > 1,
        });
        audit::record_via(
            &ctx.actor,
            audit::actions::CACHE_WARM_INITIATED,
            Some(ds.id),
            params,
            audit::results::OK,
            None,
        )
        .await;
        out.push(snap);
    }
    Ok(out)
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
    loop {
        if cancel.is_cancelled() || read_control(&ctx.redis, &snap.job_id).await? == "cancel" {
            return Ok(false);
        }
        let now = ctx.redis.time_ms().await?;
        write_record(&ctx.redis, snap, now).await?;
        let mut conn = ctx.redis.conn();
        let claimed: i64 = CLAIM
            .key(keys::jobs_queue())
            .key(keys::jobs_slots())
            .arg(&snap.job_id)
            .arg(ctx.concurrency.max(1))
            .arg(SLOT_LEASE_MS)
            .arg(super::STALE_MS)
            .arg(keys::job_prefix())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("claiming a run slot", e))?;
        match claimed {
            1 => return Ok(true),
            -1 => {
                // Dropped from the queue (e.g. a long stall): take a place again.
                let _: () = ctx
                    .redis
                    .query(
                        "re-queueing a job",
                        redis::cmd("ZADD")
                            .arg(keys::jobs_queue())
                            .arg(now)
                            .arg(&snap.job_id),
                    )
                    .await?;
            }
            _ => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => return Ok(false),
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
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
            if matches!(e, Error::AlreadyWarming { .. }) {
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
    write_record(&ctx.redis, snap, now).await?;
    ctx.store.save_job(&snap.to_record()).await?;
    on_update(snap);

    if !snap.forced
        && let Some(m) = meta::read(&ctx.redis, snap.datasource_id).await?
        && now - m.warmed_at_ms < ctx.skip_within.as_millis() as i64
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

    // A job paused while it queued starts paused.
    let initial = match read_control(&ctx.redis, &snap.job_id).await?.as_str() {
        "pause" => Control::Pause,
        "cancel" => return Err(Error::Cancelled),
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
        apply_progress(snap, &p, rate);
        let now = match ctx.redis.time_ms().await {
            Ok(t) => t,
            Err(_) => continue, // Redis is slow or gone: the warm's guard decides.
        };
        let _ = write_record(&ctx.redis, snap, now).await;
        let _: Result<()> = ctx
            .redis
            .query(
                "renewing the run slot",
                redis::cmd("ZADD")
                    .arg(keys::jobs_slots())
                    .arg("XX")
                    .arg(now + SLOT_LEASE_MS)
                    .arg(&snap.job_id),
            )
            .await;
        match read_control(&ctx.redis, &snap.job_id).await.as_deref() {
            Ok("pause") => {
                control_tx
                    .send_if_modified(|c| std::mem::replace(c, Control::Pause) != Control::Pause);
            }
            Ok("cancel") => warm_cancel.cancel(),
            Ok(_) => {
                control_tx.send_if_modified(|c| std::mem::replace(c, Control::Run) != Control::Run);
            }
            Err(_) => {}
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
        Err(Error::Cancelled) if warm_cancel.is_cancelled() => Err(Error::Cancelled),
        Err(e) => Err(e),
    }
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
