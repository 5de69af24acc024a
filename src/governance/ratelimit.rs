//! Rate limits: a sliding window per action and admin identity, kept in a
//! Redis sorted set (`keys::rate_limit`) so every window, CLI and agent of
//! the same identity shares one budget. One Lua script prunes, counts and
//! adds atomically with Redis `TIME`, so two racing processes can never
//! exceed the limit together.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use serde::Serialize;

use crate::actor::{Actor, Origin};
use crate::config::Defaults;
use crate::error::{Error, Result};
use crate::keys::{self, DsId};
use crate::redis_conn::Redis;

/// The window every limit counts over.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// Env var that overrides the profile's warm limit (0 turns it off).
pub const WARM_ENV: &str = "CACHEDECK_WARM_RATE_LIMIT";
/// Env var that overrides the profile's invalidate limit (0 turns it off).
pub const INVALIDATE_ENV: &str = "CACHEDECK_INVALIDATE_RATE_LIMIT";

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/ratelimit.lua")));

/// The limits an actor's writes count against, per hour; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Warm operations per hour (a Warm All or a warm of a list of
    /// datasources is one; skipped and refused warms cost nothing).
    pub warm_per_hour: u32,
    /// Invalidations per hour.
    pub invalidate_per_hour: u32,
}

impl Limits {
    /// No limits: tests, tools, and actors built without a profile.
    pub fn off() -> Limits {
        Limits::default()
    }

    /// The profile's limits with `CACHEDECK_WARM_RATE_LIMIT` and
    /// `CACHEDECK_INVALIDATE_RATE_LIMIT` applied over them.
    pub fn from_defaults(d: &Defaults) -> Result<Limits> {
        Ok(Limits {
            warm_per_hour: env_limit(WARM_ENV)?.unwrap_or(d.warm_rate_limit),
            invalidate_per_hour: env_limit(INVALIDATE_ENV)?.unwrap_or(d.invalidate_rate_limit),
        })
    }
}

fn env_limit(name: &str) -> Result<Option<u32>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse::<u32>().map(Some).map_err(|_| {
            Error::Config(format!(
                "{name}=`{v}` is not a number of operations per hour (0 turns the limit off)"
            ))
        }),
        Err(_) => Ok(None),
    }
}

/// The rate-limited actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RateAction {
    /// Warming datasources (one submission counts once).
    Warm,
    /// Invalidating a datasource or part of it.
    Invalidate,
}

impl RateAction {
    /// The name in the Redis key and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            RateAction::Warm => "warm",
            RateAction::Invalidate => "invalidate",
        }
    }

    /// This action's limit in `limits`.
    pub fn limit(self, limits: &Limits) -> u32 {
        match self {
            RateAction::Warm => limits.warm_per_hour,
            RateAction::Invalidate => limits.invalidate_per_hour,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            RateAction::Warm => "warm operations",
            RateAction::Invalidate => "invalidations",
        }
    }
}

/// What one attempt to take from a window found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the units were taken.
    pub allowed: bool,
    /// Units in the window after the attempt.
    pub used: u64,
    /// When refused: milliseconds until enough units leave the window;
    /// `None` when the request is larger than the whole limit.
    pub retry_after_ms: Option<u64>,
}

/// Takes `n` units from the window of `action`/`identity` if `limit` allows
/// all of them (none otherwise). Atomic across every process.
pub async fn take(
    redis: &Redis,
    action: &str,
    identity: &str,
    limit: u32,
    window: Duration,
    n: u32,
) -> Result<Decision> {
    let member = uuid::Uuid::new_v4().simple().to_string();
    let mut conn = redis.conn();
    let (ok, used, retry): (i64, i64, i64) = TAKE
        .key(keys::rate_limit(action, identity))
        .arg(limit)
        .arg(window.as_millis() as u64)
        .arg(n)
        .arg(member)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("checking the rate limit", e))?;
    Ok(Decision {
        allowed: ok == 1,
        used: used.max(0) as u64,
        retry_after_ms: (ok != 1 && retry >= 0).then_some(retry as u64),
    })
}

/// Forgets the window of `action`/`identity` (an alert that could not be
/// delivered is tried again at the next check).
pub async fn reset(redis: &Redis, action: &str, identity: &str) -> Result<()> {
    redis
        .query::<()>(
            "resetting a rate limit",
            redis::cmd("DEL").arg(keys::rate_limit(action, identity)),
        )
        .await
}

/// Counts `n` operations of `action` against the actor's hourly limit, or
/// refuses with [`Error::RateLimited`] saying when it frees (and records
/// the refusal as `rate_limited`). Scheduled warms and a limit of 0 are not
/// counted.
pub async fn consume(
    redis: &Redis,
    actor: &Actor,
    action: RateAction,
    n: u32,
    ds: Option<DsId>,
) -> Result<()> {
    let limit = action.limit(&actor.limits);
    if limit == 0 || n == 0 || actor.origin == Origin::Schedule {
        return Ok(());
    }
    let d = take(redis, action.as_str(), &actor.identity, limit, WINDOW, n).await?;
    if d.allowed {
        return Ok(());
    }
    let err = match d.retry_after_ms {
        Some(ms) => {
            let at = chrono::Utc::now() + chrono::Duration::milliseconds(ms as i64);
            Error::RateLimited {
                what: format!(
                    "{} may do {limit} {} per hour and has done {} in the last hour; {} more would exceed it (the next frees at {} UTC)",
                    actor.identity,
                    action.noun(),
                    d.used,
                    n,
                    at.format("%H:%M:%S")
                ),
                retry_after_secs: ms.div_ceil(1000).max(1),
            }
        }
        None => Error::RateLimited {
            what: format!(
                "{n} {} at once is more than the limit of {limit} per hour for {} (raise the profile's {}_rate_limit or {})",
                action.noun(),
                actor.identity,
                action.as_str(),
                match action {
                    RateAction::Warm => WARM_ENV,
                    RateAction::Invalidate => INVALIDATE_ENV,
                }
            ),
            retry_after_secs: WINDOW.as_secs(),
        },
    };
    super::audit::record_via(
        actor,
        super::audit::actions::RATE_LIMITED,
        ds,
        serde_json::json!({
            "attempted": action.as_str(),
            "units": n,
            "limit": limit,
            "used": d.used,
            "retryAfterMs": d.retry_after_ms,
        }),
        super::audit::results::RATE_LIMITED,
        Some(&err.to_string()),
    )
    .await;
    Err(err)
}
