//! Reading a set in SSCAN batches (never one unbounded SMEMBERS reply), shared
//! by everything that walks index sets, shadow sets or the live-job set.
//!
//! Members are read as bytes: a member that is not UTF-8, or that the
//! caller's validity check rejects (wrong prefix, another datasource's
//! name), was written by something else. It is skipped and counted, never an
//! error, so a foreign member cannot stop a warm, an invalidation or a
//! health check.

use crate::error::Result;
use crate::redis_conn::Redis;

/// Members asked for per SSCAN call: small enough that no call stalls Redis.
pub const SCAN_COUNT: usize = 500;

/// Which member names a scan accepts.
type Validity<'a> = Box<dyn Fn(&str) -> bool + Send + Sync + 'a>;

/// SSCAN over one set, a batch at a time.
pub struct SetScan<'a> {
    redis: &'a Redis,
    set: String,
    /// What the error says was being done.
    context: &'static str,
    cursor: u64,
    done: bool,
    /// Which names the caller accepts (besides being UTF-8).
    valid: Option<Validity<'a>>,
    /// Members skipped so far: not UTF-8, or rejected by `valid`.
    skipped: u64,
    /// The first skipped member, for a report (raw bytes).
    first_skipped: Option<Vec<u8>>,
}

impl<'a> SetScan<'a> {
    pub fn new(redis: &'a Redis, set: impl Into<String>, context: &'static str) -> Self {
        SetScan {
            redis,
            set: set.into(),
            context,
            cursor: 0,
            done: false,
            valid: None,
            skipped: 0,
            first_skipped: None,
        }
    }

    /// Yields only the names `valid` accepts; the others are skipped and
    /// counted like members that are not UTF-8.
    pub fn only(mut self, valid: impl Fn(&str) -> bool + Send + Sync + 'a) -> Self {
        self.valid = Some(Box::new(valid));
        self
    }

    /// Members skipped so far (not UTF-8, or not valid names).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The first member skipped, as raw bytes.
    pub fn first_skipped(&self) -> Option<&[u8]> {
        self.first_skipped.as_deref()
    }

    /// The next batch of valid names, `None` after the last (a batch may be
    /// empty).
    pub async fn next(&mut self) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        let (next, batch): (u64, Vec<Vec<u8>>) = self
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
        let mut names = Vec::with_capacity(batch.len());
        for member in batch {
            match String::from_utf8(member) {
                Ok(name) if self.valid.as_ref().is_none_or(|ok| ok(&name)) => names.push(name),
                Ok(name) => self.skip(name.into_bytes()),
                Err(e) => self.skip(e.into_bytes()),
            }
        }
        Ok(Some(names))
    }

    fn skip(&mut self, member: Vec<u8>) {
        self.skipped += 1;
        if self.first_skipped.is_none() {
            self.first_skipped = Some(member);
        }
    }
}
