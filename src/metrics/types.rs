//! The shapes of the seed plan's statistics and health responses (camelCase
//! JSON), shared by the CLI, the window and reports.

use serde::Serialize;

use crate::keys::DsId;

/// Health label of one datasource (seed scoring).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Excellent,
    Good,
    Degraded,
    Stale,
    Cold,
}

/// The score and its parts; a part with no data is `None` and left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthScore {
    pub health: Health,
    /// 0–100, scaled over the parts that have data.
    pub score: f64,
    /// 0–40.
    pub age_score: Option<f64>,
    /// 0–40; `None` with no queries yet.
    pub hit_rate_score: Option<f64>,
    /// 0–20.
    pub coverage_score: Option<f64>,
}

/// The seed's `DatasourceCacheMetrics`, plus the score's parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceCacheMetrics {
    pub datasource_id: DsId,
    pub datasource_name: String,
    pub enabled: bool,
    pub is_warm: bool,
    /// ISO-8601 UTC of the last swap.
    pub last_warmed: Option<String>,
    /// `None` when never warmed.
    pub age_minutes: Option<f64>,
    pub stale_after_minutes: f64,
    pub total_entries: u64,
    pub index_count: u64,
    #[serde(rename = "estimatedMemoryMB")]
    pub estimated_memory_mb: f64,
    /// Keys sampled for the memory estimate.
    pub memory_sample_size: u64,
    pub unique_measures: u64,
    pub unique_practices: u64,
    pub unique_providers: u64,
    pub unique_frequencies: Vec<String>,
    /// `None` with no queries since the last warm.
    pub avg_query_time_ms: Option<f64>,
    /// Percent 0–100, `None` with no queries since the last warm.
    pub cache_hit_rate: Option<f64>,
    pub total_queries: u64,
    pub health: Health,
    pub health_score: HealthScore,
    pub warnings: Vec<String>,
    /// Job id of a warm running now, if any.
    pub warming_job: Option<String>,
}

/// The seed's stats summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSummary {
    pub total_datasources: u64,
    pub warm_datasources: u64,
    pub cold_datasources: u64,
    pub total_cache_entries: u64,
    pub total_indexes: u64,
    #[serde(rename = "totalMemoryMB")]
    pub total_memory_mb: f64,
    /// Percent 0–100 over all datasources' queries since their warms; `None` without queries.
    pub overall_cache_hit_rate: Option<f64>,
}

/// `cachedeck stats`: summary + per-datasource metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub summary: StatsSummary,
    pub datasources: Vec<DatasourceCacheMetrics>,
}

/// Severity of a health issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One finding of the health check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthIssue {
    /// `None` for Redis-wide findings.
    pub datasource_id: Option<DsId>,
    pub datasource_name: Option<String>,
    pub severity: Severity,
    /// Stable code, e.g. `stale`, `cold`, `shadow_leftover`.
    pub code: String,
    pub issue: String,
    pub recommendation: String,
}

/// Overall verdict of the health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    Excellent,
    Good,
    Degraded,
    Critical,
}

/// `cachedeck health`: the seed's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub overall: Overall,
    pub issues: Vec<HealthIssue>,
    pub recommendations: Vec<String>,
}
