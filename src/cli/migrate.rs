//! `cachedeck migrate`

use super::Ctx;
use crate::error::Result;

pub async fn run(ctx: &Ctx) -> Result<i32> {
    let store = ctx.store().await?;
    store.migrate(true).await?;
    ctx.print(
        &serde_json::json!({"migrated": true, "database": store.label()}),
        || format!("store schema is up to date on {}", store.label()),
    );
    Ok(0)
}
