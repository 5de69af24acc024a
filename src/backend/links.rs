//! The two connections the backend keeps (Redis and the app database): their
//! state, exponential backoff between attempts, and which errors mean "the
//! server is gone" rather than "this command failed".

use std::time::Duration;

use tokio::time::Instant;

use super::protocol::LinkState;
use crate::error::Error;

/// First wait after a failure.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The wait before attempt number `failures` (1 after the first failure):
/// 1 s, 2 s, 4 s … capped at [`BACKOFF_MAX`].
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    BACKOFF_START.saturating_mul(1u32 << shift).min(BACKOFF_MAX)
}

/// One connection and what the window should show about it.
pub struct Link<T> {
    /// The handle while connected.
    pub conn: Option<T>,
    /// What the status bar shows.
    pub state: LinkState,
    /// Failed attempts in a row (drives the backoff).
    pub failures: u32,
    /// When the next attempt is due; `None` while connected, connecting, or failed for good.
    pub next_attempt: Option<Instant>,
    /// An attempt is under way (never two at once).
    pub connecting: bool,
}

impl<T> Default for Link<T> {
    fn default() -> Self {
        Link {
            conn: None,
            state: LinkState::Connecting,
            failures: 0,
            next_attempt: Some(Instant::now()),
            connecting: false,
        }
    }
}

impl<T> Link<T> {
    /// Forgets the connection and asks for an attempt now.
    pub fn reset(&mut self) {
        *self = Link::default();
    }

    /// Records a working connection.
    pub fn up(&mut self, conn: T, label: String) {
        self.conn = Some(conn);
        self.state = LinkState::Connected { label };
        self.failures = 0;
        self.next_attempt = None;
        self.connecting = false;
    }

    /// Records a failure: drops the handle and schedules the next attempt.
    pub fn down(&mut self, reason: String) {
        self.conn = None;
        self.connecting = false;
        self.failures += 1;
        let wait = backoff(self.failures);
        self.next_attempt = Some(Instant::now() + wait);
        self.state = LinkState::Reconnecting {
            next_retry_in: wait,
            reason: crate::redact::redact(&reason),
        };
    }

    /// Records a failure no retry can fix (bad profile): waits for Reconnect.
    pub fn failed(&mut self, reason: String) {
        self.conn = None;
        self.connecting = false;
        self.next_attempt = None;
        self.state = LinkState::Failed(crate::redact::redact(&reason));
    }

    /// True when an attempt should start now.
    pub fn due(&self, now: Instant) -> bool {
        !self.connecting && self.conn.is_none() && self.next_attempt.is_some_and(|t| t <= now)
    }
}

/// Which server an error says is unreachable, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Redis does not answer.
    Redis,
    /// The app database does not answer.
    Database,
}

/// Classifies an error: a lost or refused connection (retry with backoff)
/// versus a failure of the command itself (report it).
pub fn broken(e: &Error) -> Option<Broken> {
    match e {
        Error::RedisConnect { .. } => Some(Broken::Redis),
        Error::Redis { source, .. } => {
            let lost = source.is_io_error()
                || source.is_connection_dropped()
                || source.is_connection_refusal()
                || source.is_timeout()
                || source.is_unrecoverable_error();
            lost.then_some(Broken::Redis)
        }
        Error::DbConnect { .. } => Some(Broken::Database),
        Error::Db { source, .. } => matches!(
            source,
            sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
        )
        .then_some(Broken::Database),
        _ => None,
    }
}

/// True for errors that retrying cannot fix (a malformed or missing profile).
pub fn is_permanent(e: &Error) -> bool {
    matches!(
        e,
        Error::Config(_) | Error::MigrationsNeeded(_) | Error::Invalid(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(6), Duration::from_secs(30));
        assert_eq!(backoff(60), Duration::from_secs(30));
    }

    #[test]
    fn a_down_link_waits_then_is_due() {
        let mut l: Link<()> = Link::default();
        assert!(l.due(Instant::now()));
        l.down("refused".into());
        assert!(!l.due(Instant::now()));
        assert!(l.due(Instant::now() + Duration::from_secs(2)));
        assert!(matches!(l.state, LinkState::Reconnecting { .. }));
        l.up((), "x".into());
        assert!(l.state.is_up());
        assert_eq!(l.failures, 0);
    }
}
