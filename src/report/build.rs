//! Gathering a report: stats (the cache now), the health check (findings,
//! sampled integrity, recommendations), trends over the range (query buckets,
//! memory samples, warm history) and Redis INFO, reduced to aggregates.

use futures::StreamExt;

use super::model::*;
use super::range::iso;
use super::{ReportRequest, round};
use crate::error::{Error, Result};
use crate::keys::DsId;
use crate::metrics::{self, DatasourceCacheMetrics, HealthIssue, Trends, WarmEvent};
use crate::redis_admin::{self, info::ServerStats};
use crate::redis_conn::Redis;
use crate::store::Store;

/// Longest error text copied into a report (errors are operational text,
/// but a long driver message helps nobody in a table).
const MAX_ERROR_CHARS: usize = 300;

/// Datasources whose trends are read at once (each is a few pipelines).
const TRENDS_IN_FLIGHT: usize = 4;

/// Health-check codes that describe index integrity.
const INTEGRITY_CODES: [&str; 3] = ["index_integrity", "no_ttl", "entries_mismatch"];

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(MAX_ERROR_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The health check's finding without anything that names a cache entry:
/// the integrity check quotes an example key (practice and provider ids),
/// which a report must not carry.
fn report_issue(i: &HealthIssue) -> ReportIssue {
    let mut issue = i.issue.clone();
    if i.code == "index_integrity"
        && let Some(pos) = issue.find(" (e.g. ")
    {
        issue.truncate(pos);
    }
    ReportIssue {
        severity: i.severity,
        code: i.code.clone(),
        issue,
        recommendation: i.recommendation.clone(),
    }
}

fn distinct_recommendations(issues: &[ReportIssue]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in issues {
        if !out.contains(&i.recommendation) {
            out.push(i.recommendation.clone());
        }
    }
    out
}

fn is_busy(w: &WarmEvent) -> bool {
    w.state == "failed" && w.error.as_deref().is_some_and(crate::error::is_busy_text)
}

fn warm_history(warms: &[WarmEvent]) -> WarmHistory {
    let count = |state: &str| warms.iter().filter(|w| w.state == state).count() as u64;
    let busy = warms.iter().filter(|w| is_busy(w)).count() as u64;
    let succeeded = count("succeeded");
    let failed = count("failed") - busy;
    let cancelled = count("cancelled");
    let skipped = count("skipped");
    let ended = succeeded + failed + cancelled;
    let durations: Vec<i64> = warms
        .iter()
        .filter(|w| w.state == "succeeded")
        .filter_map(|w| w.duration_ms)
        .collect();
    let last_failure = warms
        .iter()
        .rev()
        .find(|w| w.state == "failed" && !is_busy(w))
        .map(|w| WarmFailure {
            job_id: w.job_id.clone(),
            at: iso(w
                .completed_at_ms
                .or(w.started_at_ms)
                .unwrap_or(w.queued_at_ms)),
            error: shorten(&crate::redact::redact(
                w.error.as_deref().unwrap_or("no error recorded"),
            )),
        });
    WarmHistory {
        count: warms.len() as u64,
        succeeded,
        failed,
        cancelled,
        skipped,
        busy,
        unfinished: warms.len() as u64 - succeeded - failed - busy - cancelled - skipped,
        success_rate: (ended > 0).then(|| round(succeeded as f64 * 100.0 / ended as f64, 2)),
        min_duration_ms: durations.iter().copied().min(),
        avg_duration_ms: (!durations.is_empty()).then(|| {
            round(
                durations.iter().sum::<i64>() as f64 / durations.len() as f64,
                1,
            )
        }),
        max_duration_ms: durations.iter().copied().max(),
        last_failure,
        events: warms
            .iter()
            .map(|w| WarmRow {
                job_id: w.job_id.clone(),
                state: w.state.clone(),
                queued_at: iso(w.queued_at_ms),
                started_at: w.started_at_ms.map(iso),
                completed_at: w.completed_at_ms.map(iso),
                duration_ms: w.duration_ms,
                rows_processed: w.rows_processed,
                entries_cached: w.entries_cached,
                success: w.success,
                error: w.error.as_deref().map(shorten),
                actor: w.actor.clone(),
            })
            .collect(),
    }
}

fn range_figures(t: &Trends) -> RangeFigures {
    let busiest = t
        .points
        .iter()
        .filter(|p| p.queries > 0)
        .max_by_key(|p| (p.queries, std::cmp::Reverse(p.time_ms)));
    RangeFigures {
        hits: t.totals.hits,
        misses: t.totals.misses,
        queries: t.totals.queries,
        hit_rate: t.totals.hit_rate.map(|v| round(v, 2)),
        avg_query_ms: t.totals.avg_query_ms.map(|v| round(v, 3)),
        active_buckets: t.points.iter().filter(|p| p.queries > 0).count() as u64,
        busiest_bucket: busiest.map(|p| BusiestBucket {
            time: iso(p.time_ms),
            queries: p.queries,
        }),
    }
}

fn datasource_report(
    m: &DatasourceCacheMetrics,
    t: &Trends,
    issues: Vec<ReportIssue>,
) -> DatasourceReport {
    let last_warmed = m.last_warmed.clone().filter(|_| m.is_warm);
    let findings: Vec<String> = issues
        .iter()
        .filter(|i| INTEGRITY_CODES.contains(&i.code.as_str()))
        .map(|i| i.issue.clone())
        .collect();
    let status = if !m.is_warm {
        IntegrityStatus::NotChecked
    } else if findings.is_empty() {
        IntegrityStatus::Ok
    } else {
        IntegrityStatus::Broken
    };
    DatasourceReport {
        read_usage: m
            .read_usage
            .as_ref()
            .filter(|_| m.is_warm)
            .map(read_usage_section),
        datasource_id: m.datasource_id,
        datasource_name: m.datasource_name.clone(),
        enabled: m.enabled,
        now: DatasourceNow {
            is_warm: m.is_warm,
            last_warmed: m.last_warmed.clone(),
            age_minutes: m.age_minutes,
            stale_after_minutes: m.stale_after_minutes,
            total_entries: m.total_entries,
            index_count: m.index_count,
            estimated_memory_mb: m.estimated_memory_mb,
            memory_sample_size: m.memory_sample_size,
            health: m.health,
            score: m.health_score.clone(),
            warming_job: m.warming_job.clone(),
        },
        since_last_warm: SinceLastWarm {
            since: m.last_warmed.clone(),
            queries: m.total_queries,
            hit_rate: m.cache_hit_rate.map(|v| round(v, 2)),
            avg_query_ms: m.avg_query_time_ms.map(|v| round(v, 3)),
        },
        range: range_figures(t),
        coverage: Coverage {
            as_of: last_warmed,
            measures: m.unique_measures,
            practices: m.unique_practices,
            providers: m.unique_providers,
            frequencies: m.unique_frequencies.clone(),
        },
        trend: t
            .points
            .iter()
            .map(|p| TrendRow {
                time: iso(p.time_ms),
                time_ms: p.time_ms,
                hits: p.hits,
                misses: p.misses,
                queries: p.queries,
                hit_rate: p.hit_rate.map(|v| round(v, 2)),
                avg_query_ms: p.avg_query_ms.map(|v| round(v, 3)),
            })
            .collect(),
        memory: t
            .memory
            .iter()
            .map(|s| MemoryRow {
                time: iso(s.time_ms),
                time_ms: s.time_ms,
                memory_mb: s.memory_mb,
                entries: s.entries,
            })
            .collect(),
        warms: warm_history(&t.warms),
        integrity: Integrity {
            method: "sampled".into(),
            status,
            findings,
        },
        recommendations: distinct_recommendations(&issues),
        issues,
    }
}

fn redis_node(
    node: &str,
    version: Option<String>,
    uptime: Option<u64>,
    s: &ServerStats,
) -> RedisNode {
    RedisNode {
        node: node.to_string(),
        redis_version: version,
        uptime_seconds: uptime,
        used_memory_mb: s.used_memory_mb,
        max_memory_mb: s.max_memory_mb,
        used_memory_percent: s
            .max_memory_bytes
            .filter(|m| *m > 0)
            .map(|m| round(s.used_memory_bytes as f64 * 100.0 / m as f64, 2)),
        peak_memory_mb: s.peak_memory_mb,
        fragmentation_ratio: s.fragmentation_ratio,
        evicted_keys_since_start: s.evicted_keys,
        expired_keys_since_start: s.expired_keys,
        keys: s.keys,
        maxmemory_policy: s.maxmemory_policy.clone(),
    }
}

/// The datasource ids of the request, checked against the registry: all
/// of them when the request names none.
fn selection(req: &ReportRequest, registry: &[DsId]) -> Result<Vec<DsId>> {
    if req.datasources.is_empty() {
        return Ok(registry.to_vec());
    }
    let mut ids = req.datasources.clone();
    ids.sort_unstable();
    ids.dedup();
    if let Some(missing) = ids.iter().find(|id| !registry.contains(id)) {
        return Err(Error::NoSuchDatasource(*missing));
    }
    Ok(ids)
}

/// Builds the report, telling `progress` each step.
pub(crate) async fn build_with<F: Fn(&str)>(
    redis: &Redis,
    store: &Store,
    req: &ReportRequest,
    progress: &F,
) -> Result<Report> {
    let now = redis.time_ms().await?;
    let resolved = req.range.resolve(now)?;
    let mut notes = Vec::new();
    if resolved.clamped {
        notes.push(format!(
            "The requested range ends after the report was made; it covers up to {}.",
            iso(resolved.to_ms)
        ));
    }
    if resolved.hourly && resolved.to_ms - resolved.from_ms <= metrics::trends::MAX_MINUTE_RANGE_MS
    {
        notes.push(
            "Minute statistics are kept 2 days and this range starts earlier, so it is read in hour buckets."
                .into(),
        );
    }

    progress("Reading the datasource registry…");
    let registry: Vec<DsId> = store.datasources().await?.iter().map(|d| d.id).collect();
    let ids = selection(req, &registry)?;

    progress("Reading cache statistics…");
    // One observation of caches written elsewhere serves both.
    let observations = metrics::Observations::inline();
    let stats = metrics::stats_with(redis, store, &observations).await?;
    progress("Running the health check (sampled index integrity)…");
    let health = metrics::check_with(redis, store, &observations).await?;

    let (from_ms, to_ms, hourly) = (resolved.from_ms, resolved.to_ms, resolved.hourly);
    let total = ids.len();
    let read: Vec<(DsId, Result<Trends>)> = futures::stream::iter(ids.iter().copied().enumerate())
        .map(|(n, id)| async move {
            progress(&format!(
                "Reading the trends of DS #{id} ({}/{total})…",
                n + 1
            ));
            (
                id,
                metrics::trends(redis, store, id, from_ms, to_ms, hourly).await,
            )
        })
        .buffered(TRENDS_IN_FLIGHT)
        .collect()
        .await;
    let mut datasources = Vec::with_capacity(ids.len());
    for (id, t) in read {
        let m = stats.datasources.iter().find(|m| m.datasource_id == id);
        let (Some(m), Ok(t)) = (m, t.as_ref()) else {
            match t {
                Err(e) if !matches!(e, Error::NoSuchDatasource(_)) => return Err(e),
                _ => notes.push(format!(
                    "DS #{id} was removed from the registry while the report was made; it is left out."
                )),
            }
            continue;
        };
        let issues: Vec<ReportIssue> = health
            .issues
            .iter()
            .filter(|i| i.datasource_id == Some(id))
            .map(report_issue)
            .collect();
        datasources.push(datasource_report(m, t, issues));
    }

    progress("Reading Redis memory and eviction figures…");
    let redis_issues: Vec<ReportIssue> = health
        .issues
        .iter()
        .filter(|i| i.datasource_id.is_none())
        .map(report_issue)
        .collect();
    // A sample of 1: the key distribution is not part of a report.
    let redis_section = match redis_admin::info(redis, 1).await {
        Ok(info) => RedisSection {
            topology: info.topology,
            collected_at: Some(info.collected_at.clone()),
            unavailable: None,
            nodes: info
                .nodes
                .iter()
                .map(|n| redis_node(&n.addr, n.redis_version.clone(), n.uptime_seconds, &n.stats))
                .collect(),
            total: Some(redis_node("total", None, None, &info.total)),
            recommendations: distinct_recommendations(&redis_issues),
            issues: redis_issues,
        },
        Err(e) => {
            let e = if redis_admin::info_refused(&e) {
                redis_admin::INFO_NOT_PERMITTED.to_string()
            } else {
                e.to_string()
            };
            notes.push(format!("Redis INFO could not be read: {e}"));
            RedisSection {
                topology: redis.topology(),
                collected_at: None,
                unavailable: Some(shorten(&e)),
                nodes: Vec::new(),
                total: None,
                recommendations: distinct_recommendations(&redis_issues),
                issues: redis_issues,
            }
        }
    };

    // The verdict over what the report covers: its datasources and Redis.
    let covered: Vec<HealthIssue> = health
        .issues
        .iter()
        .filter(|i| i.datasource_id.is_none_or(|d| ids.contains(&d)))
        .cloned()
        .collect();
    let overall_health = metrics::health::report(covered).overall;

    let warm = datasources.iter().filter(|d| d.now.is_warm).count() as u64;
    let (mut hits, mut misses, mut query_ms) = (0u64, 0u64, 0.0f64);
    for d in &datasources {
        hits += d.range.hits;
        misses += d.range.misses;
        query_ms += d.range.avg_query_ms.unwrap_or(0.0) * d.range.queries as f64;
    }
    let queries = hits + misses;
    let summary = Summary {
        now: SummaryNow {
            datasources: datasources.len() as u64,
            warm_datasources: warm,
            cold_datasources: datasources.len() as u64 - warm,
            total_cache_entries: datasources.iter().map(|d| d.now.total_entries).sum(),
            total_indexes: datasources.iter().map(|d| d.now.index_count).sum(),
            total_memory_mb: round(
                datasources.iter().map(|d| d.now.estimated_memory_mb).sum(),
                2,
            ),
        },
        range: SummaryRange {
            hits,
            misses,
            queries,
            hit_rate: (queries > 0).then(|| round(hits as f64 * 100.0 / queries as f64, 2)),
            avg_query_ms: (queries > 0).then(|| round(query_ms / queries as f64, 3)),
            warms: datasources.iter().map(|d| d.warms.count).sum(),
            warms_succeeded: datasources.iter().map(|d| d.warms.succeeded).sum(),
            warms_failed: datasources.iter().map(|d| d.warms.failed).sum(),
        },
        overall_health,
    };

    Ok(Report {
        schema_version: SCHEMA_VERSION,
        generated_at: iso(now),
        generated_at_ms: now,
        range: RangeInfo {
            label: req.range.label(),
            from_ms,
            to_ms,
            from: iso(from_ms),
            to: iso(to_ms),
            bucket: if hourly {
                BucketSize::Hour
            } else {
                BucketSize::Minute
            },
            bucket_ms: if hourly {
                metrics::trends::HOUR_MS
            } else {
                metrics::trends::MINUTE_MS
            },
        },
        datasource_filter: (!req.datasources.is_empty()).then_some(ids),
        summary,
        datasources,
        redis: redis_section,
        notes,
    })
}

/// The report's view of sampled reads: figures and measure/frequency names,
/// never practices or providers.
fn read_usage_section(u: &crate::metrics::ReadUsage) -> ReadUsageSection {
    let names = |gs: &[crate::metrics::GroupUsage]| gs.iter().map(|g| g.value.clone()).collect();
    let mb = |b: u64| round(b as f64 / (1024.0 * 1024.0), 3);
    ReadUsageSection {
        sampled: true,
        sample_size: u.sample_size,
        total_entries: u.total_entries,
        clock: u.clock,
        read_last_hour: u.read_last_hour,
        read_last_day: u.read_last_day,
        cold_share: u.cold_share,
        entries_memory_mb: mb(u.entries_bytes),
        cold_memory_mb: mb(u.cold_bytes),
        hottest_measures: names(&u.hottest.measures),
        coldest_measures: names(&u.coldest.measures),
        hottest_frequencies: names(&u.hottest.frequencies),
        coldest_frequencies: names(&u.coldest.frequencies),
        summary: u.cold_sentence(),
        notes: u.notes.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Severity;

    fn ev(state: &str, duration: Option<i64>, error: Option<&str>, t: i64) -> WarmEvent {
        WarmEvent {
            job_id: format!("job{t}"),
            state: state.into(),
            queued_at_ms: t,
            started_at_ms: Some(t + 1),
            completed_at_ms: Some(t + 2),
            duration_ms: duration,
            rows_processed: 10,
            entries_cached: 5,
            success: state == "succeeded" || state == "skipped",
            error: error.map(str::to_string),
            actor: "me".into(),
        }
    }

    #[test]
    fn warm_history_counts_and_durations() {
        let h = warm_history(&[
            ev("succeeded", Some(100), None, 1),
            ev("failed", None, Some("source down"), 2),
            ev(
                "failed",
                None,
                Some("datasource 1 is already being warmed by job x"),
                3,
            ),
            ev("succeeded", Some(300), None, 4),
            ev("skipped", None, None, 5),
            ev("running", None, None, 6),
        ]);
        assert_eq!(
            (
                h.count,
                h.succeeded,
                h.failed,
                h.busy,
                h.skipped,
                h.unfinished
            ),
            (6, 2, 1, 1, 1, 1)
        );
        assert_eq!(h.success_rate, Some(66.67));
        assert_eq!(
            (h.min_duration_ms, h.avg_duration_ms, h.max_duration_ms),
            (Some(100), Some(200.0), Some(300))
        );
        let f = h.last_failure.expect("failure");
        assert_eq!(
            (f.job_id.as_str(), f.error.as_str()),
            ("job2", "source down")
        );
        assert_eq!(warm_history(&[]).success_rate, None);
    }

    #[test]
    fn integrity_examples_naming_keys_are_dropped() {
        let i = HealthIssue {
            datasource_id: Some(1),
            datasource_name: Some("x".into()),
            severity: Severity::Error,
            code: "index_integrity".into(),
            issue: "Index integrity (sampled): 1 of 200 checked entries are indexed but do not exist (e.g. cache:{ds:1}:m:Charges:p:114:prov:5:freq:Monthly is missing)".into(),
            recommendation: "Rebuild".into(),
        };
        let r = report_issue(&i);
        assert!(!r.issue.contains("cache:"), "{}", r.issue);
        assert!(r.issue.ends_with("do not exist"), "{}", r.issue);
        let long = "x".repeat(1000);
        assert_eq!(shorten(&long).chars().count(), MAX_ERROR_CHARS);
    }
}
