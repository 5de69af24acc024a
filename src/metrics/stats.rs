//! `cachedeck stats` (the seed's `GET …/cache/stats`): every datasource's
//! cache metrics from the meta hash the swap wrote, one SCARD, the reader
//! counters since the warm and the warm lock; one pipeline per datasource.

use super::collect::{self, DsSnapshot};
use super::health;
use super::observe::{Observations, Observed};
use super::score::{self, ScoreInput};
use super::types::{
    DatasourceCacheMetrics, FigureSources, Severity, Source, StatsReport, StatsSummary,
};
use crate::cache::stats::Counters;
use crate::error::Result;
use crate::redis_conn::Redis;
use crate::store::Store;

/// Bytes in the seed's "MB".
const MB: f64 = 1024.0 * 1024.0;

/// Two decimals; never `-0` (an empty sum of floats is -0.0, which would
/// print as "-0.00 MB").
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0 + 0.0
}

/// ISO-8601 UTC with milliseconds, as cachedeck writes times.
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The metrics of a cache another tool wrote, from its observation.
fn observed_metrics(s: &DsSnapshot, o: &Observed, now_ms: i64) -> DatasourceCacheMetrics {
    let cov = &o.coverage;
    let age = s.age_minutes(now_ms);
    let health_score = score::score(&ScoreInput {
        is_warm: s.is_warm(),
        age_minutes: age,
        stale_after_minutes: s.stale_after_minutes(),
        hit_rate: s.counters.hit_rate(),
        unique_measures: cov.measures,
        unique_practices: cov.practices,
    });
    let mut m = cachedeck_metrics(s, now_ms);
    m.last_warmed = o.warmed_at_ms.map(iso);
    m.index_count = cov.index_count;
    m.estimated_memory_mb = round2(o.memory_bytes() as f64 / MB);
    m.memory_sample_size = o.sample.measured;
    m.unique_measures = cov.measures;
    m.unique_practices = cov.practices;
    m.unique_providers = cov.providers;
    m.unique_frequencies = cov.frequencies.clone();
    m.health = health_score.health;
    m.health_score = health_score;
    m.written_elsewhere = true;
    m.sources = FigureSources {
        last_warm: o.last_warm_source,
        entries: Source::Observed,
        indexes: cov.source,
        memory: Source::Estimated,
        coverage: cov.source,
    };
    m
}

/// The metrics of one datasource from its snapshot, at server time `now_ms`.
pub(crate) fn metrics_of(s: &DsSnapshot, now_ms: i64) -> DatasourceCacheMetrics {
    match &s.observed {
        Some(o) => observed_metrics(s, o, now_ms),
        None => cachedeck_metrics(s, now_ms),
    }
}

/// The metrics of a cache cachedeck warmed (or of a cold one).
fn cachedeck_metrics(s: &DsSnapshot, now_ms: i64) -> DatasourceCacheMetrics {
    let is_warm = s.is_warm();
    let warm_meta = s.meta.as_ref().filter(|_| is_warm);
    let age = s.age_minutes(now_ms);
    let c = &s.counters;
    let hit_rate = c.hit_rate();
    let health_score = score::score(&ScoreInput {
        is_warm,
        age_minutes: age,
        stale_after_minutes: s.stale_after_minutes(),
        hit_rate,
        unique_measures: warm_meta.map_or(0, |m| m.unique_measures),
        unique_practices: warm_meta.map_or(0, |m| m.unique_practices),
    });
    let warnings = health::snapshot_findings(s, now_ms)
        .into_iter()
        .filter(|i| i.severity >= Severity::Warning)
        .map(|i| i.issue)
        .collect();
    DatasourceCacheMetrics {
        datasource_id: s.ds.id,
        datasource_name: s.ds.name.clone(),
        enabled: s.ds.enabled,
        is_warm,
        last_warmed: s
            .meta
            .as_ref()
            .map(|m| m.warmed_at.clone())
            .filter(|t| !t.is_empty()),
        age_minutes: age.map(round2),
        stale_after_minutes: round2(s.stale_after_minutes()),
        // SCARD is the truth; the meta count only describes the last warm.
        total_entries: s.live_entries,
        index_count: warm_meta.map_or(0, |m| m.indexes),
        estimated_memory_mb: warm_meta.map_or(0.0, |m| round2(m.memory_bytes as f64 / MB)),
        memory_sample_size: warm_meta.map_or(0, |m| m.memory_sample_size),
        unique_measures: warm_meta.map_or(0, |m| m.unique_measures),
        unique_practices: warm_meta.map_or(0, |m| m.unique_practices),
        unique_providers: warm_meta.map_or(0, |m| m.unique_providers),
        unique_frequencies: warm_meta.map(|m| m.frequencies.clone()).unwrap_or_default(),
        avg_query_time_ms: c.avg_query_ms(),
        cache_hit_rate: hit_rate,
        total_queries: c.queries(),
        health: health_score.health,
        health_score,
        warnings,
        warming_job: s.lock_holder.clone(),
        written_elsewhere: false,
        sources: FigureSources::default(),
        read_usage: s.usage.as_deref().cloned(),
    }
}

/// The seed's summary over the datasources' metrics and counters.
pub(crate) fn summary(metrics: &[DatasourceCacheMetrics], snaps: &[DsSnapshot]) -> StatsSummary {
    let mut all = Counters::default();
    for s in snaps {
        all.add(&s.counters);
    }
    StatsSummary::over(metrics, all.hit_rate())
}

impl StatsSummary {
    /// Totals over the datasources' metrics. The hit rate over all their
    /// queries is the caller's: the metrics carry per-datasource rates only,
    /// which do not average into it.
    pub fn over(metrics: &[DatasourceCacheMetrics], overall_cache_hit_rate: Option<f64>) -> Self {
        let warm = metrics.iter().filter(|m| m.is_warm).count() as u64;
        StatsSummary {
            total_datasources: metrics.len() as u64,
            warm_datasources: warm,
            cold_datasources: metrics.len() as u64 - warm,
            total_cache_entries: metrics.iter().map(|m| m.total_entries).sum(),
            total_indexes: metrics.iter().map(|m| m.index_count).sum(),
            total_memory_mb: round2(metrics.iter().map(|m| m.estimated_memory_mb).sum()),
            overall_cache_hit_rate,
        }
    }
}

/// Metrics of every registered datasource and their summary; caches written
/// by another tool are observed inline (bounded, see [`Observations::inline`]).
pub async fn stats(redis: &Redis, store: &Store) -> Result<StatsReport> {
    stats_with(redis, store, &Observations::inline()).await
}

/// [`stats`] with the caller's observation cache (the window's backend keeps
/// one that refreshes in the background).
pub async fn stats_with(redis: &Redis, store: &Store, obs: &Observations) -> Result<StatsReport> {
    let (datasources, now) = collect::registry_and_time(redis, store).await?;
    let snaps = collect::snapshots(redis, datasources, None, Some(obs), now).await?;
    let datasources: Vec<DatasourceCacheMetrics> =
        snaps.iter().map(|s| metrics_of(s, now)).collect();
    Ok(StatsReport {
        summary: summary(&datasources, &snaps),
        datasources,
    })
}

#[cfg(test)]
mod tests {
    /// A memory total over no datasources prints 0.00, not -0.00.
    #[test]
    fn an_empty_total_is_plus_zero() {
        let empty: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(format!("{:.2}", super::round2(empty)), "0.00");
    }
}
