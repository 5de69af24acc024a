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
                    "rows {}  entries {}  indexes {}\n\
                     COPY            {:>10.0} ms  {:>10.0} rows/s\n\
                     warm            {:>10.0} ms  {:>10.0} rows/s   ratio {:.2} (target ≥ 0.5)\n\
                     RSS             before {:.1} MB, peak {:.1} MB\n\
                     swap            {:>10.1} ms; worst PING during it {:.2} ms\n\
                     MULTI/EXEC      {} RENAMEs; worst PING during it {:.2} ms   ratio {:.2} (target ≤ 1.3)\n\
                     queries         {}  p50 {:.3} ms  p99 {:.3} ms",
                    b.rows,
                    b.entries,
                    b.indexes,
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
    }
}
