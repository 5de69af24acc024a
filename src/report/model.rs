//! The report's content: the JSON document (schema version 1) that the HTML
//! and CSV writers render. Every figure says in its name or its section which
//! period it comes from:
//!
//! - `now` — read from Redis when the report was built (`generatedAt`);
//! - `sinceLastWarm` — the reader counters since the datasource's last swap;
//! - `range` — summed over the report's range (`range.from` … `range.to`) from
//!   the minute or hour statistics buckets;
//! - `coverage` — as written by the last warm;
//! - `readUsage` — sampled at `generatedAt` from the entries' access clocks
//!   (`OBJECT IDLETIME`/`FREQ`), with its sample size;
//! - Redis counters such as evictions — since the Redis server started.
//!
//! Units follow DESIGN.md's JSON conventions: memory in MB (`…MB`), times in
//! ms (`…Ms`), hit rates in percent 0–100 or `null` without queries,
//! timestamps ISO-8601 UTC (with the same instant in ms since the epoch in a
//! `…Ms` twin where plots need it).
//!
//! Reports hold aggregates only: counts, rates, sizes, times, names of
//! datasources, and measure and frequency names only where reads are ranked
//! (`readUsage`); practices and providers are only counted. No cached row
//! value and no entry key name (which carries practice and provider ids) is
//! ever copied in.

use serde::Serialize;

use crate::keys::DsId;
use crate::metrics::{Health, HealthScore, Overall, Severity};
use crate::redis_conn::Topology;

/// Version of this document's shape. Raised on any incompatible change, so
/// scripts that read `report.json` can refuse what they do not understand.
pub const SCHEMA_VERSION: u32 = 1;

/// Width of the statistics buckets a report reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketSize {
    /// One-minute buckets (ranges of at most 2 days within the last 2 days).
    Minute,
    /// One-hour buckets (everything else, up to 90 days).
    Hour,
}

impl BucketSize {
    /// `minute` / `hour`, as in the JSON and the CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketSize::Minute => "minute",
            BucketSize::Hour => "hour",
        }
    }
}

/// The whole report (`cachedeck report --format json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] (1): lets readers check the shape.
    pub schema_version: u32,
    /// When the report was built (Redis server time, ISO-8601 UTC): the
    /// moment every `now` figure describes.
    pub generated_at: String,
    /// The same instant in ms since the epoch.
    pub generated_at_ms: i64,
    /// The period the `range` figures cover.
    pub range: RangeInfo,
    /// The datasource ids asked for; `null` when the report covers every
    /// registered datasource.
    pub datasource_filter: Option<Vec<DsId>>,
    /// Headline figures over the datasources in the report.
    pub summary: Summary,
    /// One section per datasource, by id.
    pub datasources: Vec<DatasourceReport>,
    /// Redis-level context: memory against maxmemory, evictions, fragmentation.
    pub redis: RedisSection,
    /// Remarks about how the report was made (e.g. the end of the range was
    /// moved to now), so no figure is read out of context.
    pub notes: Vec<String>,
}

/// The period of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeInfo {
    /// As requested: `24h`, `7d`, `30d` or `FROM..TO`.
    pub label: String,
    /// First millisecond covered (inclusive), ms since the epoch.
    pub from_ms: i64,
    /// Last millisecond covered (inclusive), ms since the epoch.
    pub to_ms: i64,
    /// `fromMs` as ISO-8601 UTC.
    pub from: String,
    /// `toMs` as ISO-8601 UTC.
    pub to: String,
    /// Bucket size of the query statistics: `minute` or `hour`.
    pub bucket: BucketSize,
    /// The bucket's width in ms (60000 or 3600000).
    pub bucket_ms: i64,
}

/// Headline figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The cache as it is at `generatedAt`.
    pub now: SummaryNow,
    /// Queries and warms over the report's range.
    pub range: SummaryRange,
    /// The health check's verdict over these datasources and Redis itself.
    pub overall_health: Overall,
}

/// Cache size and state at `generatedAt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryNow {
    /// Datasources in the report.
    pub datasources: u64,
    /// Of those, with a live generation.
    pub warm_datasources: u64,
    /// Of those, without one (never warmed, expired, invalidated).
    pub cold_datasources: u64,
    /// Live entries (SCARD of each master index), summed.
    pub total_cache_entries: u64,
    /// Secondary indexes of the live generations, summed.
    pub total_indexes: u64,
    /// Estimated memory of entries and indexes in MB (from each last warm's sample).
    #[serde(rename = "totalMemoryMB")]
    pub total_memory_mb: f64,
}

/// Queries and warms over the range, all datasources of the report together.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRange {
    /// Queries the cache answered.
    pub hits: u64,
    /// Queries it could not answer.
    pub misses: u64,
    /// hits + misses.
    pub queries: u64,
    /// Percent 0–100; `null` without queries.
    pub hit_rate: Option<f64>,
    /// Average query time in ms; `null` without queries.
    pub avg_query_ms: Option<f64>,
    /// Warm jobs queued in the range.
    pub warms: u64,
    /// Of those, succeeded.
    pub warms_succeeded: u64,
    /// Of those, failed (refusals because a warm was already running aside).
    pub warms_failed: u64,
}

/// One datasource's section.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceReport {
    /// Registry id (the `N` of `{ds:N}`).
    pub datasource_id: DsId,
    /// Registry name (may contain any text; the HTML escapes it).
    pub datasource_name: String,
    /// Disabled datasources are not warmed by Warm All or schedules.
    pub enabled: bool,
    /// State, size and health score at `generatedAt`.
    pub now: DatasourceNow,
    /// Reader counters since the last swap (what the score's hit-rate part uses).
    pub since_last_warm: SinceLastWarm,
    /// Queries over the report's range.
    pub range: RangeFigures,
    /// What the last warm cached (distinct values counted, never listed).
    pub coverage: Coverage,
    /// One point per statistics bucket of the range, oldest first, empty
    /// buckets included (queries 0, rates `null`).
    pub trend: Vec<TrendRow>,
    /// Memory and entry samples in the range (written at every swap and by
    /// the periodic sampler), oldest first.
    pub memory: Vec<MemoryRow>,
    /// Warm jobs queued in the range.
    pub warms: WarmHistory,
    /// Index integrity as the health check found it.
    pub integrity: Integrity,
    /// How the entries are read, sampled at `generatedAt`; `null` when not
    /// warm or not sampled.
    pub read_usage: Option<ReadUsageSection>,
    /// The health check's findings about this datasource (at `generatedAt`).
    pub issues: Vec<ReportIssue>,
    /// What to do about them, distinct, in the order of the issues.
    pub recommendations: Vec<String>,
}

/// How a datasource's entries are read, from a sample of their access
/// clocks at `generatedAt` (works when the application reports nothing).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadUsageSection {
    /// Always true: every figure here is sampled.
    pub sampled: bool,
    /// Entries measured.
    pub sample_size: u64,
    /// Live entries the sample is scaled to.
    pub total_entries: u64,
    /// `idleTime` (OBJECT IDLETIME) or `lfuFrequency` (OBJECT FREQ).
    pub clock: crate::metrics::UsageClock,
    /// Percent of entries read within the last hour (`null` under LFU).
    pub read_last_hour: Option<f64>,
    /// Percent of entries read within the last day (`null` under LFU).
    pub read_last_day: Option<f64>,
    /// Percent of entries not read for a day (LFU: counter 0).
    pub cold_share: f64,
    /// Memory of the entries, scaled from the sample, MB.
    #[serde(rename = "entriesMemoryMB")]
    pub entries_memory_mb: f64,
    /// Memory of the entries not read for a day, scaled, MB.
    #[serde(rename = "coldMemoryMB")]
    pub cold_memory_mb: f64,
    /// Most read measures first (names).
    pub hottest_measures: Vec<String>,
    /// Least read measures first (names).
    pub coldest_measures: Vec<String>,
    /// Most read frequencies first.
    pub hottest_frequencies: Vec<String>,
    /// Least read frequencies first.
    pub coldest_frequencies: Vec<String>,
    /// The cost–benefit sentence ("38 % of this datasource's 420 MB …").
    pub summary: String,
    /// What limits the figures.
    pub notes: Vec<String>,
}

/// A datasource at `generatedAt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceNow {
    /// A live generation exists.
    pub is_warm: bool,
    /// When the last swap happened (ISO-8601 UTC); `null` if never.
    pub last_warmed: Option<String>,
    /// Minutes since the last swap; `null` if never warmed.
    pub age_minutes: Option<f64>,
    /// The datasource's stale-after in minutes (the age bands scale with it).
    pub stale_after_minutes: f64,
    /// Live entries (SCARD of the master index).
    pub total_entries: u64,
    /// Secondary indexes of the live generation.
    pub index_count: u64,
    /// Estimated memory of entries and indexes in MB, sampled at the last warm.
    #[serde(rename = "estimatedMemoryMB")]
    pub estimated_memory_mb: f64,
    /// Keys sampled for that estimate.
    pub memory_sample_size: u64,
    /// The health label.
    pub health: Health,
    /// The score (0–100) with its parts: age 0–40, hit rate 0–40 (from the
    /// queries since the last warm), coverage 0–20; a part without data is `null`.
    pub score: HealthScore,
    /// Job id of a warm running at `generatedAt`, if any.
    pub warming_job: Option<String>,
}

/// Reader counters since the last swap.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinceLastWarm {
    /// Start of the period: the last swap (ISO-8601 UTC); `null` if never warmed.
    pub since: Option<String>,
    /// Queries since then.
    pub queries: u64,
    /// Percent 0–100; `null` without queries.
    pub hit_rate: Option<f64>,
    /// Average query time in ms; `null` without queries.
    pub avg_query_ms: Option<f64>,
}

/// Queries of one datasource over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeFigures {
    /// Queries the cache answered.
    pub hits: u64,
    /// Queries it could not answer.
    pub misses: u64,
    /// hits + misses.
    pub queries: u64,
    /// Percent 0–100; `null` without queries.
    pub hit_rate: Option<f64>,
    /// Average query time in ms; `null` without queries.
    pub avg_query_ms: Option<f64>,
    /// Buckets with at least one query.
    pub active_buckets: u64,
    /// The bucket with the most queries; `null` without queries.
    pub busiest_bucket: Option<BusiestBucket>,
}

/// The busiest statistics bucket of a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BusiestBucket {
    /// Start of the bucket (ISO-8601 UTC).
    pub time: String,
    /// Queries in it.
    pub queries: u64,
}

/// What the last warm cached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// When it was cached: the last swap (ISO-8601 UTC); `null` if not warm.
    pub as_of: Option<String>,
    /// Distinct measures.
    pub measures: u64,
    /// Distinct practices.
    pub practices: u64,
    /// Distinct non-NULL providers.
    pub providers: u64,
    /// The frequencies, sorted (e.g. Monthly, Quarterly, Weekly).
    pub frequencies: Vec<String>,
}

/// Reader statistics of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrendRow {
    /// Start of the bucket (ISO-8601 UTC).
    pub time: String,
    /// The same in ms since the epoch (plot x axis).
    pub time_ms: i64,
    /// Queries answered in the bucket.
    pub hits: u64,
    /// Queries not answered in the bucket.
    pub misses: u64,
    /// hits + misses: the query volume.
    pub queries: u64,
    /// Percent 0–100; `null` in a bucket without queries (a gap, not 0 %).
    pub hit_rate: Option<f64>,
    /// Average query time in ms; `null` without queries.
    pub avg_query_ms: Option<f64>,
}

/// One memory / entries sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRow {
    /// When it was taken (ISO-8601 UTC, Redis time).
    pub time: String,
    /// The same in ms since the epoch.
    pub time_ms: i64,
    /// Estimated memory of entries and indexes in MB.
    #[serde(rename = "memoryMB")]
    pub memory_mb: f64,
    /// Live entries then.
    pub entries: u64,
}

/// Warm jobs of one datasource queued in the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmHistory {
    /// Jobs queued in the range (every state).
    pub count: u64,
    /// Succeeded (a new generation was swapped in).
    pub succeeded: u64,
    /// Failed (refusals because another warm held the lock aside).
    pub failed: u64,
    /// Cancelled by an admin or a shutdown.
    pub cancelled: u64,
    /// Skipped because the cache had been warmed recently.
    pub skipped: u64,
    /// Refused because another warm of the datasource was running.
    pub busy: u64,
    /// Not ended when the report was built (queued, running, paused, swapping).
    pub unfinished: u64,
    /// succeeded / (succeeded + failed + cancelled) in percent; `null` when
    /// no warm ran to an end.
    pub success_rate: Option<f64>,
    /// Shortest duration of a succeeded warm in ms.
    pub min_duration_ms: Option<i64>,
    /// Average duration of the succeeded warms in ms.
    pub avg_duration_ms: Option<f64>,
    /// Longest duration of a succeeded warm in ms.
    pub max_duration_ms: Option<i64>,
    /// The latest failed warm of the range, if any.
    pub last_failure: Option<WarmFailure>,
    /// Every job, oldest first.
    pub events: Vec<WarmRow>,
}

/// The latest failed warm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmFailure {
    /// The job, to look it up in `cachedeck status` or the audit log.
    pub job_id: String,
    /// When it ended (or started, or was queued), ISO-8601 UTC.
    pub at: String,
    /// Why it failed (shortened to 300 characters).
    pub error: String,
}

/// One warm job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarmRow {
    /// The job id.
    pub job_id: String,
    /// queued, running, paused, swapping, succeeded, failed, cancelled, skipped.
    pub state: String,
    /// When it was queued (ISO-8601 UTC).
    pub queued_at: String,
    /// When it started, if it did.
    pub started_at: Option<String>,
    /// When it ended, if it did.
    pub completed_at: Option<String>,
    /// How long it ran in ms.
    pub duration_ms: Option<i64>,
    /// Source rows read.
    pub rows_processed: i64,
    /// Entries written.
    pub entries_cached: i64,
    /// True for succeeded and skipped.
    pub success: bool,
    /// Why it failed (shortened to 300 characters).
    pub error: Option<String>,
    /// Admin identity that started it.
    pub actor: String,
}

/// Outcome of the index integrity check of a datasource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum IntegrityStatus {
    /// The sample found nothing wrong.
    Ok,
    /// Entries or index memberships are missing, or entries lack an expiry.
    Broken,
    /// Not checked: the datasource is not warm.
    NotChecked,
}

/// Index integrity of the live generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Integrity {
    /// `sampled`: the health check's random sample (up to 200 entries and 50
    /// indexes with 50 members each per datasource), not a full walk, so a
    /// report stays fast on millions of keys (`metrics::verify` walks all).
    pub method: String,
    /// What the sample found.
    pub status: IntegrityStatus,
    /// The findings as sentences (counts only; example key names left out).
    pub findings: Vec<String>,
}

/// One finding of the health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportIssue {
    /// info, warning or error.
    pub severity: Severity,
    /// Stable code (`stale`, `cold`, `low_hit_rate`, `index_integrity`, …).
    pub code: String,
    /// What is wrong, in one sentence.
    pub issue: String,
    /// What to do about it.
    pub recommendation: String,
}

/// Redis-level context.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisSection {
    /// Standalone or cluster.
    pub topology: Topology,
    /// When INFO was read (ISO-8601 UTC); `null` when it could not be.
    pub collected_at: Option<String>,
    /// Why INFO could not be read (a managed service or an ACL without
    /// INFO); `null` when it was.
    pub unavailable: Option<String>,
    /// One row per master.
    pub nodes: Vec<RedisNode>,
    /// Sums over the masters; `null` when INFO could not be read.
    pub total: Option<RedisNode>,
    /// The health check's Redis-wide findings (memory, maxmemory, eviction policy).
    pub issues: Vec<ReportIssue>,
    /// What to do about them.
    pub recommendations: Vec<String>,
}

/// Memory and eviction figures of one master (or their total), at `collectedAt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisNode {
    /// `host:port`, or `total`.
    pub node: String,
    /// Server version; `null` for the total.
    pub redis_version: Option<String>,
    /// Seconds since the server started (the `…SinceStart` counters restart
    /// then); `null` for the total.
    pub uptime_seconds: Option<u64>,
    /// Memory Redis allocated (used_memory) in MB.
    #[serde(rename = "usedMemoryMB")]
    pub used_memory_mb: f64,
    /// The maxmemory limit in MB; `null` when unlimited.
    #[serde(rename = "maxMemoryMB")]
    pub max_memory_mb: Option<f64>,
    /// used / maxmemory in percent; `null` when unlimited.
    pub used_memory_percent: Option<f64>,
    /// Highest memory ever allocated (used_memory_peak) in MB.
    #[serde(rename = "peakMemoryMB")]
    pub peak_memory_mb: f64,
    /// RSS / used memory: well above 1.5 means memory lost to fragmentation.
    pub fragmentation_ratio: Option<f64>,
    /// Keys evicted to stay under maxmemory since the server started.
    pub evicted_keys_since_start: u64,
    /// Keys expired since the server started.
    pub expired_keys_since_start: u64,
    /// Keys in every database.
    pub keys: u64,
    /// What Redis does at maxmemory (`noeviction` keeps indexes whole).
    pub maxmemory_policy: Option<String>,
}
