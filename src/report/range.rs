//! The period a report covers: the last 24 hours / 7 days / 30 days (or any
//! duration up to 90 days), or `FROM..TO` in UTC, and the bucket size its
//! query figures are read in.
//!
//! Minute buckets are kept 2 days and hour buckets 90 days
//! (`cache::stats`), so a range of at most 2 days that lies within the last 2
//! days is read in minute buckets, every other range in hour buckets, and a
//! range longer than 90 days or starting more than 90 days ago is refused:
//! its query figures no longer exist.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::error::{Error, Result};
use crate::metrics::trends::{MAX_HOUR_RANGE_MS, MAX_MINUTE_RANGE_MS};

/// One day in ms.
const DAY_MS: i64 = 86_400_000;

/// The period a report is asked for, before it is pinned to the server's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportRange {
    /// The last `ms` milliseconds up to the moment the report is built
    /// (`24h`, `7d`, `30d`, or any duration up to 90 days).
    Last {
        /// Length of the period in ms.
        ms: i64,
        /// How it was written (`7d`), for titles and the one-line summary.
        label: String,
    },
    /// A fixed period in UTC, both ends inclusive (`FROM..TO`).
    Between {
        /// First millisecond of the period (ms since the epoch).
        from_ms: i64,
        /// Last millisecond of the period (ms since the epoch).
        to_ms: i64,
    },
}

impl Default for ReportRange {
    /// The last 7 days: a week of hour buckets, the usual efficiency review.
    fn default() -> Self {
        ReportRange::Last {
            ms: 7 * DAY_MS,
            label: "7d".into(),
        }
    }
}

/// A range pinned to the server's clock: what the report really covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    /// First millisecond covered (inclusive).
    pub from_ms: i64,
    /// Last millisecond covered (inclusive).
    pub to_ms: i64,
    /// Read in hour buckets (true) or minute buckets.
    pub hourly: bool,
    /// The requested end lay in the future and was moved to the report's time.
    pub clamped: bool,
}

/// Parses `2025-01-31`, `2025-01-31T10:00`, `2025-01-31T10:00:00Z`,
/// `2025-01-31 10:00:00+02:00`, … (no offset means UTC). A bare date is
/// its first millisecond, or with `end_of_day` its last.
fn parse_instant(text: &str, end_of_day: bool) -> Result<i64> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let start = d
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc().timestamp_millis())
            .ok_or_else(|| Error::Invalid(format!("`{t}` is not a valid date")))?;
        return Ok(if end_of_day {
            start + DAY_MS - 1
        } else {
            start
        });
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    let with_t = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&with_t) {
        return Ok(dt.timestamp_millis());
    }
    let naive = with_t
        .strip_suffix('Z')
        .or_else(|| with_t.strip_suffix('z'))
        .unwrap_or(&with_t);
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(naive, format) {
            return Ok(n.and_utc().timestamp_millis());
        }
    }
    Err(Error::Invalid(format!(
        "`{t}` is not an ISO date or date-time (e.g. 2025-01-31 or 2025-01-31T10:00, UTC)"
    )))
}

/// `2025-01-31T10:00:00.000Z`: how every report writes a time.
pub fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn days(ms: i64) -> String {
    let d = ms as f64 / DAY_MS as f64;
    if (d - d.round()).abs() < 0.01 {
        format!("{d:.0} days")
    } else {
        format!("{d:.1} days")
    }
}

impl ReportRange {
    /// Parses `24h`, `7d`, `30d` (any duration up to 90 days) or `FROM..TO`
    /// (ISO dates or date-times, UTC unless an offset is given; a bare TO
    /// date covers that whole day). Refuses (exit 2) an empty or reversed
    /// range and one longer than 90 days.
    pub fn parse(text: &str) -> Result<ReportRange> {
        let t = text.trim();
        let range = if let Some((from, to)) = t.split_once("..") {
            if from.trim().is_empty() || to.trim().is_empty() {
                return Err(Error::Invalid(format!(
                    "the range `{t}` needs both ends: FROM..TO, e.g. 2025-01-01..2025-01-31"
                )));
            }
            let from_ms = parse_instant(from, false)?;
            let to_ms = parse_instant(to, true)?;
            if from_ms >= to_ms {
                return Err(Error::Invalid(format!(
                    "the range `{t}` is empty: FROM ({}) must be before TO ({})",
                    iso(from_ms),
                    iso(to_ms)
                )));
            }
            ReportRange::Between { from_ms, to_ms }
        } else {
            let d = humantime::parse_duration(t).map_err(|e| {
                Error::Invalid(format!(
                    "`{t}` is not a report range: use 24h, 7d, 30d or FROM..TO ({e})"
                ))
            })?;
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if ms <= 0 {
                return Err(Error::Invalid(format!("the range `{t}` is empty")));
            }
            ReportRange::Last {
                ms,
                label: t.to_string(),
            }
        };
        range.check_length()?;
        Ok(range)
    }

    /// The last `d` (e.g. the GUI's 24 h / 7 d / 30 d choices).
    pub fn last(d: Duration) -> ReportRange {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        ReportRange::Last {
            ms,
            label: humantime::format_duration(Duration::from_millis(ms.max(0) as u64)).to_string(),
        }
    }

    /// How the range reads in a title: `7d`, or `FROM..TO` in ISO.
    pub fn label(&self) -> String {
        match self {
            ReportRange::Last { label, .. } => label.clone(),
            ReportRange::Between { from_ms, to_ms } => {
                format!("{}..{}", iso(*from_ms), iso(*to_ms))
            }
        }
    }

    fn check_length(&self) -> Result<()> {
        let length = match self {
            ReportRange::Last { ms, .. } => *ms,
            ReportRange::Between { from_ms, to_ms } => to_ms - from_ms,
        };
        if length > MAX_HOUR_RANGE_MS {
            return Err(Error::Invalid(format!(
                "the range `{}` is {} long, but query statistics are kept 90 days: choose at most 90 days",
                self.label(),
                days(length)
            )));
        }
        Ok(())
    }

    /// Pins the range to `now_ms` (Redis TIME) and picks the bucket size.
    /// Refuses a range whose statistics are gone (starting more than 90 days
    /// ago), one that starts in the future, and a reversed one.
    pub fn resolve(&self, now_ms: i64) -> Result<ResolvedRange> {
        self.check_length()?;
        let (from_ms, mut to_ms) = match self {
            ReportRange::Last { ms, .. } => (now_ms - ms, now_ms),
            ReportRange::Between { from_ms, to_ms } => (*from_ms, *to_ms),
        };
        if from_ms >= to_ms {
            return Err(Error::Invalid(format!(
                "the range `{}` is empty: FROM must be before TO",
                self.label()
            )));
        }
        if from_ms > now_ms {
            return Err(Error::Invalid(format!(
                "the range `{}` starts in the future (server time is {})",
                self.label(),
                iso(now_ms)
            )));
        }
        if from_ms < now_ms - MAX_HOUR_RANGE_MS {
            return Err(Error::Invalid(format!(
                "the range `{}` starts more than 90 days ago, but query statistics are kept 90 days: start on or after {}",
                self.label(),
                iso(now_ms - MAX_HOUR_RANGE_MS)
            )));
        }
        let clamped = to_ms > now_ms;
        if clamped {
            to_ms = now_ms;
        }
        // Minute buckets only while they still exist for the whole range.
        let hourly = crate::metrics::trends::hourly_for(from_ms, to_ms)
            || from_ms < now_ms - MAX_MINUTE_RANGE_MS;
        Ok(ResolvedRange {
            from_ms,
            to_ms,
            hourly,
            clamped,
        })
    }
}

impl FromStr for ReportRange {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ReportRange::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_558_400_000; // 2025-10-15T20:00:00Z

    #[test]
    fn presets_and_durations() {
        for (text, ms) in [("24h", DAY_MS), ("7d", 7 * DAY_MS), ("30d", 30 * DAY_MS)] {
            let r = ReportRange::parse(text).expect(text);
            let v = r.resolve(NOW).expect("resolve");
            assert_eq!((v.from_ms, v.to_ms), (NOW - ms, NOW), "{text}");
            assert_eq!(r.label(), text);
        }
        assert!(
            !ReportRange::parse("24h")
                .unwrap()
                .resolve(NOW)
                .unwrap()
                .hourly
        );
        assert!(
            !ReportRange::parse("2d")
                .unwrap()
                .resolve(NOW)
                .unwrap()
                .hourly
        );
        assert!(
            ReportRange::parse("49h")
                .unwrap()
                .resolve(NOW)
                .unwrap()
                .hourly
        );
        assert!(ReportRange::parse("90d").is_ok());
        let e = ReportRange::parse("91d").expect_err("too long");
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        assert!(e.to_string().contains("90 days"), "{e}");
        assert!(ReportRange::parse("soon").is_err());
        assert!(ReportRange::parse("0s").is_err());
    }

    #[test]
    fn from_to_dates_and_datetimes() {
        let r = ReportRange::parse("2025-10-01..2025-10-14").expect("dates");
        let ReportRange::Between { from_ms, to_ms } = r else {
            panic!("{r:?}")
        };
        assert_eq!(iso(from_ms), "2025-10-01T00:00:00.000Z");
        assert_eq!(iso(to_ms), "2025-10-14T23:59:59.999Z");
        let v = r.resolve(NOW).expect("resolve");
        assert!(v.hourly && !v.clamped);

        let r = ReportRange::parse("2025-10-15T08:00..2025-10-15 12:30:00Z").expect("times");
        let v = r.resolve(NOW).expect("resolve");
        assert_eq!(iso(v.from_ms), "2025-10-15T08:00:00.000Z");
        assert_eq!(iso(v.to_ms), "2025-10-15T12:30:00.000Z");
        assert!(!v.hourly, "a recent short range uses minute buckets");

        let r = ReportRange::parse("2025-10-15T10:00:00+02:00..2025-10-15T11:00:00+02:00")
            .expect("offsets");
        let v = r.resolve(NOW).expect("resolve");
        assert_eq!(iso(v.from_ms), "2025-10-15T08:00:00.000Z");

        // A short range older than two days: its minute buckets are gone.
        let v = ReportRange::parse("2025-10-01T08:00..2025-10-01T09:00")
            .unwrap()
            .resolve(NOW)
            .unwrap();
        assert!(v.hourly);

        // The end in the future is moved to now.
        let v = ReportRange::parse("2025-10-15..2025-10-20")
            .unwrap()
            .resolve(NOW)
            .unwrap();
        assert!(v.clamped && v.to_ms == NOW);
    }

    #[test]
    fn bad_ranges_are_usage_errors() {
        for bad in [
            "2025-10-14..2025-10-01",
            "2025-10-01T10:00..2025-10-01T10:00",
            "2025-01-01..2025-06-01",
            "2025-10-01..",
            "..2025-10-01",
            "2025-13-01..2025-13-02",
            "yesterday..today",
        ] {
            let e = ReportRange::parse(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
        // Older than the hour buckets, or in the future.
        let old = ReportRange::parse("2025-06-01..2025-06-30").expect("30 days");
        assert_eq!(old.resolve(NOW).expect_err("old").exit_code(), 2);
        let future = ReportRange::parse("2025-11-01..2025-11-02").expect("1 day");
        assert_eq!(future.resolve(NOW).expect_err("future").exit_code(), 2);
    }
}
