//! `cachedeck redis-info`: generic Redis statistics (hit rate, memory, keys,
//! ops/sec, clients, evictions, key distribution), per node and totalled.

use super::{Ctx, RedisInfoArgs};
use crate::error::Result;
use crate::redis_admin::{RedisInfo, ServerStats, info};

fn opt<T: std::fmt::Display>(v: &Option<T>, unit: &str) -> String {
    match v {
        Some(v) => format!("{v}{unit}"),
        None => "n/a".into(),
    }
}

fn stats_lines(s: &ServerStats, indent: &str) -> Vec<String> {
    vec![
        format!(
            "{indent}hit rate      {} ({} hits, {} misses)",
            opt(&s.hit_rate, " %"),
            s.keyspace_hits,
            s.keyspace_misses
        ),
        format!(
            "{indent}memory        {} MB used, {} MB peak, max {}, fragmentation {}",
            s.used_memory_mb,
            s.peak_memory_mb,
            s.max_memory_mb
                .map(|m| format!("{m} MB"))
                .unwrap_or_else(|| "unlimited".into()),
            opt(&s.fragmentation_ratio, "")
        ),
        format!(
            "{indent}keys          {}{}",
            s.keys,
            if s.keys_per_db.len() > 1 {
                let dbs: Vec<String> = s
                    .keys_per_db
                    .iter()
                    .map(|d| format!("db{} {}", d.db, d.keys))
                    .collect();
                format!(" ({})", dbs.join(", "))
            } else {
                String::new()
            }
        ),
        format!("{indent}ops/sec       {}", s.ops_per_sec),
        format!("{indent}clients       {}", s.connected_clients),
        format!(
            "{indent}evicted keys  {}   expired keys {}",
            s.evicted_keys, s.expired_keys
        ),
        format!(
            "{indent}policy        {}",
            s.maxmemory_policy.as_deref().unwrap_or("n/a")
        ),
    ]
}

fn human(i: &RedisInfo) -> String {
    let mut out = vec![format!(
        "Redis ({:?}, {} node{}) at {}",
        i.topology,
        i.nodes.len(),
        if i.nodes.len() == 1 { "" } else { "s" },
        i.collected_at
    )];
    out.extend(stats_lines(&i.total, "  "));
    if i.nodes.len() > 1 {
        for n in &i.nodes {
            out.push(format!(
                "node {} (Redis {})",
                n.addr,
                n.redis_version.as_deref().unwrap_or("?")
            ));
            out.extend(stats_lines(&n.stats, "  "));
        }
    }
    let d = &i.key_distribution;
    out.push(format!(
        "key distribution ({} of {} keys sampled{}):",
        d.sample_size,
        d.keyspace_size,
        if d.complete { ", complete" } else { "" }
    ));
    for p in &d.patterns {
        out.push(format!(
            "  {:>6.2} %  ~{:>10}  {}",
            p.percent, p.estimated_keys, p.pattern
        ));
    }
    out.join("\n")
}

/// Prints the generic Redis statistics.
pub async fn run(ctx: &Ctx, args: RedisInfoArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    let i = match info(redis, args.sample).await {
        Ok(i) => i,
        Err(e) if crate::redis_admin::info_refused(&e) => {
            let note = crate::redis_admin::INFO_NOT_PERMITTED;
            ctx.print(&serde_json::json!({ "notShown": note }), || {
                format!("Redis statistics: {note}")
            });
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    ctx.print(&i, || human(&i));
    Ok(0)
}
