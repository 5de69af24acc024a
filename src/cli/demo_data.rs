//! `cachedeck demo-data`

use super::{Ctx, DemoDataArgs};
use crate::error::Result;
use crate::source::demo;
use crate::store::DatasourceInput;

pub async fn run(ctx: &Ctx, args: DemoDataArgs) -> Result<i32> {
    if let Some(u) = &args.source_url {
        // It would be registered as the datasource's source: no password.
        crate::source::password::check_source_url(u)?;
    }
    let store = ctx.store().await?;
    let url = match &args.source_url {
        Some(u) => u.clone(),
        None => ctx.database_url().await?,
    };
    let summary = demo::create(&url, &args.table, args.rows, args.replace).await?;
    let input = DatasourceInput {
        id: args.datasource_id,
        name: format!("Demo analytics ({})", args.table),
        source_url: args.source_url.clone(),
        source_password: None,
        sql: demo::datasource_sql(&args.table, None),
        stale_after_secs: 4 * 3600,
        ttl_secs: 48 * 3600,
        enabled: true,
        statement_timeout_secs: crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    };
    let ds = match store.datasource(input.id).await {
        Ok(_) => store.update_datasource(&input).await?,
        Err(crate::Error::NoSuchDatasource(_)) => store.add_datasource(&input).await?,
        Err(e) => return Err(e),
    };
    ctx.print(
        &serde_json::json!({"demo": summary, "datasource": ds}),
        || {
            format!(
                "created {} with {} rows ({} practices, {} groups) in {} ms; registered datasource #{} \"{}\"",
                summary.table, summary.rows, summary.practices, summary.groups, summary.duration_ms, ds.id, ds.name
            )
        },
    );
    Ok(0)
}
