//! Governance: who may write ([`permissions`]), what everyone did or was
//! refused ([`audit`]), how often they may do it ([`ratelimit`]), and the
//! warms that run by themselves ([`schedules`], [`scheduler`], the agent's
//! health [`alerts`]).
//!
//! Every write path of the core goes through [`require_write`] (or
//! [`crate::actor::Actor::require_write`], which audits a refusal in the
//! background) and records its outcome with [`audit::record`].

pub mod alerts;
pub mod audit;
pub mod cron;
pub mod datasources;
pub mod grants;
mod http;
pub mod permissions;
pub mod ratelimit;
pub mod scheduler;
pub mod schedules;

pub use permissions::{ActorFacts, PERM_READ, PERM_WRITE, resolve_actor};
pub use ratelimit::{Limits, RateAction};

use crate::actor::Actor;
use crate::error::Result;
use crate::keys::DsId;

/// Refuses a write for an actor that may not write, recording the refusal
/// (`permission_denied`, with the datasource and parameters) before it
/// returns. The awaited twin of [`Actor::require_write`] for callers that
/// know the datasource.
pub async fn require_write(
    actor: &Actor,
    what: &str,
    ds: Option<DsId>,
    params: serde_json::Value,
) -> Result<()> {
    match actor.check_write(what) {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut params = params;
            if let serde_json::Value::Object(m) = &mut params {
                m.insert("attempted".into(), what.into());
            } else {
                params = serde_json::json!({ "attempted": what, "params": params });
            }
            audit::record_via(
                actor,
                audit::actions::PERMISSION_DENIED,
                ds,
                params,
                audit::results::DENIED,
                Some(&e.to_string()),
            )
            .await;
            Err(e)
        }
    }
}
