//! `cachedeck query` and `cachedeck invalidate`.

use super::{Ctx, InvalidateArgs, QueryArgs};
use crate::cache::invalidate::{self, Selection};
use crate::cache::query::{self, QueryRequest};
use crate::error::Result;

fn providers(list: &[String], null: bool) -> Vec<Option<String>> {
    let mut v: Vec<Option<String>> = list.iter().cloned().map(Some).collect();
    if null {
        v.push(None);
    }
    v
}

pub async fn query(ctx: &Ctx, a: QueryArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    let req = QueryRequest {
        datasource: a.datasource,
        measure: a.measure,
        frequency: a.frequency,
        practices: a.practice,
        providers: providers(&a.provider, a.null_provider),
    };
    let r = query::query_recorded(redis, &req).await?;
    ctx.print(&r, || {
        format!(
            "{} • generation {} • {} entries • {} rows • {:.2} ms",
            if r.hit { "hit" } else { "miss" },
            r.generation,
            r.entries,
            r.rows.len(),
            r.duration_ms
        )
    });
    Ok(0)
}

pub async fn invalidate(ctx: &Ctx, a: InvalidateArgs) -> Result<i32> {
    let redis = ctx.redis().await?;
    let store = ctx.store().await?;
    store.datasource(a.datasource).await?;
    let actor = ctx.actor().await?;
    let sel = Selection {
        measure: a.measure,
        practices: a.practice,
        providers: providers(&a.provider, a.null_provider),
        frequency: a.frequency,
    };
    let r = invalidate::invalidate(redis, &actor, a.datasource, &sel).await?;
    ctx.print(&r, || {
        format!(
            "invalidated DS #{}: {} keys and {} indexes deleted, {:.2} MB freed",
            a.datasource, r.keys_deleted, r.indexes_deleted, r.memory_freed_mb
        )
    });
    Ok(0)
}
