//! Shadow warming: stream a datasource's rows in whatever order the database
//! returns them (no sort: Postgres rows come through `COPY … TO STDOUT`),
//! gather them per group in memory up to a budget, and flush: a group's first
//! flush writes its shadow entry as a JSON array (`SET … PXAT`) and adds it to
//! the shadow master set; a later flush of the same group extends the array
//! in place (`SETRANGE` over the closing bracket). Writes are pipelined and
//! overlap the source read. The secondary indexes are only recorded here
//! (`Written`); the swap writes the ones that changed and swaps the shadow
//! generation over the live one in one MULTI/EXEC (`swap.rs`).
//!
//! Memory bound: at most two chunks of `CHUNK_BYTES` of row JSON (one being
//! gathered, one handed over), plus
//! `WRITERS + QUEUED` write batches of up to `BATCH_BYTES` each, plus one
//! key name and length per distinct group, one name per secondary index and
//! three entry numbers per group (these grow with the number of groups, never
//! with rows).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::meta::{self, Meta};
use super::written::Written;
use super::{SCHEMA_VERSION, adopt, lock, preflight, shadow, swap};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Fence, Gen};
use crate::redis_conn::Redis;
use crate::source::{GroupChunk, Source};
use crate::store::Datasource;

/// Row JSON the source gathers per group before handing a chunk over.
const CHUNK_BYTES: usize = 8 << 20;
/// Entries per Redis pipeline.
const BATCH_ENTRIES: usize = 256;
/// Bytes of entry JSON per pipeline.
const BATCH_BYTES: usize = 2 << 20;
/// Pipelines in flight at once.
const WRITERS: usize = 3;
/// Batches waiting for a writer.
const QUEUED: usize = 2;

/// Where a warm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    #[default]
    Preparing,
    Reading,
    Paused,
    Swapping,
    Done,
}

/// A progress snapshot, published as the warm goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: Phase,
    pub rows_processed: u64,
    /// `None` until the source's count has answered.
    pub rows_total: Option<u64>,
    pub entries: u64,
    pub indexes: u64,
    /// Why the warm is paused, when it is.
    pub pause_reason: Option<String>,
}

/// What a caller asks for pause or resume (cancel is the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Run,
    Pause,
}

/// Tunables of one warm.
#[derive(Debug, Clone)]
pub struct WarmOptions {
    /// Lock lease (renewed every third of it).
    pub lease: Duration,
    /// Pause when Redis used_memory passes this percent of maxmemory.
    pub memory_pause_percent: u32,
    /// Row JSON the source gathers per group before handing a chunk over
    /// (bounds the warm's memory; smaller means more frequent progress).
    pub chunk_bytes: usize,
    /// Write every index set anew instead of changing only the members that
    /// differ from the live generation (a forced warm: it also repairs index
    /// sets damaged by hand, which the comparison of the master sets cannot
    /// see).
    pub rebuild_indexes: bool,
}

impl Default for WarmOptions {
    fn default() -> Self {
        WarmOptions {
            lease: lock::LEASE,
            memory_pause_percent: 90,
            chunk_bytes: CHUNK_BYTES,
            rebuild_indexes: false,
        }
    }
}

/// The outcome of a successful warm.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmResult {
    pub meta: Meta,
    pub generation: u64,
    /// Things an admin should know (eviction policy, memory).
    pub warnings: Vec<String>,
    /// When the swap script was sent and answered (benchmarks measure what
    /// other clients see in this window).
    #[serde(skip)]
    pub swap_window: Option<(Instant, Instant)>,
}

/// Handles a caller passes in.
pub struct WarmHandles {
    /// Pause/resume requests.
    pub control: watch::Receiver<Control>,
    /// Cancels the warm (it cleans up and leaves the live cache untouched).
    pub cancel: CancellationToken,
    /// Receives progress snapshots.
    pub progress: watch::Sender<Progress>,
}

/// Warms `ds` into a shadow generation and swaps it in.
pub async fn run(
    redis: &Redis,
    ds: &Datasource,
    source_url: &str,
    job_id: &str,
    opts: &WarmOptions,
    handles: WarmHandles,
) -> Result<WarmResult> {
    // Taken before the lock: the lease is counted from no later than Redis
    // counts it.
    let started = Instant::now();
    // The application's own warmer first (a separate command: its lock is
    // in another slot); it is checked again right before the swap.
    lock::check_app_lock(redis, ds.id).await?;
    let fence = lock::acquire_fenced(redis, ds.id, job_id, opts.lease).await?;
    let lease = Arc::new(LeaseState {
        lease: opts.lease,
        started,
        renewed_ms: AtomicU64::new(0),
        stop: Mutex::new(None),
        abort: handles.cancel.child_token(),
    });
    // Background tasks: one renews the lease and watches the epoch, one
    // watches memory (apart, so a slow INFO never delays a renewal).
    let guard_stop = CancellationToken::new();
    let (mem_tx, mem_rx) = watch::channel::<Option<String>>(None);
    let epoch0 = meta::epoch(redis, ds.id).await;
    let mut tasks = Vec::new();
    if let Ok(&epoch) = epoch0.as_ref() {
        tasks.push(tokio::spawn(guard_task(GuardArgs {
            redis: redis.clone(),
            ds: ds.id,
            job_id: job_id.to_string(),
            epoch,
            state: lease.clone(),
            stop: guard_stop.clone(),
        })));
        if opts.memory_pause_percent > 0 {
            tasks.push(tokio::spawn(memory_task(
                redis.clone(),
                opts.memory_pause_percent,
                renewal_interval(opts.lease),
                guard_stop.clone(),
                mem_tx,
            )));
        }
    }
    let result = match epoch0 {
        Ok(epoch) => {
            let mut w = Warm {
                redis,
                ds,
                chunk_bytes: opts.chunk_bytes.max(4096),
                job_id,
                fence,
                epoch,
                memory_percent: opts.memory_pause_percent,
                rebuild_indexes: opts.rebuild_indexes,
                observe_live: false,
                lease: lease.clone(),
                abort: lease.abort.clone(),
                control: handles.control,
                memory: mem_rx,
                progress: handles.progress,
                snapshot: Progress::default(),
            };
            w.body(source_url).await
        }
        Err(e) => Err(e),
    };
    guard_stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let stop = lease.stop.lock().ok().and_then(|mut g| g.take());
    let result = match (result, stop) {
        // A cancel by the caller stays a cancel.
        (Err(Error::Cancelled), _) if handles.cancel.is_cancelled() => Err(Error::Cancelled),
        (Err(Error::Cancelled | Error::LeaseLapsed), stop) => {
            Err(stop_error(redis, ds.id, job_id, stop).await)
        }
        (other, _) => other,
    };
    if result.is_err() {
        // Leave nothing behind: this warm's own shadow generation goes (never
        // another holder's), then the lock if it still holds it.
        if let Err(e) = shadow::remove_generation(redis, ds.id, fence).await {
            tracing::warn!(
                "could not remove the shadow keys of datasource {}: {e}",
                ds.id
            );
        }
    }
    if let Err(e) = lock::release(redis, ds.id, job_id).await {
        tracing::warn!(
            "could not release the warm lock of datasource {}: {e}",
            ds.id
        );
    }
    result
}

/// Why the guard or a writer stopped the warm.
#[derive(Debug, Clone)]
enum Stop {
    /// A renewal found another holder, or none.
    LostLock,
    /// No renewal succeeded for a whole lease (Redis slow or unreachable, or
    /// this process stalled): the lock may be someone else's by now.
    LeaseLapsed(String),
    /// The datasource's epoch moved.
    Invalidated,
}

/// The error a warm stopped by its guard or its writers ends with.
async fn stop_error(redis: &Redis, ds: DsId, job_id: &str, stop: Option<Stop>) -> Error {
    match stop {
        Some(Stop::LostLock | Stop::LeaseLapsed(_)) | None => {
            let holder = lock::holder(redis, ds).await.ok().flatten();
            match (holder, stop) {
                (Some(h), Some(Stop::LeaseLapsed(why))) if h == job_id => Error::SwapAborted {
                    ds,
                    reason: format!("the warm lock's lease could not be renewed in time ({why})"),
                },
                (Some(h), _) if h == job_id => Error::SwapAborted {
                    ds,
                    reason: "the warm was stopped".into(),
                },
                (holder, _) => Error::LostLock {
                    ds,
                    holder: holder.unwrap_or_else(|| "nobody (its lease expired)".into()),
                },
            }
        }
        Some(Stop::Invalidated) => Error::SwapAborted {
            ds,
            reason: "the datasource was invalidated while it was being warmed".into(),
        },
    }
}

/// What the guard and the writers share about the lease.
struct LeaseState {
    /// The lease the lock is taken and renewed with.
    lease: Duration,
    /// Sent no later than the acquisition; renewals are counted from here.
    started: Instant,
    /// When the last successful renewal was sent (ms after `started`): the
    /// lock is surely held until that plus the lease.
    renewed_ms: AtomicU64,
    /// The first reason to stop, once there is one.
    stop: Mutex<Option<Stop>>,
    /// Cancelled to stop the warm (a child of the caller's token).
    abort: CancellationToken,
}

impl LeaseState {
    /// Whether the lease is surely still this warm's: a successful renewal
    /// was sent less than a lease ago. Writers check it before each batch,
    /// so a warm whose guard stalled stops writing when its lease may end.
    fn held(&self) -> bool {
        let renewed = Duration::from_millis(self.renewed_ms.load(Ordering::Acquire));
        self.started.elapsed() < renewed + self.lease
    }

    /// Records the reason (the first one wins) and stops the warm.
    fn stop(&self, why: Stop) {
        if let Ok(mut g) = self.stop.lock()
            && g.is_none()
        {
            *g = Some(why);
        }
        self.abort.cancel();
    }

    /// Fails with [`Error::LeaseLapsed`] (and stops the warm) when the lease
    /// may have ended.
    fn check(&self) -> Result<()> {
        if self.held() {
            return Ok(());
        }
        self.stop(Stop::LeaseLapsed(format!(
            "no renewal succeeded for {} ms",
            self.lease.as_millis()
        )));
        Err(Error::LeaseLapsed)
    }
}

/// How often the lease is renewed: a third of it, at most every 2 s.
fn renewal_interval(lease: Duration) -> Duration {
    (lease / 3).min(Duration::from_secs(2))
}

struct GuardArgs {
    redis: Redis,
    ds: DsId,
    job_id: String,
    epoch: i64,
    state: Arc<LeaseState>,
    stop: CancellationToken,
}

/// Renews the lease every [`renewal_interval`]; stops the warm when the lock
/// is lost, when no renewal succeeded for a whole lease, or when the
/// datasource is invalidated.
async fn guard_task(a: GuardArgs) {
    let s = &a.state;
    let tick = renewal_interval(s.lease);
    loop {
        tokio::select! {
            _ = a.stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let sent = s.started.elapsed();
        let renewed = tokio::select! {
            _ = a.stop.cancelled() => return,
            r = lock::renew(&a.redis, a.ds, &a.job_id, s.lease) => r,
        };
        match renewed {
            Ok(true) => s
                .renewed_ms
                .fetch_max(sent.as_millis() as u64, Ordering::AcqRel),
            Ok(false) => {
                s.stop(Stop::LostLock);
                return;
            }
            Err(e) => {
                if !s.held() {
                    s.stop(Stop::LeaseLapsed(format!("Redis stopped answering: {e}")));
                    return;
                }
                continue;
            }
        };
        if !s.held() {
            // The renewal answered, but later than the lease it renewed.
            s.stop(Stop::LeaseLapsed("a renewal answered too late".into()));
            return;
        }
        if let Ok(e) = meta::epoch(&a.redis, a.ds).await
            && e != a.epoch
        {
            s.stop(Stop::Invalidated);
            return;
        }
    }
}

/// Pauses the warm (through `memory`) while Redis memory is above
/// `percent` of maxmemory, resuming 5 points below.
async fn memory_task(
    redis: Redis,
    percent: u32,
    tick: Duration,
    stop: CancellationToken,
    memory: watch::Sender<Option<String>>,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let ratio = tokio::select! {
            _ = stop.cancelled() => return,
            r = memory_ratio(&redis) => r,
        };
        let Ok(ratio) = ratio else { continue };
        let limit = f64::from(percent) / 100.0;
        let cur = memory.borrow().clone();
        let next = match (ratio, &cur) {
            (Some(r), _) if r >= limit => Some(format!(
                "Redis memory at {:.0}% of maxmemory (pause threshold {}%); resumes when it drops, or cancel",
                r * 100.0,
                percent
            )),
            (Some(r), Some(_)) if r >= limit - 0.05 => cur.clone(),
            _ => None,
        };
        if next != cur {
            let _ = memory.send(next);
        }
    }
}

/// used_memory / maxmemory of the fullest master; `None` without maxmemory.
pub async fn memory_ratio(redis: &Redis) -> Result<Option<f64>> {
    Ok(redis
        .masters_memory()
        .await?
        .iter()
        .filter(|n| n.max > 0)
        .map(|n| n.used as f64 / n.max as f64)
        .reduce(f64::max))
}

/// One write to a shadow entry.
enum EntryWrite {
    /// First rows of a group: `SET shadow "[rows]" PXAT`.
    New { key: String, json: String },
    /// More rows of a group already written: `SETRANGE shadow offset ",rows]"`.
    Extend {
        key: String,
        offset: u64,
        json: String,
    },
}

/// One batch of entry writes, ready to pipeline.
#[derive(Default)]
struct Batch {
    writes: Vec<EntryWrite>,
    /// Index names first seen in this batch (for the shadow index list).
    new_indexes: Vec<String>,
    bytes: usize,
    /// Extends must land after the batch that created their entry.
    has_extends: bool,
}

impl Batch {
    fn len(&self) -> usize {
        self.writes.len()
    }
}

/// State of one warm in progress.
struct Warm<'a> {
    redis: &'a Redis,
    ds: &'a Datasource,
    chunk_bytes: usize,
    job_id: &'a str,
    /// This warm's fencing number: its shadow keys carry it.
    fence: Fence,
    epoch: i64,
    /// Percent of maxmemory the shadow copy must fit below (0 = no check).
    memory_percent: u32,
    /// Every index set written anew ([`WarmOptions::rebuild_indexes`]).
    rebuild_indexes: bool,
    /// The write pipelines note which new entries and indexes the live
    /// generation lacks (it exists, will outlive the warm, and its index
    /// sets will be kept), so the swap need not compare whole sets for them.
    observe_live: bool,
    /// Checked by the writers before each batch.
    lease: Arc<LeaseState>,
    abort: CancellationToken,
    control: watch::Receiver<Control>,
    memory: watch::Receiver<Option<String>>,
    progress: watch::Sender<Progress>,
    snapshot: Progress,
}

/// Distinct components seen, for the meta hash.
#[derive(Default)]
struct Coverage {
    measures: HashSet<String>,
    practices: HashSet<String>,
    providers: HashSet<Option<String>>,
    frequencies: HashSet<String>,
}

impl Warm<'_> {
    fn publish(&self) {
        let _ = self.progress.send(self.snapshot.clone());
    }

    /// Waits while paused (by a person or by memory); errors when cancelled.
    async fn gate(&mut self) -> Result<()> {
        loop {
            if self.abort.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let user = *self.control.borrow() == Control::Pause;
            let mem = self.memory.borrow().clone();
            if !user && mem.is_none() {
                if self.snapshot.phase == Phase::Paused {
                    self.snapshot.phase = Phase::Reading;
                    self.snapshot.pause_reason = None;
                    self.publish();
                }
                return Ok(());
            }
            let reason = mem.unwrap_or_else(|| "paused by an admin".into());
            if self.snapshot.phase != Phase::Paused
                || self.snapshot.pause_reason.as_deref() != Some(&reason)
            {
                self.snapshot.phase = Phase::Paused;
                self.snapshot.pause_reason = Some(reason);
                self.publish();
            }
            tokio::select! {
                _ = self.abort.cancelled() => return Err(Error::Cancelled),
                _ = self.control.changed() => {}
                _ = self.memory.changed() => {}
            }
        }
    }

    async fn body(&mut self, source_url: &str) -> Result<WarmResult> {
        let started = Instant::now();
        let ds = self.ds.id;
        self.publish();
        // Every other registered shadow generation is a leftover (a crashed
        // warm's, or one fenced off: its lease has expired, or we would not
        // hold the lock). Then this warm registers its own.
        shadow::remove(self.redis, ds).await?;
        // The application's warmer's leftovers: its lock was free when this
        // warm took its own.
        let app_shadow = adopt::remove_app_shadow(self.redis, ds).await?;
        if app_shadow > 0 {
            tracing::info!(
                "datasource {ds}: removed {app_shadow} shadow keys the application's warmer left"
            );
        }
        // Taking over a generation cachedeck's last swap did not write: every
        // index set is written anew, and the unknown ones go in the swap.
        let adopting = adopt::adopting(self.redis, ds).await?;
        self.rebuild_indexes |= adopting;
        let mut warnings = eviction_warnings(self.redis).await;
        let now_ms = self.redis.time_ms().await?;
        let expire_at = now_ms + self.ds.ttl_secs * 1000;
        shadow::register(self.redis, ds, self.fence, expire_at).await?;
        self.observe_live = !self.rebuild_indexes && swap::live_is_reliable(self.redis, ds).await?;

        let source = Source::open(source_url, self.ds.statement_timeout()).await?;
        let outcome = async {
            self.memory_preflight(&source, &mut warnings).await?;
            self.stream(&source, expire_at).await
        }
        .await;
        source.close().await;
        let (rows, coverage, written, observed) = outcome?;
        tracing::debug!(
            ds,
            ms = started.elapsed().as_millis() as u64,
            "warm: shadow written"
        );

        self.snapshot.phase = Phase::Swapping;
        self.publish();
        let entries = self.snapshot.entries;
        let warmed_at = chrono::DateTime::from_timestamp_millis(self.redis.time_ms().await?)
            .unwrap_or_default();
        let mut frequencies: Vec<String> = coverage.frequencies.into_iter().collect();
        frequencies.sort();
        let mut meta = Meta {
            schema_version: SCHEMA_VERSION,
            generation: 0,
            job_id: self.job_id.to_string(),
            warmed_at: warmed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            warmed_at_ms: warmed_at.timestamp_millis(),
            expires_at_ms: expire_at,
            rows,
            entries,
            indexes: written.index_count() as u64,
            unique_measures: coverage.measures.len() as u64,
            unique_practices: coverage.practices.len() as u64,
            unique_providers: coverage.providers.iter().filter(|p| p.is_some()).count() as u64,
            frequencies,
            // Estimated by the swap, once the index sets are in place.
            memory_bytes: 0,
            memory_sample_size: 0,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        if self.abort.is_cancelled() {
            return Err(Error::Cancelled);
        }
        // Entries expire at one absolute time; a warm that outlived it has
        // nothing left to swap.
        if self.redis.time_ms().await? > meta.expires_at_ms - 1000 {
            return Err(Error::SwapAborted {
                ds,
                reason: "the warm took longer than the datasource's TTL; raise the TTL".into(),
            });
        }
        // Found before the swap (SCAN), removed inside its MULTI/EXEC.
        let unknown_indexes = if adopting {
            adopt::unknown_index_sets(self.redis, ds, &written).await?
        } else {
            Vec::new()
        };
        let swap_start = Instant::now();
        let (generation, missing) = swap::swap(
            self.redis,
            &swap::SwapInput {
                ds,
                job_id: self.job_id,
                fence: self.fence,
                epoch: self.epoch,
                expire_at,
                rebuild_indexes: self.rebuild_indexes,
                observed: observed.as_ref(),
                written: &written,
                unknown_indexes: &unknown_indexes,
            },
            &mut meta,
        )
        .await?;
        let swap_window = Some((swap_start, Instant::now()));
        tracing::debug!(
            ds,
            ms = started.elapsed().as_millis() as u64,
            "warm: swapped"
        );
        if missing > 0 {
            warnings.push(format!(
                "{missing} shadow keys were deleted during the warm (by eviction or by hand): those entries are invalidated (queries touching them miss) until the next warm"
            ));
        }
        meta.generation = generation;
        self.snapshot.phase = Phase::Done;
        self.publish();
        Ok(WarmResult {
            meta,
            generation,
            warnings,
            swap_window,
        })
    }

    /// Refuses to start when the shadow copy would not fit below the memory
    /// pause threshold; a check that cannot run (INFO denied by an ACL, a
    /// sample query failing) becomes a warning, and the in-warm memory guard
    /// still pauses the job if memory runs short.
    async fn memory_preflight(&self, source: &Source, warnings: &mut Vec<String>) -> Result<()> {
        if self.memory_percent == 0 {
            return Ok(());
        }
        match preflight::check(self.redis, self.ds, source).await {
            Ok(check) => check.enforce(self.ds.id, self.memory_percent),
            Err(e) => {
                warnings.push(format!(
                    "the memory check before the warm could not run: {e}"
                ));
                Ok(())
            }
        }
    }

    /// Reads the source and writes the shadow generation. Returns the row
    /// count, what was covered and the generation written.
    async fn stream(
        &mut self,
        source: &Source,
        expire_at: i64,
    ) -> Result<(u64, Coverage, Written, Option<swap::Observed>)> {
        let ds = self.ds.id;
        source.validate(ds, &self.ds.sql).await?;
        // The estimate runs beside the stream; progress shows a total once it answers.
        let total = Arc::new(AtomicU64::new(u64::MAX));
        let count_task = {
            let source = source.clone();
            let sql = self.ds.sql.clone();
            let total = total.clone();
            tokio::spawn(async move {
                if let Ok(n) = source.estimate(ds, &sql).await {
                    total.store(n.max(0) as u64, Ordering::Relaxed);
                }
            })
        };
        self.snapshot.phase = Phase::Reading;
        self.publish();

        let (batch_tx, batch_rx) = tokio::sync::mpsc::channel::<Batch>(QUEUED);
        let writer = {
            let target = Target {
                redis: self.redis.clone(),
                ds,
                fence: self.fence,
                expire_at,
                observe: self.observe_live,
                lease: self.lease.clone(),
            };
            tokio::spawn(write_batches(target, batch_rx))
        };
        let mut g = Written::new(ds);
        let mut coverage = Coverage::default();
        let mut rows_seen = 0u64;
        let mut last_publish = Instant::now();
        let read_result: Result<()> = async {
            let mut stream = source.rows(ds, &self.ds.sql, self.chunk_bytes).await?;
            while let Some(chunk) = stream.next().await {
                self.gate().await?;
                let chunk: GroupChunk = chunk?;
                rows_seen += chunk.rows;
                self.flush(&mut g, &mut coverage, chunk, &batch_tx).await?;
                self.snapshot.rows_processed = rows_seen;
                let t = total.load(Ordering::Relaxed);
                self.snapshot.rows_total = (t != u64::MAX).then_some(t.max(rows_seen));
                if last_publish.elapsed() >= Duration::from_millis(200) {
                    self.publish();
                    last_publish = Instant::now();
                }
            }
            Ok(())
        }
        .await;
        drop(batch_tx);
        let write_result = writer
            .await
            .map_err(|e| Error::Invalid(format!("the Redis writer stopped: {e}")))?;
        count_task.abort();
        // A writer that failed closes the channel, which the reader sees as
        // a cancel: the writer's error is the one to report.
        let observed = match (read_result, write_result) {
            (Err(Error::Cancelled), Err(w)) => return Err(w),
            (Err(r), _) => return Err(r),
            (Ok(()), w) => w?,
        };
        self.snapshot.rows_processed = rows_seen;
        self.snapshot.rows_total = Some(rows_seen);
        self.snapshot.entries = g.entry_count() as u64;
        self.snapshot.indexes = g.index_count() as u64;
        self.publish();
        Ok((
            rows_seen,
            coverage,
            g,
            self.observe_live.then_some(observed),
        ))
    }

    /// Turns a chunk of grouped rows into entry writes and sends them in batches.
    async fn flush(
        &mut self,
        g: &mut Written,
        cov: &mut Coverage,
        chunk: GroupChunk,
        tx: &tokio::sync::mpsc::Sender<Batch>,
    ) -> Result<()> {
        let ds = self.ds.id;
        let mut batch = Batch::default();
        for (group, mut json) in chunk.groups {
            let key = keys::entry(ds, Gen::Live, &group);
            batch.bytes += json.len();
            match g.entry_len_mut(&key) {
                Some(len) => {
                    // "[rows]" becomes ",rows]" written over the entry's
                    // closing bracket.
                    let offset = *len - 1;
                    *len += json.len() as u64 - 1;
                    json.replace_range(..1, ",");
                    batch.has_extends = true;
                    batch.writes.push(EntryWrite::Extend { key, offset, json });
                }
                None => {
                    g.add_entry(key.clone(), &group, json.len() as u64, |name| {
                        batch.new_indexes.push(name.to_string())
                    });
                    if !cov.measures.contains(&group.measure) {
                        cov.measures.insert(group.measure.clone());
                    }
                    if !cov.practices.contains(&group.practice) {
                        cov.practices.insert(group.practice.clone());
                    }
                    if !cov.providers.contains(&group.provider) {
                        cov.providers.insert(group.provider.clone());
                    }
                    cov.frequencies.insert(group.frequency);
                    batch.writes.push(EntryWrite::New { key, json });
                }
            }
            if batch.len() >= BATCH_ENTRIES || batch.bytes >= BATCH_BYTES {
                tx.send(std::mem::take(&mut batch))
                    .await
                    .map_err(|_| Error::Cancelled)?;
            }
        }
        self.snapshot.entries = g.entry_count() as u64;
        self.snapshot.indexes = g.index_count() as u64;
        if batch.len() > 0 {
            tx.send(batch).await.map_err(|_| Error::Cancelled)?;
        }
        Ok(())
    }
}

/// Where and how a warm's batches are written.
struct Target {
    redis: Redis,
    ds: DsId,
    /// The shadow generation written (names carry it).
    fence: Fence,
    /// The generation's absolute expiry (ms).
    expire_at: i64,
    /// Ask the live sets which new entries and indexes they lack.
    observe: bool,
    /// No batch is sent once the lease may have ended.
    lease: Arc<LeaseState>,
}

/// Drains batches with up to [`WRITERS`] pipelines in flight. With
/// `observe`, returns the entries and indexes the live sets lacked.
async fn write_batches(
    target: Target,
    rx: tokio::sync::mpsc::Receiver<Batch>,
) -> Result<swap::Observed> {
    let target = Arc::new(target);
    let mut rx = rx;
    let mut seen = swap::Observed::default();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut gather = |r: Result<swap::Observed>| -> Result<()> {
        let o = r?;
        seen.added_entries.extend(o.added_entries);
        seen.added_indexes.extend(o.added_indexes);
        Ok(())
    };
    while let Some(b) = rx.recv().await {
        // An extend must not overtake the SET that created its entry.
        if b.has_extends {
            while let Some(r) = in_flight.next().await {
                gather(r)?;
            }
        }
        while in_flight.len() >= WRITERS {
            if let Some(r) = in_flight.next().await {
                gather(r)?;
            }
        }
        let target = target.clone();
        in_flight.push(async move { write_batch(&target, b).await });
    }
    while let Some(r) = in_flight.next().await {
        gather(r)?;
    }
    Ok(seen)
}

/// One pipeline: the batch's shadow entries, the shadow master set and the
/// shadow index list, all with the generation's absolute expiry, and the
/// generation's registration again (cheap, and a generation someone removed
/// while this warm stalled is then found by the next holder). With
/// `observe`, it also asks (SMISMEMBER) which of the batch's new entries and
/// indexes the live sets hold, and returns the others, so the swap need not
/// compare whole sets to find what the new generation adds. Nothing is sent
/// once the lease may have ended.
async fn write_batch(t: &Target, b: Batch) -> Result<swap::Observed> {
    let (ds, fence, expire_at, observe) = (t.ds, t.fence, t.expire_at, t.observe);
    let mut p = redis::Pipeline::with_capacity(b.writes.len() + 6);
    let shadow_master = keys::master_index(ds, Gen::Shadow(fence));
    let shadow_list = keys::index_list(ds, Gen::Shadow(fence));
    let mut created = Vec::new();
    let mut extended = Vec::new();
    for w in &b.writes {
        match w {
            EntryWrite::New { key, json } => {
                let shadow_key = keys::shadow_of_entry(ds, fence, key).unwrap_or_default();
                // Sized up front: the value is copied once, not regrown.
                let mut set = redis::Cmd::with_capacity(5, shadow_key.len() + json.len() + 32);
                set.arg("SET")
                    .arg(shadow_key)
                    .arg(json)
                    .arg("PXAT")
                    .arg(expire_at);
                p.add_command(set).ignore();
                created.push(key.as_str());
            }
            EntryWrite::Extend { key, offset, json } => {
                // Listed and given the expiry again: should the entry have
                // been removed meanwhile (this warm fenced off and its
                // generation cleaned up), SETRANGE recreates it, and it
                // must still be found and expire.
                let shadow_key = keys::shadow_of_entry(ds, fence, key).unwrap_or_default();
                p.cmd("SETRANGE")
                    .arg(&shadow_key)
                    .arg(*offset)
                    .arg(json)
                    .ignore();
                p.cmd("PEXPIREAT").arg(shadow_key).arg(expire_at).ignore();
                extended.push(key.as_str());
            }
        }
    }
    if !created.is_empty() || !extended.is_empty() {
        p.cmd("SADD")
            .arg(&shadow_master)
            .arg(&created)
            .arg(&extended)
            .ignore();
        p.cmd("PEXPIREAT")
            .arg(&shadow_master)
            .arg(expire_at)
            .ignore();
    }
    if !b.new_indexes.is_empty() {
        p.cmd("SADD").arg(&shadow_list).arg(&b.new_indexes).ignore();
        p.cmd("PEXPIREAT").arg(&shadow_list).arg(expire_at).ignore();
    }
    shadow::register_into(&mut p, ds, fence, expire_at);
    let ask_entries = observe && !created.is_empty();
    let ask_indexes = observe && !b.new_indexes.is_empty();
    if ask_entries {
        p.cmd("SMISMEMBER")
            .arg(keys::master_index(ds, Gen::Live))
            .arg(&created);
    }
    if ask_indexes {
        p.cmd("SMISMEMBER")
            .arg(keys::index_list(ds, Gen::Live))
            .arg(&b.new_indexes);
    }
    t.lease.check()?;
    let answers: Vec<Vec<bool>> = t.redis.pipe("writing shadow entries", &p).await?;
    let mut answers = answers.into_iter();
    let mut seen = swap::Observed::default();
    if ask_entries {
        seen.added_entries = lacking(&created, answers.next())
            .map(|k| k.to_string())
            .collect();
    }
    if ask_indexes {
        seen.added_indexes = lacking(b.new_indexes, answers.next()).collect();
    }
    Ok(seen)
}

/// The names SMISMEMBER answered 0 for (`held`, in the same order).
fn lacking<T>(
    names: impl IntoIterator<Item = T>,
    held: Option<Vec<bool>>,
) -> impl Iterator<Item = T> {
    names
        .into_iter()
        .zip(held.unwrap_or_default())
        .filter_map(|(name, held)| (!held).then_some(name))
}

/// Warnings about an eviction policy that could evict index sets or shadow keys.
async fn eviction_warnings(redis: &Redis) -> Vec<String> {
    let policy: Result<Vec<String>> = redis
        .query(
            "CONFIG GET maxmemory-policy",
            redis::cmd("CONFIG").arg("GET").arg("maxmemory-policy"),
        )
        .await;
    match policy {
        Ok(v) if v.len() == 2 && v[1] != "noeviction" => vec![format!(
            "maxmemory-policy is {}: Redis may evict index sets or shadow keys under memory pressure (noeviction keeps the cache consistent)",
            v[1]
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ms: u64) -> LeaseState {
        LeaseState {
            lease: Duration::from_millis(ms),
            started: Instant::now(),
            renewed_ms: AtomicU64::new(0),
            stop: Mutex::new(None),
            abort: CancellationToken::new(),
        }
    }

    #[test]
    fn writers_stop_once_no_renewal_covers_the_lease() {
        let s = lease(40);
        assert!(s.check().is_ok());
        // The guard stalled (a slow INFO, a stopped process): nothing renewed.
        std::thread::sleep(Duration::from_millis(50));
        assert!(matches!(s.check(), Err(Error::LeaseLapsed)));
        assert!(s.abort.is_cancelled(), "the warm is stopped");
        assert!(matches!(
            s.stop.lock().unwrap().as_ref(),
            Some(Stop::LeaseLapsed(_))
        ));
    }

    #[test]
    fn a_renewal_extends_the_lease_from_when_it_was_sent() {
        let s = lease(40);
        std::thread::sleep(Duration::from_millis(30));
        s.renewed_ms
            .store(s.started.elapsed().as_millis() as u64, Ordering::Release);
        std::thread::sleep(Duration::from_millis(20));
        assert!(s.held(), "renewed 20 ms ago with a 40 ms lease");
        // The first reason to stop is the one reported.
        s.stop(Stop::LostLock);
        s.stop(Stop::Invalidated);
        assert!(matches!(
            s.stop.lock().unwrap().as_ref(),
            Some(Stop::LostLock)
        ));
    }
}
