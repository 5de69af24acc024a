//! Reading `cache:meta:{ds:N}:last_warm` as an application writes it: an
//! ISO-8601 time (with or without fractional seconds, `Z` or an offset, or
//! none, then taken as UTC), Unix seconds or Unix milliseconds, possibly
//! quoted (a JSON string).

use chrono::{DateTime, NaiveDateTime};

/// Unix times at or above this are milliseconds, below it seconds: 10^11 s
/// is the year 5138, 10^11 ms is March 1973, so no real warm time is
/// ambiguous.
const MS_THRESHOLD: f64 = 1e11;

/// The time in Unix milliseconds, or `None` when the text is none of the
/// forms above.
pub fn parse_last_warm(text: &str) -> Option<i64> {
    let t = text.trim().trim_matches('"').trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<f64>() {
        if !n.is_finite() || n <= 0.0 {
            return None;
        }
        let ms = if n >= MS_THRESHOLD { n } else { n * 1000.0 };
        return Some(ms.round() as i64);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_millis());
    }
    // RFC 3339 wants a `T` and a zone; applications also write a space, or
    // no zone at all (taken as UTC), or `+0200` without a colon.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
    ] {
        if let Ok(d) = DateTime::parse_from_str(t, fmt) {
            return Some(d.timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, fmt) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-10-15T20:00:00Z.
    const T: i64 = 1_760_558_400_000;

    #[test]
    fn every_form_an_application_writes() {
        let cases = [
            ("2025-10-15T20:00:00.000Z", T),
            ("2025-10-15T20:00:00Z", T),
            ("2025-10-15T20:00:00.123Z", T + 123),
            ("2025-10-15T22:00:00+02:00", T),
            ("2025-10-15T22:00:00.5+02:00", T + 500),
            ("2025-10-15T15:30:00-04:30", T),
            ("2025-10-15T22:00:00+0200", T),
            ("2025-10-15 20:00:00", T),
            ("2025-10-15T20:00:00", T),
            ("2025-10-15T20:00:00.250", T + 250),
            ("1760558400", T),
            ("1760558400.5", T + 500),
            ("1760558400000", T),
            ("1760558400123", T + 123),
            ("\"2025-10-15T20:00:00.000Z\"", T),
            (" 1760558400 \n", T),
        ];
        for (text, want) in cases {
            assert_eq!(parse_last_warm(text), Some(want), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_unknown() {
        for text in [
            "",
            "yesterday",
            "0",
            "-5",
            "NaN",
            "2025-13-40T00:00:00Z",
            "\"\"",
        ] {
            assert_eq!(parse_last_warm(text), None, "{text:?}");
        }
    }
}
