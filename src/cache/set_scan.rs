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
    /// Members asked for per call ([`SCAN_COUNT`] unless set).
    count: usize,
    cursor: u64,
    done: bool,
}

impl<'a> SetScan<'a> {
    pub fn new(redis: &'a Redis, set: impl Into<String>, context: &'static str) -> Self {
        SetScan {
            redis,
            set: set.into(),
            context,
            count: SCAN_COUNT,
            cursor: 0,
            done: false,
        }
    }

    /// Asks for `count` members per call instead of [`SCAN_COUNT`] (a caller
    /// that reads a whole large set right before a step that holds Redis
    /// far longer anyway).
    pub fn with_count(mut self, count: usize) -> Self {
        self.count = count;
        self
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
                    .arg(self.count),
            )
            .await?;
        self.cursor = next;
        self.done = next == 0;
        Ok(Some(batch))
    }
}
