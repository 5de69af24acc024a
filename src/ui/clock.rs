//! The window's notion of "now", injected so relative times ("2 hours ago"),
//! countdowns and toast fading are stable in tests and snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Where the time comes from.
#[derive(Clone)]
enum Source {
    /// This machine's clock.
    System,
    /// A time set by a test, shared by every clone.
    Manual(Arc<AtomicI64>),
}

/// A clock in milliseconds since the Unix epoch; clones share a manual time.
#[derive(Clone)]
pub struct Clock {
    /// Where `now_ms` reads from.
    source: Source,
}

impl Clock {
    /// The real clock.
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
        }
    }

    /// A clock standing at `ms` until moved with [`Clock::set_ms`] or [`Clock::advance`].
    pub fn manual(ms: i64) -> Clock {
        Clock {
            source: Source::Manual(Arc::new(AtomicI64::new(ms))),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.source {
            Source::System => chrono::Utc::now().timestamp_millis(),
            Source::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock to `ms` (no effect on the system clock).
    pub fn set_ms(&self, ms: i64) {
        if let Source::Manual(t) = &self.source {
            t.store(ms, Ordering::SeqCst);
        }
    }

    /// Moves a manual clock forward.
    pub fn advance(&self, by: Duration) {
        if let Source::Manual(t) = &self.source {
            t.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }

    /// True for a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }
}

/// "just now", "45 s ago", "2 min ago", "1 hour ago", "3 days ago".
pub fn ago(elapsed_ms: i64) -> String {
    let s = elapsed_ms.max(0) / 1000;
    match s {
        0..=9 => "just now".into(),
        10..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=7199 => "1 hour ago".into(),
        7200..=86_399 => format!("{} hours ago", s / 3600),
        86_400..=172_799 => "1 day ago".into(),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// Milliseconds of an ISO-8601 time, if it parses.
pub fn parse_iso_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Local wall-clock text of a timestamp: "14:05" today, else "Mar 3 14:05".
pub fn local_time(ms: i64, now_ms: i64) -> String {
    use chrono::TimeZone as _;
    let (Some(t), Some(now)) = (
        chrono::Local.timestamp_millis_opt(ms).single(),
        chrono::Local.timestamp_millis_opt(now_ms).single(),
    ) else {
        return String::new();
    };
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %-d %H:%M").to_string()
    }
}

/// Short local text for a time axis: "Mar 3" at midnight, else "14:05".
pub fn axis_time(ms: i64) -> String {
    use chrono::{TimeZone as _, Timelike as _};
    match chrono::Local.timestamp_millis_opt(ms).single() {
        Some(t) if t.hour() == 0 && t.minute() == 0 => t.format("%b %-d").to_string(),
        Some(t) => t.format("%H:%M").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(30_000), "30 s ago");
        assert_eq!(ago(120_000), "2 min ago");
        assert_eq!(ago(3_600_000), "1 hour ago");
        assert_eq!(ago(2 * 3_600_000 + 5), "2 hours ago");
        assert_eq!(ago(3 * 86_400_000), "3 days ago");
    }

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let c = Clock::manual(1000);
        let d = c.clone();
        c.advance(Duration::from_secs(2));
        assert_eq!(d.now_ms(), 3000);
    }
}
