//! Datasource registry changes with their permission check and audit row
//! (`datasource_changed`): what the CLI's `datasource add|edit|remove` and
//! the GUI's Configure dialog call.

use super::audit::{self, actions};
use crate::actor::Actor;
use crate::error::Result;
use crate::keys::DsId;
use crate::store::{Datasource, DatasourceInput, Store};

fn params(op: &str, d: &DatasourceInput) -> serde_json::Value {
    serde_json::json!({
        "op": op,
        "id": d.id,
        "name": d.name,
        "sql": d.sql,
        "sourceUrl": d.source_url.as_deref().map(crate::redact::url),
        "sourcePassword": d.source_password,
        "staleAfterSecs": d.stale_after_secs,
        "ttlSecs": d.ttl_secs,
        "enabled": d.enabled,
    })
}

/// Registers a datasource.
pub async fn add(store: &Store, actor: &Actor, input: &DatasourceInput) -> Result<Datasource> {
    let p = params("add", input);
    super::require_write(actor, "add a datasource", Some(input.id), p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::DATASOURCE_CHANGED,
        "add a datasource",
        Some(input.id),
        &p,
    )
    .await?;
    let r = store.add_datasource(input).await;
    intent.finish(actor, p, &r).await;
    r
}

/// Replaces a datasource's settings.
pub async fn update(store: &Store, actor: &Actor, input: &DatasourceInput) -> Result<Datasource> {
    let p = params("edit", input);
    super::require_write(actor, "edit a datasource", Some(input.id), p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::DATASOURCE_CHANGED,
        "edit a datasource",
        Some(input.id),
        &p,
    )
    .await?;
    let r = store.update_datasource(input).await;
    intent.finish(actor, p, &r).await;
    r
}

/// Removes a datasource from the registry (its cache stays until invalidated).
pub async fn remove(store: &Store, actor: &Actor, id: DsId) -> Result<()> {
    let p = serde_json::json!({ "op": "remove", "id": id });
    super::require_write(actor, "remove a datasource", Some(id), p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::DATASOURCE_CHANGED,
        "remove a datasource",
        Some(id),
        &p,
    )
    .await?;
    let r = store.remove_datasource(id).await;
    intent.finish(actor, p, &r).await;
    r
}
