//! How long job heartbeats, run slots and warm leases last, and how often a
//! waiting job asks for a slot. The defaults hold in production; each may be
//! shortened through an environment variable so tests of dead and stalled
//! processes finish in seconds.

use std::sync::LazyLock;
use std::time::Duration;

/// Timings every job of this process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// A heartbeat older than this means the job's process stopped
    /// (`CACHEDECK_JOB_STALE_MS`).
    pub stale_ms: i64,
    /// Lease of a run slot, renewed at every progress tick
    /// (`CACHEDECK_SLOT_LEASE_MS`).
    pub slot_lease_ms: i64,
    /// How often a queued job asks for a slot (`CACHEDECK_CLAIM_POLL_MS`).
    pub claim_poll: Duration,
    /// Lease of the warm lock a job takes (`CACHEDECK_WARM_LEASE_MS`).
    pub warm_lease: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            stale_ms: super::STALE_MS,
            slot_lease_ms: 15_000,
            claim_poll: Duration::from_millis(300),
            warm_lease: crate::cache::lock::LEASE,
        }
    }
}

impl Timing {
    /// The defaults with the environment's overrides (positive integers of
    /// milliseconds; anything else is ignored).
    pub fn from_env() -> Timing {
        let ms = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&v| v > 0)
        };
        let d = Timing::default();
        Timing {
            stale_ms: ms("CACHEDECK_JOB_STALE_MS").map_or(d.stale_ms, |v| v as i64),
            slot_lease_ms: ms("CACHEDECK_SLOT_LEASE_MS").map_or(d.slot_lease_ms, |v| v as i64),
            claim_poll: ms("CACHEDECK_CLAIM_POLL_MS").map_or(d.claim_poll, Duration::from_millis),
            warm_lease: ms("CACHEDECK_WARM_LEASE_MS").map_or(d.warm_lease, Duration::from_millis),
        }
    }
}

static TIMING: LazyLock<Timing> = LazyLock::new(Timing::from_env);

/// This process's timings (read from the environment once).
pub fn timing() -> &'static Timing {
    &TIMING
}

/// Env var that overrides `defaults.warm_timeout` in milliseconds (tests).
pub const WARM_TIMEOUT_ENV: &str = "CACHEDECK_WARM_TIMEOUT_MS";

/// The longest a warm job may run: `CACHEDECK_WARM_TIMEOUT_MS` when set,
/// otherwise the profile's `defaults.warm_timeout`.
pub fn warm_timeout(d: &crate::config::Defaults) -> crate::error::Result<Duration> {
    if let Some(ms) = std::env::var(WARM_TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
    {
        return Ok(Duration::from_millis(ms));
    }
    let t = crate::config::parse_duration(&d.warm_timeout)
        .map_err(|e| crate::error::Error::Config(format!("defaults.warm_timeout: {e}")))?;
    if t.is_zero() {
        return Err(crate::error::Error::Config(
            "defaults.warm_timeout is 0: give a duration like 30m".into(),
        ));
    }
    Ok(t)
}
