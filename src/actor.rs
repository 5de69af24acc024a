//! Who does a write, from where, and what they may do. Every write operation in
//! the core takes an [`Actor`], so permissions, rate limits and the audit log
//! sit in one place.

use serde::Serialize;

use crate::error::{Error, Result};

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Gui,
    Cli,
    Agent,
    Schedule,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Gui => "gui",
            Origin::Cli => "cli",
            Origin::Agent => "agent",
            Origin::Schedule => "schedule",
        }
    }
}

/// The admin behind an action.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// Identity used for grants, rate limits and audit: the database user, or
    /// OS user@host for a local SQLite profile.
    pub identity: String,
    /// OS user@host of this process.
    pub os_user: String,
    /// The Redis ACL user of the profile, when one is set.
    pub redis_user: Option<String>,
    /// Profile name.
    pub profile: String,
    pub origin: Origin,
    /// Whether writes are allowed; `read_only_reason` says why not.
    pub can_write: bool,
    pub read_only_reason: Option<String>,
    /// Hourly rate limits this actor's warms and invalidations count
    /// against (`governance::resolve_actor` fills them from the profile).
    pub limits: crate::governance::Limits,
    /// Where this actor's actions and refusals are audited; `None` for
    /// actors built without a store (tests, tools), whose rows are logged.
    #[serde(skip)]
    pub audit: Option<crate::governance::audit::AuditSink>,
}

impl Actor {
    /// An actor that may write (permissions are narrowed by governance checks).
    pub fn new(identity: impl Into<String>, profile: impl Into<String>, origin: Origin) -> Actor {
        Actor {
            identity: identity.into(),
            os_user: crate::store::os_identity(),
            redis_user: None,
            profile: profile.into(),
            origin,
            can_write: true,
            read_only_reason: None,
            limits: crate::governance::Limits::off(),
            audit: None,
        }
    }

    /// Refuses a write for a read-only actor, and audits the refusal
    /// (`permission_denied`) in the background.
    pub fn require_write(&self, what: &str) -> Result<()> {
        let checked = self.check_write(what);
        if let (Err(e), Some(sink)) = (&checked, &self.audit) {
            sink.record_detached(
                self,
                crate::governance::audit::actions::PERMISSION_DENIED,
                None,
                serde_json::json!({ "attempted": what }),
                crate::governance::audit::results::DENIED,
                Some(&e.to_string()),
            );
        }
        checked
    }

    /// The permission check of [`Actor::require_write`] without the audit.
    pub fn check_write(&self, what: &str) -> Result<()> {
        if self.can_write {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "{} may not {what}: {}",
            self.identity,
            self.read_only_reason
                .as_deref()
                .unwrap_or("no settings:write:all permission")
        )))
    }
}
