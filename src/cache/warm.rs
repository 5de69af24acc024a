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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::meta::{self, Meta};
use super::written::Written;
use super::{SCHEMA_VERSION, lock, preflight, shadow, swap};
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen};
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
    lock::acquire(redis, ds.id, job_id, opts.lease).await?;
    // Background guard: renews the lease, watches the epoch and memory.
    let abort = handles.cancel.child_token();
    let guard_stop = CancellationToken::new();
    let (mem_tx, mem_rx) = watch::channel::<Option<String>>(None);
    let lost = Arc::new(std::sync::Mutex::new(None::<String>));
    let epoch0 = meta::epoch(redis, ds.id).await;
    let guard = epoch0.as_ref().ok().map(|&epoch| {
        tokio::spawn(guard_task(GuardArgs {
            redis: redis.clone(),
            ds: ds.id,
            job_id: job_id.to_string(),
            lease: opts.lease,
            epoch,
            memory_percent: opts.memory_pause_percent,
            abort: abort.clone(),
            stop: guard_stop.clone(),
            memory: mem_tx,
            lost: lost.clone(),
        }))
    });
    let result = match epoch0 {
        Ok(epoch) => {
            let mut w = Warm {
                redis,
                ds,
                chunk_bytes: opts.chunk_bytes.max(4096),
                job_id,
                epoch,
                memory_percent: opts.memory_pause_percent,
                rebuild_indexes: opts.rebuild_indexes,
                observe_live: false,
                abort: abort.clone(),
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
    if let Some(g) = guard {
        let _ = g.await;
    }
    let result = match result {
        Err(Error::Cancelled) if !handles.cancel.is_cancelled() => {
            let why = lost
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_else(|| "the warm was stopped".into());
            Err(Error::SwapAborted {
                ds: ds.id,
                reason: why,
            })
        }
        other => other,
    };
    if result.is_err() {
        // Leave nothing behind: the shadow generation goes, then the lock.
        if let Err(e) = shadow::remove(redis, ds.id).await {
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

struct GuardArgs {
    redis: Redis,
    ds: DsId,
    job_id: String,
    lease: Duration,
    epoch: i64,
    memory_percent: u32,
    abort: CancellationToken,
    stop: CancellationToken,
    memory: watch::Sender<Option<String>>,
    lost: Arc<std::sync::Mutex<Option<String>>>,
}

/// Renews the lease every third of it; aborts the warm when the lock is lost
/// or the datasource is invalidated; pauses it while Redis memory is high.
async fn guard_task(a: GuardArgs) {
    let tick = (a.lease / 3).min(Duration::from_secs(2));
    let mut last_ok = Instant::now();
    let set_lost = |why: String| {
        if let Ok(mut g) = a.lost.lock() {
            *g = Some(why);
        }
        a.abort.cancel();
    };
    loop {
        tokio::select! {
            _ = a.stop.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        match lock::renew(&a.redis, a.ds, &a.job_id, a.lease).await {
            Ok(true) => last_ok = Instant::now(),
            Ok(false) => {
                set_lost("this job lost the warm lock (its lease expired)".into());
                return;
            }
            Err(e) => {
                if last_ok.elapsed() >= a.lease {
                    set_lost(format!("Redis stopped answering: {e}"));
                    return;
                }
                continue;
            }
        }
        if let Ok(e) = meta::epoch(&a.redis, a.ds).await
            && e != a.epoch
        {
            set_lost("the datasource was invalidated while it was being warmed".into());
            return;
        }
        if a.memory_percent > 0
            && let Ok(ratio) = memory_ratio(&a.redis).await
        {
            let limit = f64::from(a.memory_percent) / 100.0;
            let cur = a.memory.borrow().clone();
            let next = match (ratio, &cur) {
                (Some(r), _) if r >= limit => Some(format!(
                    "Redis memory at {:.0}% of maxmemory (pause threshold {}%); resumes when it drops, or cancel",
                    r * 100.0,
                    a.memory_percent
                )),
                (Some(r), Some(_)) if r >= limit - 0.05 => cur.clone(),
                _ => None,
            };
            if next != cur {
                let _ = a.memory.send(next);
            }
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
    epoch: i64,
    /// Percent of maxmemory the shadow copy must fit below (0 = no check).
    memory_percent: u32,
    /// Every index set written anew ([`WarmOptions::rebuild_indexes`]).
    rebuild_indexes: bool,
    /// The write pipelines note which new entries and indexes the live
    /// generation lacks (it exists, will outlive the warm, and its index
    /// sets will be kept), so the swap need not compare whole sets for them.
    observe_live: bool,
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
        // A crashed warm's leftovers go first (its lease has expired, or we
        // would not hold the lock).
        shadow::remove(self.redis, ds).await?;
        let mut warnings = eviction_warnings(self.redis).await;
        let now_ms = self.redis.time_ms().await?;
        let expire_at = now_ms + self.ds.ttl_secs * 1000;
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
        let swap_start = Instant::now();
        let (generation, missing) = swap::swap(
            self.redis,
            &swap::SwapInput {
                ds,
                job_id: self.job_id,
                epoch: self.epoch,
                expire_at,
                rebuild_indexes: self.rebuild_indexes,
                observed: observed.as_ref(),
                written: &written,
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
                "{missing} shadow keys were deleted during the warm (by eviction or by hand) and are missing from the new generation"
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
            let redis = self.redis.clone();
            let observe = self.observe_live;
            tokio::spawn(write_batches(redis, ds, expire_at, observe, batch_rx))
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
        read_result?;
        let observed = write_result?;
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

/// Drains batches with up to [`WRITERS`] pipelines in flight. With
/// `observe`, returns the entries and indexes the live sets lacked.
async fn write_batches(
    redis: Redis,
    ds: DsId,
    expire_at: i64,
    observe: bool,
    rx: tokio::sync::mpsc::Receiver<Batch>,
) -> Result<swap::Observed> {
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
        let redis = redis.clone();
        in_flight.push(async move { write_batch(&redis, ds, expire_at, observe, b).await });
    }
    while let Some(r) = in_flight.next().await {
        gather(r)?;
    }
    Ok(seen)
}

/// One pipeline: the batch's shadow entries, the shadow master set and the
/// shadow index list, all with the generation's absolute expiry. With
/// `observe`, it also asks (SMISMEMBER) which of the batch's new entries and
/// indexes the live sets hold, and returns the others, so the swap need not
/// compare whole sets to find what the new generation adds.
async fn write_batch(
    redis: &Redis,
    ds: DsId,
    expire_at: i64,
    observe: bool,
    b: Batch,
) -> Result<swap::Observed> {
    let mut p = redis::Pipeline::with_capacity(b.writes.len() + 4);
    let shadow_master = keys::master_index(ds, Gen::Shadow);
    let shadow_list = keys::index_list(ds, Gen::Shadow);
    let mut created = Vec::new();
    for w in &b.writes {
        match w {
            EntryWrite::New { key, json } => {
                let shadow_key = keys::shadow_of_entry(ds, key).unwrap_or_default();
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
                let shadow_key = keys::shadow_of_entry(ds, key).unwrap_or_default();
                p.cmd("SETRANGE")
                    .arg(shadow_key)
                    .arg(*offset)
                    .arg(json)
                    .ignore();
            }
        }
    }
    if !created.is_empty() {
        p.cmd("SADD").arg(&shadow_master).arg(&created).ignore();
        p.cmd("PEXPIREAT")
            .arg(&shadow_master)
            .arg(expire_at)
            .ignore();
    }
    if !b.new_indexes.is_empty() {
        p.cmd("SADD").arg(&shadow_list).arg(&b.new_indexes).ignore();
        p.cmd("PEXPIREAT").arg(&shadow_list).arg(expire_at).ignore();
    }
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
    let answers: Vec<Vec<bool>> = redis.pipe("writing shadow entries", &p).await?;
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
