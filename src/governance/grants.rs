//! Managing permission grants (itself a write action, audited as
//! `grant_changed`).
//!
//! The first `settings:write:all` grant ends the bootstrap state in which
//! everyone may write; so that it cannot lock its author out, adding it
//! also grants `settings:write:all` to the identity adding it.

use serde::Serialize;

use super::audit::{self, actions};
use super::permissions::{self, GrantState, PERM_WRITE, PERMISSIONS};
use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::store::{Grant, Store};

/// What `grant add` did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantChange {
    /// The grants that were added (or removed), in order.
    pub changed: Vec<Grant>,
    /// Grants that were asked for but already held (or already absent).
    pub unchanged: Vec<String>,
    /// A sentence for people, e.g. about the bootstrap rule.
    pub note: Option<String>,
}

/// Every grant and whether the bootstrap rule is in force.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantList {
    /// True while no write grant exists, so every identity may write.
    pub bootstrap: bool,
    /// The grants.
    pub grants: Vec<Grant>,
    /// The identity asking and what it holds now.
    pub you: You,
}

/// The caller's own standing, shown by `grant list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct You {
    /// The admin identity.
    pub identity: String,
    /// The permissions held.
    pub permissions: Vec<&'static str>,
    /// Why writes are refused, when they are.
    pub read_only_reason: Option<String>,
}

fn check_permission(permission: &str) -> Result<()> {
    if PERMISSIONS.contains(&permission) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{permission}` is not a permission (one of: {})",
            PERMISSIONS.join(", ")
        )))
    }
}

/// Lists the grants.
pub async fn list(store: &Store, actor: &Actor) -> Result<GrantList> {
    let grants = store.grants().await?;
    Ok(GrantList {
        bootstrap: permissions::grant_state(store, &actor.identity).await? == GrantState::Bootstrap,
        grants,
        you: You {
            identity: actor.identity.clone(),
            permissions: permissions::held(actor),
            read_only_reason: actor.read_only_reason.clone(),
        },
    })
}

/// Grants `permission` to `identity`.
pub async fn add(
    store: &Store,
    actor: &Actor,
    identity: &str,
    permission: &str,
) -> Result<GrantChange> {
    check_permission(permission)?;
    let identity = identity.trim();
    if identity.is_empty() {
        return Err(Error::Invalid(
            "name the identity to grant to (--identity)".into(),
        ));
    }
    let p = serde_json::json!({ "op": "add", "identity": identity, "permission": permission });
    super::require_write(actor, "change permission grants", None, p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::GRANT_CHANGED,
        "change permission grants",
        None,
        &p,
    )
    .await?;
    let result = async {
        let mut change = GrantChange {
            changed: Vec::new(),
            unchanged: Vec::new(),
            note: None,
        };
        let first_write =
            permission == PERM_WRITE && store.grant_count(PERM_WRITE).await? == 0 && identity != actor.identity;
        if first_write && store.add_grant(&actor.identity, PERM_WRITE, &actor.identity).await? {
            change.note = Some(format!(
                "this is the first {PERM_WRITE} grant, which ends the bootstrap rule (everyone may write); {} was granted it too so it keeps write access",
                actor.identity
            ));
            change.changed.push(find(store, &actor.identity, PERM_WRITE).await?);
        }
        if store.add_grant(identity, permission, &actor.identity).await? {
            change.changed.push(find(store, identity, permission).await?);
        } else {
            change.unchanged.push(format!("{identity} already holds {permission}"));
        }
        Ok(change)
    }
    .await;
    intent.finish(actor, p, &result).await;
    result
}

/// Withdraws `permission` from `identity`. Removing the last write grant
/// brings the bootstrap rule back (everyone may write again).
pub async fn remove(
    store: &Store,
    actor: &Actor,
    identity: &str,
    permission: &str,
) -> Result<GrantChange> {
    check_permission(permission)?;
    let p = serde_json::json!({ "op": "remove", "identity": identity, "permission": permission });
    super::require_write(actor, "change permission grants", None, p.clone()).await?;
    let intent = audit::begin(
        actor,
        actions::GRANT_CHANGED,
        "change permission grants",
        None,
        &p,
    )
    .await?;
    let result = async {
        let before = store.grants().await?;
        let removed = store.remove_grant(identity, permission).await?;
        let mut change = GrantChange {
            changed: before
                .into_iter()
                .filter(|g| removed && g.identity == identity && g.permission == permission)
                .collect(),
            unchanged: Vec::new(),
            note: None,
        };
        if !removed {
            change.unchanged.push(format!("{identity} did not hold {permission}"));
        } else if permission == PERM_WRITE && store.grant_count(PERM_WRITE).await? == 0 {
            change.note = Some(format!(
                "no {PERM_WRITE} grant is left: the bootstrap rule is back and every identity may write"
            ));
        }
        Ok(change)
    }
    .await;
    intent.finish(actor, p, &result).await;
    result
}

async fn find(store: &Store, identity: &str, permission: &str) -> Result<Grant> {
    store
        .grants()
        .await?
        .into_iter()
        .find(|g| g.identity == identity && g.permission == permission)
        .ok_or_else(|| Error::Invalid(format!("the grant of {permission} to {identity} vanished")))
}
