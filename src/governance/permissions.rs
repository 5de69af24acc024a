//! Permissions, decided from server-side facts rather than a setting:
//!
//! - `settings:read:all` (stats, health, browse, inspect, reports) is held by
//!   every identity that can connect: the database's and Redis's own access
//!   control decide who can read at all.
//! - `settings:write:all` (warm, invalidate, purge, TTL, job control,
//!   schedule, datasource and grant changes) needs a grant in the store's
//!   `grants` table for the admin identity. **Bootstrap rule:** while no
//!   `settings:write:all` grant exists at all, every identity may write, so
//!   a fresh install works; the first grant ends that.
//! - Whatever the grants say, an identity whose Redis ACL forbids writing
//!   `cache:*` / `idx:*` keys is read-only. Non-admin users may not run
//!   `ACL GETUSER`/`ACL DRYRUN` on themselves, so this is learnt from the
//!   answer to a probe: `SET <key> x NX XX` on a key each pattern covers.
//!   Redis checks the ACL before it parses the options, so a user who may
//!   not write gets NOPERM, and a user who may gets a syntax error: nothing
//!   is ever written.

use serde::Serialize;

use super::audit::AuditSink;
use super::ratelimit::Limits;
use crate::actor::{Actor, Origin};
use crate::error::Result;
use crate::keys::{self, DsId, Gen};
use crate::redis_conn::Redis;
use crate::store::Store;

/// Reading stats, health, keys and reports.
pub const PERM_READ: &str = "settings:read:all";
/// Every write: warm, invalidate, purge, TTL, schedules, datasources, grants.
pub const PERM_WRITE: &str = "settings:write:all";
/// The permissions a grant may name.
pub const PERMISSIONS: [&str; 2] = [PERM_READ, PERM_WRITE];

/// What the caller knows about the actor besides what the servers say.
#[derive(Debug, Clone)]
pub struct ActorFacts {
    /// Profile name.
    pub profile: String,
    /// Where the actions come from.
    pub origin: Origin,
    /// The profile's Redis ACL user (from the profile or the URL), for the audit.
    pub redis_user: Option<String>,
    /// The profile's rate limits (see [`Limits::from_defaults`]).
    pub limits: Limits,
}

/// What the grants table says about an identity's writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GrantState {
    /// No write grant exists yet: everyone may write.
    Bootstrap,
    /// The identity holds `settings:write:all`.
    Granted,
    /// Write grants exist, and none is for this identity.
    NotGranted,
}

/// The grants table's verdict on `identity`.
pub async fn grant_state(store: &Store, identity: &str) -> Result<GrantState> {
    if store.grant_count(PERM_WRITE).await? == 0 {
        return Ok(GrantState::Bootstrap);
    }
    Ok(if store.has_grant(identity, PERM_WRITE).await? {
        GrantState::Granted
    } else {
        GrantState::NotGranted
    })
}

/// Asks Redis whether this connection's ACL lets it write the cache's keys
/// of every datasource in `datasources` (and of datasource 0): `None` when
/// it may, or why it may not. Each datasource lives in its own slot and an
/// ACL may name keys per datasource, so each one's live and shadow entry
/// and index prefixes and its meta key are probed. NOPERM is the only
/// answer that counts; any other error (a syntax error is the expected one)
/// means the ACL allowed the command.
pub async fn redis_write_refusal(redis: &Redis, datasources: &[DsId]) -> Result<Option<String>> {
    let mut ids = vec![0];
    ids.extend(datasources.iter().copied().filter(|d| *d != 0));
    for ds in ids {
        for prefix in [
            keys::entry_prefix(ds, Gen::Live),
            keys::index_prefix(ds, Gen::Live),
            // Any fencing number stands for every shadow generation.
            keys::entry_prefix(ds, Gen::Shadow(0)),
            keys::index_prefix(ds, Gen::Shadow(0)),
            format!("{}:", keys::meta(ds)),
        ] {
            let probe = format!("{prefix}cachedeck-probe");
            let mut conn = redis.conn();
            let reply: redis::RedisResult<redis::Value> = redis::cmd("SET")
                .arg(&probe)
                .arg("x")
                .arg("NX")
                .arg("XX")
                .query_async(&mut conn)
                .await;
            if let Err(e) = reply {
                if e.code() == Some("NOPERM") {
                    let whose = if ds == 0 {
                        String::new()
                    } else {
                        format!(" of datasource {ds}")
                    };
                    return Ok(Some(format!(
                        "the Redis ACL of this profile's user forbids writing {prefix}* keys{whose} ({})",
                        e.detail().unwrap_or("NOPERM")
                    )));
                }
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    return Err(crate::error::Error::redis("checking the Redis ACL", e));
                }
            }
        }
    }
    Ok(None)
}

/// Builds the actor for the store's identity, with its write permission
/// decided from the grants and (when a Redis handle is given) the Redis ACL,
/// its rate limits, and an audit sink on the store.
pub async fn resolve_actor(
    store: &Store,
    redis: Option<&Redis>,
    facts: ActorFacts,
) -> Result<Actor> {
    let identity = store.identity().to_string();
    let mut actor = Actor::new(identity.clone(), facts.profile, facts.origin);
    actor.redis_user = facts.redis_user;
    actor.limits = facts.limits;
    actor.audit = Some(AuditSink::new(store.clone()));
    let mut reasons = Vec::new();
    if grant_state(store, &identity).await? == GrantState::NotGranted {
        reasons.push(format!(
            "{identity} holds no {PERM_WRITE} grant (ask an admin: cachedeck grant add --identity {identity} --permission {PERM_WRITE})"
        ));
    }
    if let Some(redis) = redis {
        let ids: Vec<DsId> = store.datasources().await?.iter().map(|d| d.id).collect();
        match redis_write_refusal(redis, &ids).await {
            Ok(Some(why)) => reasons.push(why),
            Ok(None) => {}
            // Redis is unreachable: it will refuse or fail on its own; the
            // grants still decide what this instance attempts.
            Err(e) => tracing::warn!("could not check the Redis ACL: {e}"),
        }
    }
    if !reasons.is_empty() {
        actor.can_write = false;
        actor.read_only_reason = Some(reasons.join("; "));
    }
    Ok(actor)
}

/// The permissions an actor holds, for `grant list` and the GUI.
pub fn held(actor: &Actor) -> Vec<&'static str> {
    if actor.can_write {
        vec![PERM_READ, PERM_WRITE]
    } else {
        vec![PERM_READ]
    }
}

/// The Redis ACL user named by a profile: its `username`, or the user in
/// the first URL.
pub fn redis_user_of(target: &crate::redis_conn::RedisTarget) -> Option<String> {
    if let Some(u) = &target.username {
        return Some(u.clone());
    }
    let first = target.urls.first()?;
    let url = url::Url::parse(first).ok()?;
    let user = url.username();
    (!user.is_empty()).then(|| user.to_string())
}
