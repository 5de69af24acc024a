//! Schedule times: a 5-field cron expression read in an IANA time zone,
//! with occurrences in Unix milliseconds (minute resolution) and a readable
//! preview. Daylight-saving gaps and repeats follow croner's rules.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;

use crate::error::{Error, Result};

/// Most occurrences any one enumeration visits (a `* * * * *` schedule over
/// a year-long outage is counted up to this, and said to be "at least").
pub const MAX_ENUMERATED: usize = 10_000;

/// A parsed, validated schedule time.
#[derive(Debug, Clone)]
pub struct CronSpec {
    /// The expression as the admin wrote it (trimmed).
    pub expr: String,
    /// The time zone it is read in.
    pub tz: Tz,
    /// The parsed pattern.
    cron: Cron,
}

/// A readable check of a schedule before it is saved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The expression.
    pub cron: String,
    /// The IANA zone name.
    pub tz: String,
    /// croner's English description of the pattern.
    pub description: String,
    /// The next runs, ISO-8601 in the schedule's zone.
    pub next_runs: Vec<String>,
    /// The same runs, ISO-8601 UTC.
    pub next_runs_utc: Vec<String>,
}

impl CronSpec {
    /// Parses `expr` (exactly 5 fields: minute hour day-of-month month
    /// day-of-week) in the IANA zone `tz` (`None`: UTC).
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<CronSpec> {
        let expr = expr.trim();
        let fields = expr.split_whitespace().count();
        if fields != 5 {
            return Err(Error::Invalid(format!(
                "`{expr}` has {fields} fields; a schedule needs 5: minute hour day-of-month month day-of-week, e.g. \"0 */4 * * *\""
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| Error::Invalid(format!("`{expr}` is not a valid cron expression: {e}")))?;
        let tz_name = tz.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("UTC");
        let tz = Tz::from_str(tz_name).map_err(|_| {
            Error::Invalid(format!(
                "`{tz_name}` is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)"
            ))
        })?;
        let spec = CronSpec {
            expr: expr.to_string(),
            tz,
            cron,
        };
        if spec.next_after(Utc::now().timestamp_millis()).is_none() {
            return Err(Error::Invalid(format!(
                "`{expr}` never runs (no date matches it)"
            )));
        }
        Ok(spec)
    }

    fn local(&self, ms: i64) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&self.tz))
    }

    /// The first run strictly after `ms` (Unix ms, a whole minute).
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        let t = self.local(ms)?;
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|n| n.timestamp_millis() / 60_000 * 60_000)
    }

    /// Runs in `(after_ms, through_ms]`, oldest first, at most
    /// [`MAX_ENUMERATED`]; the flag says the list was cut.
    pub fn runs_between(&self, after_ms: i64, through_ms: i64) -> (Vec<i64>, bool) {
        let mut out = Vec::new();
        let mut cur = after_ms;
        while let Some(next) = self.next_after(cur) {
            if next > through_ms {
                return (out, false);
            }
            if out.len() == MAX_ENUMERATED {
                return (out, true);
            }
            // Guard against a pattern that would not move forward.
            if next <= cur {
                break;
            }
            out.push(next);
            cur = next;
        }
        (out, false)
    }

    /// The next `n` runs after `from_ms`.
    pub fn next_runs(&self, from_ms: i64, n: usize) -> Vec<i64> {
        let mut out = Vec::with_capacity(n);
        let mut cur = from_ms;
        while out.len() < n {
            match self.next_after(cur) {
                Some(next) if next > cur => {
                    out.push(next);
                    cur = next;
                }
                _ => break,
            }
        }
        out
    }

    /// croner's English description of the pattern.
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// ISO-8601 of `ms` in the schedule's zone, e.g. `2025-01-01T05:00:00+01:00`.
    pub fn local_iso(&self, ms: i64) -> String {
        self.local(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_default()
    }

    /// A preview of the next `n` runs after `from_ms`.
    pub fn preview(&self, from_ms: i64, n: usize) -> Preview {
        let runs = self.next_runs(from_ms, n);
        Preview {
            cron: self.expr.clone(),
            tz: self.tz.name().to_string(),
            description: self.describe(),
            next_runs: runs.iter().map(|&r| self.local_iso(r)).collect(),
            next_runs_utc: runs.iter().map(|&r| crate::jobs::iso(r)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn five_fields_only() {
        assert!(CronSpec::parse("0 */4 * * *", None).is_ok());
        assert!(CronSpec::parse("0 0 */4 * * *", None).is_err());
        assert!(CronSpec::parse("0 */4 * *", None).is_err());
        assert!(CronSpec::parse("61 * * * *", None).is_err());
        let e = CronSpec::parse("0 * * * *", Some("Mars/Base"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("IANA"), "{e}");
    }

    #[test]
    fn runs_in_the_schedules_zone() {
        let s = CronSpec::parse("0 6 * * *", Some("Europe/Berlin")).unwrap();
        // Winter: 06:00 in Berlin is 05:00 UTC.
        let next = s.next_after(ms("2025-01-10T12:00:00Z")).unwrap();
        assert_eq!(next, ms("2025-01-11T05:00:00Z"));
        // Summer: 04:00 UTC.
        let next = s.next_after(ms("2025-07-10T12:00:00Z")).unwrap();
        assert_eq!(next, ms("2025-07-11T04:00:00Z"));
        assert_eq!(s.local_iso(next), "2025-07-11T06:00:00+02:00");
    }

    #[test]
    fn runs_between_is_half_open() {
        let s = CronSpec::parse("*/15 * * * *", None).unwrap();
        let (runs, cut) = s.runs_between(ms("2025-01-01T00:00:00Z"), ms("2025-01-01T01:00:00Z"));
        assert!(!cut);
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0], ms("2025-01-01T00:15:00Z"));
        assert_eq!(runs[3], ms("2025-01-01T01:00:00Z"));
        let p = s.preview(ms("2025-01-01T00:00:00Z"), 3);
        assert_eq!(p.next_runs_utc.len(), 3);
    }
}
