//! Reading a set in SSCAN batches (never one unbounded SMEMBERS reply), shared
//! by everything that walks index sets, shadow sets or the live-job set.

use crate::error::Result;
use crate::redis_conn::Redis;

/// Members asked for per SSCAN call: small enough that no call stalls Redis.
pub const SCAN_COUNT: usize = 500;

/// SSCAN over one set, a batch at a time.
pub struct SetScan<'a> {
    redis: &'a Redis,
    set: String,
    /// What the error says was being done.
    context: &'static str,
    cursor: u64,
    done: bool,
}

impl<'a> SetScan<'a> {
    pub fn new(redis: &'a Redis, set: impl Into<String>, context: &'static str) -> Self {
        SetScan {
            redis,
            set: set.into(),
            context,
            cursor: 0,
            done: false,
        }
    }

    /// The next batch, `None` after the last (a batch may be empty).
    pub async fn next(&mut self) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        let (next, batch): (u64, Vec<String>) = self
            .redis
            .query(
                self.context,
                redis::cmd("SSCAN")
                    .arg(&self.set)
                    .arg(self.cursor)
                    .arg("COUNT")
                    .arg(SCAN_COUNT),
            )
            .await?;
        self.cursor = next;
        self.done = next == 0;
        Ok(Some(batch))
    }
}
