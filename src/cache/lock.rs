//! The warm lock `lock:shadow:warm:{ds:N}`: set-if-absent with a lease,
//! renewed while the job runs, released only by its holder. Every
//! acquisition also takes the next fencing number
//! (`lock:shadow:warm:{ds:N}:fence`), which names the holder's shadow keys
//! and which the swap WATCHes.

use std::time::Duration;

use super::scripts;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Fence};
use crate::redis_conn::Redis;

/// How long a lease lasts without renewal; a crashed holder's lock frees
/// itself after this.
pub const LEASE: Duration = Duration::from_secs(30);

/// Takes the lock for `job_id`, or says who holds it.
pub async fn acquire(redis: &Redis, ds: DsId, job_id: &str, lease: Duration) -> Result<()> {
    acquire_fenced(redis, ds, job_id, lease).await.map(|_| ())
}

/// Takes the lock for `job_id` and returns its fencing number (one more
/// than any earlier holder's), or says who holds it.
pub async fn acquire_fenced(
    redis: &Redis,
    ds: DsId,
    job_id: &str,
    lease: Duration,
) -> Result<Fence> {
    let mut conn = redis.conn();
    let (taken, value): (i64, String) = scripts::ACQUIRE
        .key(keys::warm_lock(ds))
        .key(keys::warm_fence(ds))
        .arg(job_id)
        .arg(lease.as_millis() as u64)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("taking the warm lock", e))?;
    if taken == 1 {
        return value.parse().map_err(|_| {
            Error::Invalid(format!(
                "the warm lock's fencing counter of datasource {ds} holds {value:?}, not a number"
            ))
        });
    }
    let holder = if value.is_empty() {
        "(just released)".into()
    } else {
        value
    };
    Err(Error::AlreadyWarming { ds, holder })
}

/// The job id holding the lock, if any.
pub async fn holder(redis: &Redis, ds: DsId) -> Result<Option<String>> {
    redis
        .query(
            "reading the warm lock",
            redis::cmd("GET").arg(keys::warm_lock(ds)),
        )
        .await
}

/// Extends the lease; `false` when this job no longer holds the lock.
pub async fn renew(redis: &Redis, ds: DsId, job_id: &str, lease: Duration) -> Result<bool> {
    let mut conn = redis.conn();
    let n: i64 = scripts::RENEW
        .key(keys::warm_lock(ds))
        .arg(job_id)
        .arg(lease.as_millis() as u64)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("renewing the warm lock", e))?;
    Ok(n == 1)
}

/// Releases the lock if this job still holds it.
pub async fn release(redis: &Redis, ds: DsId, job_id: &str) -> Result<()> {
    let mut conn = redis.conn();
    let _: i64 = scripts::RELEASE
        .key(keys::warm_lock(ds))
        .arg(job_id)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| Error::redis("releasing the warm lock", e))?;
    Ok(())
}

/// The seed application's warm lock as read: its key's remaining lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLock {
    /// The key (`lock:shadow:warm:<id>`), named in messages.
    pub key: String,
    /// Its PTTL in ms (-1: no expiry).
    pub ttl_ms: i64,
}

/// The application's warm lock of `ds` when it is held. One command on its
/// own: in a cluster the key has no hash tag and lives in another slot than
/// the datasource's keys, so it cannot join their transaction.
pub async fn app_lock(redis: &Redis, ds: DsId) -> Result<Option<AppLock>> {
    let key = keys::app_warm_lock(ds);
    let ttl: i64 = redis
        .query(
            "reading the application's warm lock",
            redis::cmd("PTTL").arg(&key),
        )
        .await?;
    // -2: no such key.
    Ok((ttl != -2).then_some(AppLock { key, ttl_ms: ttl }))
}

/// Fails with [`Error::AppWarming`] while the application's warm lock of
/// `ds` is held.
pub async fn check_app_lock(redis: &Redis, ds: DsId) -> Result<()> {
    match app_lock(redis, ds).await? {
        Some(l) => Err(Error::AppWarming {
            ds,
            key: l.key,
            ttl_ms: l.ttl_ms,
        }),
        None => Ok(()),
    }
}
