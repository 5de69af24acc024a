//! The shapes of the seed plan's statistics and health responses (camelCase
//! JSON), shared by the CLI, the window and reports.

use serde::Serialize;

use super::observe::usage::ReadUsage;
use crate::keys::DsId;

/// Health label of one datasource (seed scoring): what a card's colour and
/// the stats line show at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Score ≥ 90.
    Excellent,
    /// Score ≥ 75.
    Good,
    /// Score ≥ 50.
    Degraded,
    /// Score ≥ 25.
    Stale,
    /// Score < 25, or not warm at all.
    Cold,
}

/// The score and its parts; a part with no data is `None` and left out, so
/// the window can explain a label ("age 35/40, hit rate 20/40, coverage 20/20").
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthScore {
    /// The label the score maps to.
    pub health: Health,
    /// 0–100, scaled over the parts that have data.
    pub score: f64,
    /// 0–40; bands scale with the datasource's stale-after. `None` when not warm.
    pub age_score: Option<f64>,
    /// 0–40; `None` with no queries yet (or not warm).
    pub hit_rate_score: Option<f64>,
    /// 0–20: measures and practices present. `None` when not warm.
    pub coverage_score: Option<f64>,
}

/// How a figure was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Written by a cachedeck warm (the meta hash of its swap).
    #[default]
    Recorded,
    /// Read from the keys themselves (SCARD, last_warm, a full walk of the
    /// entry names).
    Observed,
    /// Worked out from a sample (memory, coverage beyond the walk's bound, a
    /// warm time from the entries' remaining TTLs).
    Estimated,
}

/// The [`Source`] of each figure of a [`DatasourceCacheMetrics`], so a
/// reader knows which figures a cachedeck warm recorded and which were
/// observed or estimated on a cache another tool wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FigureSources {
    /// `lastWarmed` and `ageMinutes`.
    pub last_warm: Source,
    /// `totalEntries` (always SCARD of the master set: observed).
    pub entries: Source,
    /// `indexCount`.
    pub indexes: Source,
    /// `estimatedMemoryMB`.
    pub memory: Source,
    /// `uniqueMeasures`, `uniquePractices`, `uniqueProviders`, `uniqueFrequencies`.
    pub coverage: Source,
}

impl Default for FigureSources {
    /// A cache cachedeck warmed: the meta hash recorded everything but the
    /// live entry count.
    fn default() -> Self {
        FigureSources {
            last_warm: Source::Recorded,
            entries: Source::Observed,
            indexes: Source::Recorded,
            memory: Source::Recorded,
            coverage: Source::Recorded,
        }
    }
}

/// The seed's `DatasourceCacheMetrics`, plus the score's parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceCacheMetrics {
    /// Registry id: the `N` of the `{ds:N}` keys.
    pub datasource_id: DsId,
    /// Registry name, for cards and reports.
    pub datasource_name: String,
    /// Disabled datasources are not warmed by Warm All or schedules; being
    /// cold is then expected, not an error.
    pub enabled: bool,
    /// A live generation exists: master index non-empty and meta present.
    pub is_warm: bool,
    /// ISO-8601 UTC of the last swap.
    pub last_warmed: Option<String>,
    /// `None` when never warmed.
    pub age_minutes: Option<f64>,
    /// The datasource's stale-after: the age bands and the stale check use it.
    pub stale_after_minutes: f64,
    /// Live entries (SCARD of the master index; the meta count of the last
    /// warm when they agree).
    pub total_entries: u64,
    /// Secondary indexes of the live generation (from meta).
    pub index_count: u64,
    /// Estimated memory of entries and indexes in MB, from the swap's sample.
    #[serde(rename = "estimatedMemoryMB")]
    pub estimated_memory_mb: f64,
    /// Keys sampled for the memory estimate.
    pub memory_sample_size: u64,
    /// Distinct measures cached (coverage).
    pub unique_measures: u64,
    /// Distinct practices cached (coverage).
    pub unique_practices: u64,
    /// Distinct non-NULL providers cached (coverage).
    pub unique_providers: u64,
    /// Frequencies cached, sorted (e.g. Monthly, Quarterly, Weekly).
    pub unique_frequencies: Vec<String>,
    /// `None` with no queries since the last warm.
    pub avg_query_time_ms: Option<f64>,
    /// Percent 0–100, `None` with no queries since the last warm.
    pub cache_hit_rate: Option<f64>,
    /// Queries (hits + misses) since the last warm.
    pub total_queries: u64,
    /// The label of `health_score` (seed field).
    pub health: Health,
    /// The score behind `health`, with its parts.
    pub health_score: HealthScore,
    /// What needs attention, as sentences (the health check's findings that
    /// need no extra reads).
    pub warnings: Vec<String>,
    /// Job id of a warm running now, if any.
    pub warming_job: Option<String>,
    /// The cache was written by another tool (no cachedeck meta hash): its
    /// figures are observed or estimated, see `sources`.
    pub written_elsewhere: bool,
    /// How each figure was obtained.
    pub sources: FigureSources,
    /// How the entries are read, from a sample of their access clocks
    /// (`OBJECT IDLETIME`/`FREQ`): seen even when the application records
    /// no hits or misses. `None` until sampled, or with no entries.
    pub read_usage: Option<ReadUsage>,
}

/// What a card or the stats line says instead of a hit rate when sampled
/// idle times show reads but no reader records hits or misses.
pub const READS_NOT_REPORTED: &str = "reads are not reported — see README";

impl DatasourceCacheMetrics {
    /// Sampled access times say the entries are read, yet no query was
    /// recorded since the warm: the application reads without reporting.
    pub fn reads_unreported(&self) -> bool {
        self.total_queries == 0 && self.read_usage.as_ref().is_some_and(|u| u.read_activity)
    }
}

/// The seed's stats summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSummary {
    /// Registered datasources.
    pub total_datasources: u64,
    /// Datasources with a live generation.
    pub warm_datasources: u64,
    /// Datasources without one (never warmed, expired, invalidated).
    pub cold_datasources: u64,
    /// Live entries over all datasources.
    pub total_cache_entries: u64,
    /// Secondary indexes over all datasources.
    pub total_indexes: u64,
    /// Estimated memory over all datasources in MB.
    #[serde(rename = "totalMemoryMB")]
    pub total_memory_mb: f64,
    /// Percent 0–100 over all datasources' queries since their warms; `None` without queries.
    pub overall_cache_hit_rate: Option<f64>,
}

/// `cachedeck stats`: summary + per-datasource metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    /// Totals for the headline.
    pub summary: StatsSummary,
    /// One entry per registered datasource, by id.
    pub datasources: Vec<DatasourceCacheMetrics>,
}

/// Severity of a health issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, nothing to fix (overall stays "good").
    Info,
    /// Degrades the cache or risks it (overall "degraded").
    Warning,
    /// Readers get wrong or no answers, or a warm cannot run (overall
    /// "critical"; `health --strict` exits 7).
    Error,
}

/// One finding of the health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthIssue {
    /// `None` for Redis-wide findings.
    pub datasource_id: Option<DsId>,
    /// The datasource's name, `None` for Redis-wide findings.
    pub datasource_name: Option<String>,
    /// How bad it is.
    pub severity: Severity,
    /// Stable code, e.g. `stale`, `cold`, `shadow_leftover`, for scripts and alerts.
    pub code: String,
    /// What is wrong, in one sentence.
    pub issue: String,
    /// What to do about it, naming the datasource.
    pub recommendation: String,
}

/// Overall verdict of the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// No findings at all.
    Excellent,
    /// Only info notes.
    Good,
    /// At least one warning.
    Degraded,
    /// At least one error.
    Critical,
}

/// `cachedeck health`: the seed's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// The verdict over all issues.
    pub overall: Overall,
    /// Findings, errors first, Redis-wide before datasources, then by id.
    pub issues: Vec<HealthIssue>,
    /// The distinct recommendations, in the order of the issues.
    pub recommendations: Vec<String>,
}
