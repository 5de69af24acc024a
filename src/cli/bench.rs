//! `cachedeck bench …`

use super::{BenchCmd, Ctx};
use crate::error::Result;

pub async fn run(ctx: &Ctx, cmd: BenchCmd) -> Result<i32> {
    match cmd {
        BenchCmd::Warm { rows } => {
            let redis = ctx.redis().await?;
            let store = ctx.store().await?;
            let url = ctx.database_url().await?;
            let b = crate::bench::warm::run(redis, store, &url, rows).await?;
            ctx.print(&b, || {
                format!(
                    "rows {}  entries {}  indexes {}  (refresh: {} groups removed, {} added)\n\
                     COPY            {:>10.0} ms  {:>10.0} rows/s\n\
                     warm            {:>10.0} ms  {:>10.0} rows/s   ratio {:.2} (target ≥ 0.5)\n\
                     RSS             before {:.1} MB, peak {:.1} MB\n\
                     swap            {:>10.1} ms; worst PING during it {:.2} ms\n\
                     MULTI/EXEC      {} RENAMEs; worst PING during it {:.2} ms   ratio {:.2} (target ≤ 1.3)\n\
                     queries         {}  p50 {:.3} ms  p99 {:.3} ms",
                    b.rows,
                    b.entries,
                    b.indexes,
                    b.groups_removed,
                    b.groups_added,
                    b.copy_ms,
                    b.copy_rows_per_sec,
                    b.warm_ms,
                    b.warm_rows_per_sec,
                    b.warm_to_copy_ratio,
                    b.rss_before_mb,
                    b.rss_peak_mb,
                    b.swap_ms,
                    b.ping_worst_during_swap_ms,
                    b.renames,
                    b.ping_worst_during_multi_exec_ms,
                    b.swap_to_multi_ratio,
                    b.queries,
                    b.query_p50_ms,
                    b.query_p99_ms
                )
            });
            Ok(0)
        }
        BenchCmd::Read { entries } => {
            let redis = ctx.redis().await?;
            let b = crate::bench::read::run(redis, entries).await?;
            ctx.print(&b, || {
                format!(
                    "entries {} (written in {:.0} ms)\n\
                     idle              worst PING over 1 s {:.2} ms\n\
                     bounded query     {:>8.1} ms; worst PING beside it {:.2} ms\n\
                     one-script query  {:>8.1} ms; worst PING beside it {:.2} ms",
                    b.entries,
                    b.fill_ms,
                    b.idle_ping_worst_ms,
                    b.bounded_query_ms,
                    b.bounded_ping_worst_ms,
                    b.one_script_ms,
                    b.one_script_ping_worst_ms
                )
            });
            Ok(0)
        }
        BenchCmd::Groups { groups } => {
            let redis = ctx.redis().await?;
            let store = ctx.store().await?;
            let url = ctx.database_url().await?;
            let b = crate::bench::groups::run(redis, store, &url, groups).await?;
            let line = |w: &crate::bench::groups::TimedWarm| {
                format!(
                    "{:>9.0} ms (swap {:.0} ms); worst PING {:.1} ms; peak RSS {:.0} MB",
                    w.ms, w.swap_ms, w.ping_worst_ms, w.rss_peak_mb
                )
            };
            ctx.print(&b, || {
                format!(
                    "groups {}  rows {}  entries {}  indexes {}  (table made in {:.0} ms)\n\
                     cold warm  {}\n\
                     refresh    {}",
                    b.groups,
                    b.rows,
                    b.entries,
                    b.indexes,
                    b.table_ms,
                    line(&b.cold),
                    line(&b.refresh)
                )
            });
            Ok(0)
        }
        BenchCmd::Browse { keys } => {
            let redis = ctx.redis().await?;
            // The "other client" connects to the first node on its own.
            let url = ctx
                .resolved()
                .await?
                .redis
                .urls
                .first()
                .cloned()
                .ok_or_else(|| crate::error::Error::Invalid("no Redis URL to benchmark".into()))?;
            let b = crate::bench::browse::run(redis, &url, keys).await?;
            ctx.print(&b, || {
                let lat = |l: &crate::bench::browse::Latency| {
                    format!(
                        "p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} GETs)",
                        l.p50_ms, l.p99_ms, l.max_ms, l.samples
                    )
                };
                format!(
                    "keys {} (keyspace {}), filled in {:.0} ms\n\
                     no browser        {}\n\
                     load all (pace {:.1} ms)  {:.0} ms, {:.0} keys/s\n\
                     \x20 other client    {}   p99 ratio {:.2}, max ratio {:.2}\n\
                     unpaced load      {:.0} ms\n\
                     \x20 other client    {}   p99 ratio {:.2}\n\
                     window holds      {} keys in {:.1} MB ({:.0} bytes/key)",
                    b.keys,
                    b.keyspace,
                    b.fill_ms,
                    lat(&b.baseline),
                    b.pace_ms,
                    b.paced_ms,
                    b.paced_keys_per_sec,
                    lat(&b.during_paced),
                    b.paced_p99_ratio,
                    b.paced_max_ratio,
                    b.unpaced_ms,
                    lat(&b.during_unpaced),
                    b.unpaced_p99_ratio,
                    b.loaded,
                    b.window_held_mb,
                    b.window_bytes_per_key
                )
            });
            Ok(0)
        }
    }
}
