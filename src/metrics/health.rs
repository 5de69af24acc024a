//! The cache health check (the seed's `GET …/cache/health`): findings with a
//! severity, a stable code, what is wrong and what to do about it, naming the
//! datasource.
//!
//! Per datasource: cold, stale, entry count drifting from the last warm, low
//! hit rate, slow queries, leftover shadow keys, a stuck warm lock, a failed
//! last warm, sampled index integrity and entries without expiry. Redis-wide:
//! memory against maxmemory, no maxmemory, an eviction policy that can evict
//! index sets. Every read is bounded (pipelines, SRANDMEMBER samples, INFO);
//! nothing scans the keyspace.

use std::cmp::Reverse;

use futures::StreamExt;

use super::collect::{self, DsSnapshot};
use super::integrity;
use super::types::{HealthIssue, HealthReport, Overall, Severity};
use crate::error::Result;
use crate::jobs;
use crate::keys::{self, DsId};
use crate::redis_conn::{NodeMemory, Redis};
use crate::store::Store;

pub use super::integrity::{IntegrityReport, verify};

/// Below this hit rate (percent) with enough queries, queries miss too often.
pub const LOW_HIT_RATE_PERCENT: f64 = 80.0;
/// Queries since the warm before a low hit rate is reported (fewer are noise).
pub const LOW_HIT_RATE_MIN_QUERIES: u64 = 20;
/// An average query time above this (ms) is reported as slow.
pub const SLOW_QUERY_MS: f64 = 5.0;
/// used_memory above this share of maxmemory is a warning.
pub const MEMORY_WARN_RATIO: f64 = 0.30;
/// used_memory above this share of maxmemory is an error (warms pause near it).
pub const MEMORY_ERROR_RATIO: f64 = 0.90;
/// Master-index members sampled per datasource (fewer with many datasources).
pub const ENTRY_SAMPLE: usize = 200;
/// Index names sampled per datasource (fewer with many datasources).
pub const INDEX_SAMPLE: usize = 50;
/// Members sampled per sampled index.
pub const INDEX_MEMBER_SAMPLE: usize = 50;
/// Entries sampled over all datasources together: with many datasources the
/// per-datasource sample shrinks (to at least [`MIN_ENTRY_SAMPLE`]) so the
/// check stays well under a second.
pub const SAMPLE_BUDGET: usize = 20_000;
/// The smallest per-datasource entry sample.
pub const MIN_ENTRY_SAMPLE: usize = 20;
/// Datasources checked in depth at once.
const IN_FLIGHT: usize = 16;

/// `DS #3`: how findings name a datasource.
pub fn ds_label(id: DsId) -> String {
    format!("DS #{id}")
}

/// A duration in minutes for people: `40 s`, `25 min`, `6 h`, `2.5 d`.
pub fn fmt_minutes(minutes: f64) -> String {
    let trim = |v: f64, unit: &str| {
        if (v - v.round()).abs() < 0.05 {
            format!("{v:.0} {unit}")
        } else {
            format!("{v:.1} {unit}")
        }
    };
    if minutes < 1.0 {
        format!("{:.0} s", (minutes * 60.0).max(0.0))
    } else if minutes < 60.0 {
        format!("{minutes:.0} min")
    } else if minutes < 48.0 * 60.0 {
        trim(minutes / 60.0, "h")
    } else {
        trim(minutes / 1440.0, "d")
    }
}

fn issue(
    s: Option<&DsSnapshot>,
    severity: Severity,
    code: &str,
    text: String,
    recommendation: String,
) -> HealthIssue {
    HealthIssue {
        datasource_id: s.map(|s| s.ds.id),
        datasource_name: s.map(|s| s.ds.name.clone()),
        severity,
        code: code.to_string(),
        issue: text,
        recommendation,
    }
}

/// Findings that need nothing beyond the stats pipeline (stats shows them
/// as warnings): cold, disabled, stale, entry drift, hit rate, query time,
/// leftover shadow keys.
pub(crate) fn snapshot_findings(s: &DsSnapshot, now_ms: i64) -> Vec<HealthIssue> {
    let mut out = Vec::new();
    let id = s.ds.id;
    let label = ds_label(id);
    let warm_cmd = format!("`cachedeck warm --datasource {id}`");
    if !s.is_warm() {
        let why = match (&s.meta, s.live_entries) {
            (None, 0) => "never warmed (or fully invalidated)".to_string(),
            (None, n) => format!(
                "{n} live entries but no meta hash (written by another tool, or the meta was deleted)"
            ),
            (Some(m), _) if m.entries == 0 => {
                "the last warm cached nothing (the source query returned no rows)".to_string()
            }
            (Some(m), _) => format!(
                "the entries of the warm at {} expired or were removed",
                if m.warmed_at.is_empty() {
                    "an unknown time"
                } else {
                    m.warmed_at.as_str()
                }
            ),
        };
        if let Some(job) = &s.lock_holder {
            // The first warm (or a re-warm after invalidation) is running; a
            // stuck lock is reported on its own.
            out.push(issue(
                Some(s),
                Severity::Info,
                "warming",
                format!("Cache is cold and being warmed by job {job}: {why}"),
                format!("Wait for job {job} to finish warming {label} (`cachedeck status`)"),
            ));
        } else if s.ds.enabled {
            out.push(issue(
                Some(s),
                Severity::Error,
                "cold",
                format!("Cache is cold: {why}"),
                format!("Warm {label}: {warm_cmd}"),
            ));
        } else {
            out.push(issue(
                Some(s),
                Severity::Info,
                "disabled",
                format!("Disabled and not cached: {why}"),
                format!("Enable {label} and warm it if the application reads it"),
            ));
        }
    } else {
        let stale_after = s.stale_after_minutes();
        if let Some(age) = s.age_minutes(now_ms)
            && age > stale_after
        {
            let estimated = s
                .observed
                .as_ref()
                .is_some_and(|o| o.last_warm_source == super::Source::Estimated);
            let what = format!(
                "last warmed {} ago{}, stale after {}",
                fmt_minutes(age),
                if estimated {
                    " (estimated from the entries' remaining TTLs)"
                } else {
                    ""
                },
                fmt_minutes(stale_after)
            );
            out.push(issue(
                Some(s),
                Severity::Warning,
                "stale",
                format!("Cache is stale: {what}"),
                format!("Refresh {label}: {what}"),
            ));
        }
        if let Some(m) = &s.meta
            && m.entries != s.live_entries
        {
            out.push(issue(
                Some(s),
                Severity::Warning,
                "entries_mismatch",
                format!(
                    "The master index holds {} entries but the last warm cached {} (keys expired, were evicted or were changed outside cachedeck)",
                    s.live_entries, m.entries
                ),
                format!("Refresh {label} to rebuild it, and check the eviction policy: {warm_cmd}"),
            ));
        }
        let c = &s.counters;
        if let Some(rate) = c.hit_rate()
            && c.queries() >= LOW_HIT_RATE_MIN_QUERIES
            && rate < LOW_HIT_RATE_PERCENT
        {
            out.push(issue(
                Some(s),
                Severity::Warning,
                "low_hit_rate",
                format!(
                    "Hit rate {rate:.1}% over {} queries since the last warm (below {LOW_HIT_RATE_PERCENT:.0}%)",
                    c.queries()
                ),
                format!(
                    "Check {label}: the application asks for groups the cache does not hold; compare its queries with the datasource SQL, then refresh"
                ),
            ));
        }
        if let Some(avg) = c.avg_query_ms()
            && avg > SLOW_QUERY_MS
        {
            out.push(issue(
                Some(s),
                Severity::Warning,
                "slow_queries",
                format!(
                    "Average query time {avg:.2} ms over {} queries (above {SLOW_QUERY_MS:.0} ms)",
                    c.queries()
                ),
                format!(
                    "Speed up {label}: narrow queries with practice/provider filters, and check Redis latency (`redis-cli --latency`) and memory"
                ),
            ));
        }
    }
    if s.is_warm() && s.invalidated > 0 {
        out.push(issue(
            Some(s),
            Severity::Warning,
            "invalidated",
            format!(
                "{} of {} entries are invalidated, waiting for a warm: queries touching them miss",
                s.invalidated, s.live_entries
            ),
            // A refresh is not skipped while invalidated entries wait for it.
            format!(
                "Warm {label} to restore the invalidated entries: `cachedeck warm --datasource {id}`"
            ),
        ));
    }
    if let Some(l) = &s.app_lock {
        let frees = if l.ttl_ms < 0 {
            "it has no expiry".to_string()
        } else {
            format!("it expires in {} s", (l.ttl_ms + 999) / 1000)
        };
        out.push(issue(
            Some(s),
            Severity::Info,
            "app_warming",
            format!(
                "The application's warmer is warming this cache: it holds {} ({frees})",
                l.key
            ),
            format!(
                "cachedeck warms {label} only once the application's lock is free; to hand warming over, stop the application's warmer (README, \"Adopting an existing deployment\")"
            ),
        ));
    }
    if let Some(n) = s
        .observed
        .as_ref()
        .map(|o| o.app_shadow_keys)
        .filter(|&n| n > 0)
        && s.app_lock.is_none()
    {
        out.push(issue(
            Some(s),
            Severity::Warning,
            "app_shadow_leftover",
            format!(
                "{n} shadow keys of the application's warmer are left (cache:shadow:{{ds:{id}}}:…) and it is not warming"
            ),
            format!("The next cachedeck warm removes them: {warm_cmd}"),
        ));
    }
    if s.shadow_exists && s.lock_holder.is_none() {
        out.push(issue(
            Some(s),
            Severity::Warning,
            "shadow_leftover",
            "Shadow keys of a crashed or interrupted warm are left and no warm is running".into(),
            format!(
                "Warm {label} again: the next warm removes the leftover shadow keys first ({warm_cmd}); they also expire with their generation's TTL"
            ),
        ));
    }
    out
}

/// Stuck lock: held by a job that is missing, ended, or silent.
async fn lock_finding(redis: &Redis, s: &DsSnapshot) -> Result<Option<HealthIssue>> {
    let Some(holder) = &s.lock_holder else {
        return Ok(None);
    };
    let why = match jobs::read(redis, holder).await? {
        None => "has no job record".to_string(),
        Some(j) if j.state.is_final() => format!("has ended ({})", j.state.as_str()),
        Some(j) => match j.heartbeat_age_ms {
            Some(age) if age > jobs::STALE_MS => format!("sent no heartbeat for {} s", age / 1000),
            _ => return Ok(None),
        },
    };
    let pttl: i64 = redis
        .query(
            "reading the warm lock lease",
            redis::cmd("PTTL").arg(keys::warm_lock(s.ds.id)),
        )
        .await?;
    let frees = match pttl {
        p if p > 0 => format!("its lease frees it in {} s", (p + 999) / 1000),
        -1 => "it has no lease and never frees itself".to_string(),
        _ => "it was just released".to_string(),
    };
    let label = ds_label(s.ds.id);
    Ok(Some(issue(
        Some(s),
        Severity::Error,
        "stuck_lock",
        format!("The warm lock is held by job {holder}, which {why}; {frees}"),
        format!(
            "Release the stuck warm lock of {label}: `cachedeck cancel {holder}`, or delete the key {} once no warm of it runs; then warm it again",
            keys::warm_lock(s.ds.id)
        ),
    )))
}

/// The last warm that ended (skipped and busy attempts aside) failed.
async fn failed_warm_finding(store: &Store, s: &DsSnapshot) -> Result<Option<HealthIssue>> {
    let recent = store.recent_jobs(Some(s.ds.id), 5).await?;
    let last = recent.iter().find(|j| {
        matches!(j.state.as_str(), "succeeded" | "failed" | "cancelled")
            // "Already being warmed" is a refused attempt, not a failed warm.
            && !j.error.as_deref().is_some_and(crate::error::is_busy_text)
    });
    let Some(j) = last.filter(|j| j.state == "failed") else {
        return Ok(None);
    };
    let when = j
        .completed_at_ms
        .or(j.started_at_ms)
        .map(jobs::iso)
        .unwrap_or_else(|| jobs::iso(j.queued_at_ms));
    let error = j
        .error
        .clone()
        .unwrap_or_else(|| "no error recorded".into());
    let label = ds_label(s.ds.id);
    Ok(Some(issue(
        Some(s),
        Severity::Error,
        "warm_failed",
        format!("The last warm (job {} at {when}) failed: {error}", j.job_id),
        format!(
            "Fix the source of {label} and warm it again (`cachedeck warm --datasource {} --force`): {error}",
            s.ds.id
        ),
    )))
}

/// Sampled index integrity and entries without expiry.
async fn integrity_findings(
    redis: &Redis,
    s: &DsSnapshot,
    members_per_index: usize,
) -> Result<Vec<HealthIssue>> {
    let Some(sample) = s.sample.as_ref().filter(|_| s.is_warm()) else {
        return Ok(Vec::new());
    };
    let rep = integrity::sample(
        redis,
        s.ds.id,
        s.generation(),
        s.epoch,
        sample,
        members_per_index,
    )
    .await?;
    let mut out = Vec::new();
    if rep.changed_during_check {
        return Ok(out);
    }
    let label = ds_label(s.ds.id);
    let id = s.ds.id;
    if rep.broken() > 0 {
        let first = rep
            .examples
            .first()
            .map(|e| format!(" (e.g. {e})"))
            .unwrap_or_default();
        out.push(issue(
            Some(s),
            Severity::Error,
            "index_integrity",
            format!("Index integrity (sampled): {}{first}", rep.summary()),
            format!(
                "Rebuild {label}: `cachedeck warm --datasource {id} --force`; readers of the broken indexes get misses or stale entries until then"
            ),
        ));
    }
    if rep.entries_without_ttl > 0 {
        out.push(issue(
            Some(s),
            Severity::Warning,
            "no_ttl",
            format!(
                "{} of {} sampled entries have no expiry although the datasource's TTL is {}",
                rep.entries_without_ttl,
                rep.entries_checked,
                fmt_minutes(s.ds.ttl_secs as f64 / 60.0)
            ),
            format!(
                "Refresh {label} so every entry carries its generation's expiry: `cachedeck warm --datasource {id} --force`"
            ),
        ));
    }
    Ok(out)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Findings about Redis itself. A server that refuses INFO (a managed
/// service, a restricted ACL user) gives a warning instead of failing the
/// whole check.
async fn redis_findings(redis: &Redis) -> Vec<HealthIssue> {
    match redis.masters_memory().await {
        Ok(nodes) => memory_findings(&nodes),
        // A read-only user without INFO: nothing is wrong, there is just
        // nothing to see.
        Err(crate::error::Error::RedisPermission { what, .. }) if what.starts_with("INFO") => {
            vec![issue(
                None,
                Severity::Info,
                "redis_info_not_permitted",
                "Redis memory and eviction: not shown: INFO not permitted for this Redis user".into(),
                "Allow the profile's Redis user INFO to see memory and eviction checks".into(),
            )]
        }
        Err(e) => vec![issue(
            None,
            Severity::Warning,
            "redis_info_unavailable",
            format!("Redis memory and eviction settings could not be read: {e}"),
            "Allow the profile's Redis user INFO (and CLUSTER NODES on a cluster) so memory and eviction can be checked".into(),
        )],
    }
}

fn memory_findings(nodes: &[NodeMemory]) -> Vec<HealthIssue> {
    let mut out = Vec::new();
    let on = |n: &NodeMemory| {
        if nodes.len() > 1 {
            format!(" on {}", n.addr)
        } else {
            String::new()
        }
    };
    let unlimited: Vec<&NodeMemory> = nodes.iter().filter(|n| n.max == 0).collect();
    if !unlimited.is_empty() {
        let where_ = if nodes.len() > 1 {
            format!(
                " on {}",
                unlimited
                    .iter()
                    .map(|n| n.addr.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        out.push(issue(
            None,
            Severity::Warning,
            "no_maxmemory",
            format!(
                "No maxmemory is set{where_}: Redis grows until the machine runs out of memory, and memory use cannot be judged (warms cannot pause before it is full)"
            ),
            "Set maxmemory on every Redis node (`CONFIG SET maxmemory 4gb` and in redis.conf) with maxmemory-policy noeviction".into(),
        ));
    }
    if let Some(worst) = nodes
        .iter()
        .filter(|n| n.max > 0)
        .max_by(|a, b| (a.used as f64 / a.max as f64).total_cmp(&(b.used as f64 / b.max as f64)))
    {
        let ratio = worst.used as f64 / worst.max as f64;
        let text = format!(
            "Redis memory at {:.0}% of maxmemory ({} of {}){}",
            ratio * 100.0,
            mb(worst.used),
            mb(worst.max),
            on(worst)
        );
        if ratio > MEMORY_ERROR_RATIO {
            out.push(issue(
                None,
                Severity::Error,
                "memory_critical",
                format!("{text}: warms pause and writes may fail"),
                "Free Redis memory now: invalidate datasources nobody reads, shorten TTLs, or raise maxmemory".into(),
            ));
        } else if ratio > MEMORY_WARN_RATIO {
            out.push(issue(
                None,
                Severity::Warning,
                "memory_high",
                format!(
                    "{text}: a warm needs room for a second (shadow) generation beside the live one"
                ),
                "Keep Redis memory low enough for shadow warming: raise maxmemory, or invalidate datasources nobody reads".into(),
            ));
        }
    }
    let evicting: Vec<&NodeMemory> = nodes.iter().filter(|n| n.policy != "noeviction").collect();
    if let Some(first) = evicting.first() {
        let where_ = if nodes.len() > 1 {
            format!(
                " on {}",
                evicting
                    .iter()
                    .map(|n| n.addr.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        };
        out.push(issue(
            None,
            Severity::Warning,
            "eviction_policy",
            format!(
                "maxmemory-policy is {}{where_}: under memory pressure Redis may evict entries or index sets, leaving indexes that name missing entries",
                first.policy
            ),
            "Set maxmemory-policy noeviction on every Redis node (`CONFIG SET maxmemory-policy noeviction`)".into(),
        ));
    }
    out
}

/// Orders issues (errors first; Redis-wide before datasources; by id) and
/// derives the verdict and the distinct recommendations.
pub fn report(mut issues: Vec<HealthIssue>) -> HealthReport {
    issues.sort_by_key(|i| (Reverse(i.severity), i.datasource_id.unwrap_or(DsId::MIN)));
    let worst = issues.iter().map(|i| i.severity).max();
    let overall = match worst {
        Some(Severity::Error) => Overall::Critical,
        Some(Severity::Warning) => Overall::Degraded,
        Some(Severity::Info) => Overall::Good,
        None => Overall::Excellent,
    };
    let mut recommendations: Vec<String> = Vec::new();
    for i in &issues {
        if !recommendations.contains(&i.recommendation) {
            recommendations.push(i.recommendation.clone());
        }
    }
    HealthReport {
        overall,
        issues,
        recommendations,
    }
}

/// Per-datasource sample sizes for `n` registered datasources: (entries,
/// index names, members per index).
fn sample_sizes(n: usize) -> (usize, usize, usize) {
    let n = n.max(1);
    let entries = (SAMPLE_BUDGET / n).clamp(MIN_ENTRY_SAMPLE, ENTRY_SAMPLE);
    let indexes = (SAMPLE_BUDGET / 4 / n).clamp(5, INDEX_SAMPLE);
    (entries, indexes, INDEX_MEMBER_SAMPLE)
}

/// Every finding about one datasource: the snapshot's, then the ones that
/// need more reads (lock holder's job, history, integrity sample).
async fn deep_findings(
    redis: &Redis,
    store: &Store,
    s: DsSnapshot,
    now: i64,
    members_per_index: usize,
) -> Result<Vec<HealthIssue>> {
    let mut out = snapshot_findings(&s, now);
    out.extend(lock_finding(redis, &s).await?);
    out.extend(failed_warm_finding(store, &s).await?);
    out.extend(integrity_findings(redis, &s, members_per_index).await?);
    Ok(out)
}

/// Runs every check over every registered datasource and Redis itself.
pub async fn check(redis: &Redis, store: &Store) -> Result<HealthReport> {
    check_with(redis, store, &super::Observations::inline()).await
}

/// [`check`] with the caller's cache of observed caches (written by another tool).
pub async fn check_with(
    redis: &Redis,
    store: &Store,
    obs: &super::Observations,
) -> Result<HealthReport> {
    let (datasources, now) = collect::registry_and_time(redis, store).await?;
    let (entries, indexes, members) = sample_sizes(datasources.len());
    let snaps =
        collect::snapshots(redis, datasources, Some((entries, indexes)), Some(obs), now).await?;
    let mut issues = redis_findings(redis).await;
    // Owned snapshots: a closure over `&DsSnapshot` would make the future
    // higher-ranked over that lifetime, which tokio::spawn callers reject.
    let per_ds: Vec<Result<Vec<HealthIssue>>> = futures::stream::iter(snaps)
        .map(|s| deep_findings(redis, store, s, now, members))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    for r in per_ds {
        issues.extend(r?);
    }
    Ok(report(issues))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::stats::Counters;
    use crate::redis_conn::parse_info_memory;

    fn node(addr: &str, used: u64, max: u64, policy: &str) -> NodeMemory {
        NodeMemory {
            addr: addr.into(),
            used,
            max,
            policy: policy.into(),
        }
    }

    fn codes(v: &[HealthIssue]) -> Vec<(&str, Severity)> {
        v.iter().map(|i| (i.code.as_str(), i.severity)).collect()
    }

    fn snap(enabled: bool, meta_entries: Option<u64>, live: u64) -> DsSnapshot {
        let now = 1_000_000_000_000;
        DsSnapshot {
            ds: crate::store::Datasource {
                id: 3,
                name: "Ops".into(),
                source_url: None,
                source_password: None,
                sql: "SELECT 1".into(),
                stale_after_secs: 4 * 3600,
                ttl_secs: 48 * 3600,
                enabled,
                statement_timeout_secs: crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
                created_at_ms: 0,
                updated_at_ms: 0,
            },
            meta: meta_entries.map(|e| crate::cache::meta::Meta {
                warmed_at: "2001-09-09T01:46:40.000Z".into(),
                warmed_at_ms: now,
                entries: e,
                unique_measures: 1,
                unique_practices: 1,
                ..Default::default()
            }),
            live_entries: live,
            counters: Default::default(),
            lock_holder: None,
            shadow_exists: false,
            app_lock: None,
            invalidated: 0,
            epoch: 0,
            sample: None,
            observed: None,
            usage: None,
        }
    }

    const T0: i64 = 1_000_000_000_000;

    #[test]
    fn snapshot_findings_cover_each_condition() {
        let fresh = snap(true, Some(10), 10);
        assert_eq!(codes(&snapshot_findings(&fresh, T0 + 60_000)), vec![]);

        let never = snap(true, None, 0);
        let f = snapshot_findings(&never, T0);
        assert_eq!(codes(&f), vec![("cold", Severity::Error)]);
        assert_eq!(
            f[0].recommendation,
            "Warm DS #3: `cachedeck warm --datasource 3`"
        );
        assert_eq!(f[0].datasource_name.as_deref(), Some("Ops"));
        let off = snap(false, None, 0);
        assert_eq!(
            codes(&snapshot_findings(&off, T0)),
            vec![("disabled", Severity::Info)]
        );
        let expired = snap(true, Some(10), 0);
        let f = snapshot_findings(&expired, T0);
        assert!(
            f[0].issue.contains("expired or were removed"),
            "{}",
            f[0].issue
        );
        let empty = snap(true, Some(0), 0);
        let f = snapshot_findings(&empty, T0);
        assert!(f[0].issue.contains("returned no rows"), "{}", f[0].issue);

        // Six hours old with a four-hour stale-after: the seed's DS #3 card.
        let f = snapshot_findings(&fresh, T0 + 6 * 3_600_000);
        assert_eq!(codes(&f), vec![("stale", Severity::Warning)]);
        assert_eq!(
            f[0].recommendation,
            "Refresh DS #3: last warmed 6 h ago, stale after 4 h"
        );
        // Exactly at stale-after is not beyond it.
        assert_eq!(
            codes(&snapshot_findings(&fresh, T0 + 4 * 3_600_000)),
            vec![]
        );

        let drift = snap(true, Some(10), 9);
        assert_eq!(
            codes(&snapshot_findings(&drift, T0)),
            vec![("entries_mismatch", Severity::Warning)]
        );

        let mut low = snap(true, Some(10), 10);
        low.counters = Counters {
            hits: 15,
            misses: 4,
            query_us: 19_000,
        };
        // 78.9 % but only 19 queries: not yet.
        assert_eq!(codes(&snapshot_findings(&low, T0)), vec![]);
        low.counters.misses = 5; // 75 % over 20.
        assert_eq!(
            codes(&snapshot_findings(&low, T0)),
            vec![("low_hit_rate", Severity::Warning)]
        );
        low.counters = Counters {
            hits: 16,
            misses: 4,
            query_us: 20_000,
        }; // exactly 80 %
        assert_eq!(codes(&snapshot_findings(&low, T0)), vec![]);

        let mut slow = snap(true, Some(10), 10);
        slow.counters = Counters {
            hits: 2,
            misses: 0,
            query_us: 10_000,
        }; // 5 ms: not above
        assert_eq!(codes(&snapshot_findings(&slow, T0)), vec![]);
        slow.counters.query_us = 10_002;
        assert_eq!(
            codes(&snapshot_findings(&slow, T0)),
            vec![("slow_queries", Severity::Warning)]
        );

        let mut warming = snap(true, None, 0);
        warming.lock_holder = Some("job7".into());
        let f = snapshot_findings(&warming, T0);
        assert_eq!(codes(&f), vec![("warming", Severity::Info)]);
        assert!(f[0].issue.contains("job7"), "{}", f[0].issue);

        let mut leftover = snap(true, Some(10), 10);
        leftover.shadow_exists = true;
        assert_eq!(
            codes(&snapshot_findings(&leftover, T0)),
            vec![("shadow_leftover", Severity::Warning)]
        );
        leftover.lock_holder = Some("job1".into()); // a warm is running: its own shadow
        assert_eq!(codes(&snapshot_findings(&leftover, T0)), vec![]);
    }

    #[test]
    fn info_memory_is_parsed() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\nmaxmemory_policy:allkeys-lru\r\n";
        assert_eq!(
            parse_info_memory("a:1", info),
            node("a:1", 1_048_576, 4_194_304, "allkeys-lru")
        );
    }

    #[test]
    fn memory_bands_and_policy() {
        let mb = 1024 * 1024;
        assert_eq!(
            codes(&memory_findings(&[node(
                "a",
                30 * mb,
                100 * mb,
                "noeviction"
            )])),
            vec![]
        );
        assert_eq!(
            codes(&memory_findings(&[node(
                "a",
                31 * mb,
                100 * mb,
                "noeviction"
            )])),
            vec![("memory_high", Severity::Warning)]
        );
        assert_eq!(
            codes(&memory_findings(&[node(
                "a",
                90 * mb,
                100 * mb,
                "noeviction"
            )])),
            vec![("memory_high", Severity::Warning)]
        );
        assert_eq!(
            codes(&memory_findings(&[node(
                "a",
                91 * mb,
                100 * mb,
                "noeviction"
            )])),
            vec![("memory_critical", Severity::Error)]
        );
        assert_eq!(
            codes(&memory_findings(&[node("a", mb, 0, "noeviction")])),
            vec![("no_maxmemory", Severity::Warning)]
        );
        let v = memory_findings(&[
            node("a", mb, 100 * mb, "noeviction"),
            node("b", 95 * mb, 100 * mb, "volatile-lru"),
        ]);
        assert_eq!(
            codes(&v),
            vec![
                ("memory_critical", Severity::Error),
                ("eviction_policy", Severity::Warning)
            ]
        );
        assert!(v[0].issue.contains(" on b"), "{}", v[0].issue);
        assert!(v[1].issue.contains("volatile-lru on b"), "{}", v[1].issue);
    }

    #[test]
    fn overall_and_recommendations() {
        let mk = |sev, ds: Option<DsId>, rec: &str| HealthIssue {
            datasource_id: ds,
            datasource_name: None,
            severity: sev,
            code: "x".into(),
            issue: "i".into(),
            recommendation: rec.into(),
        };
        assert_eq!(report(vec![]).overall, Overall::Excellent);
        assert_eq!(
            report(vec![mk(Severity::Info, Some(1), "a")]).overall,
            Overall::Good
        );
        assert_eq!(
            report(vec![
                mk(Severity::Info, Some(1), "a"),
                mk(Severity::Warning, Some(1), "b")
            ])
            .overall,
            Overall::Degraded
        );
        let r = report(vec![
            mk(Severity::Warning, Some(2), "warn 2"),
            mk(Severity::Error, Some(3), "err 3"),
            mk(Severity::Warning, None, "redis"),
            mk(Severity::Error, Some(1), "err 1"),
            mk(Severity::Warning, Some(1), "err 1"),
        ]);
        assert_eq!(r.overall, Overall::Critical);
        assert_eq!(r.recommendations, vec!["err 1", "err 3", "redis", "warn 2"]);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_minutes(0.5), "30 s");
        assert_eq!(fmt_minutes(25.0), "25 min");
        assert_eq!(fmt_minutes(360.0), "6 h");
        assert_eq!(fmt_minutes(240.0), "4 h");
        assert_eq!(fmt_minutes(390.0), "6.5 h");
        assert_eq!(fmt_minutes(2880.0), "2 d");
    }

    #[test]
    fn samples_shrink_with_many_datasources() {
        assert_eq!(sample_sizes(1), (200, 50, 50));
        assert_eq!(sample_sizes(100), (200, 50, 50));
        assert_eq!(sample_sizes(1000), (20, 5, 50));
        assert_eq!(sample_sizes(100_000), (20, 5, 50));
    }
}
