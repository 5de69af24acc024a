//! How numbers, sizes and durations read in the window: always with units.

/// `12,345`
pub fn group(n: u64) -> String {
    crate::text::thousands(n)
}

/// `12,345` for signed counts (negative never expected, shown as 0).
pub fn group_i(n: i64) -> String {
    group(n.max(0) as u64)
}

/// `1 query`, `4,000 queries`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", group(n))
    }
}

/// Megabytes with a precision that suits the size: `0.42 MB`, `12.3 MB`, `1,024 MB`.
pub fn mb(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} MB")
    } else if value < 100.0 {
        format!("{value:.1} MB")
    } else {
        format!("{} MB", group(value.round() as u64))
    }
}

/// Bytes as megabytes.
pub fn bytes_mb(bytes: u64) -> String {
    mb(bytes as f64 / (1024.0 * 1024.0))
}

/// Percent with one decimal: `95.2%`.
pub fn percent(p: f64) -> String {
    format!("{p:.1}%")
}

/// Milliseconds for query times: `0.84 ms`, `12.5 ms`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// A duration in ms as people say it: `850 ms`, `4.2 s`, `3 min 20 s`, `2 h 5 min`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    format!("{} h {} min", s / 3600, (s % 3600) / 60)
}

/// A stale-after or TTL in seconds, short: `4 h`, `90 min`, `2 d`.
pub fn span_secs(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 86_400 && s % 86_400 == 0 {
        format!("{} d", s / 86_400)
    } else if s >= 3600 && s % 3600 == 0 {
        format!("{} h", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// The same span in the syntax the duration fields accept: `4h`, `90m`, `2d`.
pub fn span_input(secs: i64) -> String {
    let s = secs.max(0);
    if s >= 86_400 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s >= 3600 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s >= 60 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_always_there() {
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(mb(0.4219), "0.42 MB");
        assert_eq!(mb(12.34), "12.3 MB");
        assert_eq!(mb(2048.0), "2,048 MB");
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(4200), "4.2 s");
        assert_eq!(duration_ms(200_000), "3 min 20 s");
        assert_eq!(span_secs(4 * 3600), "4 h");
        assert_eq!(span_input(90 * 60), "90m");
        assert_eq!(millis(0.843), "0.84 ms");
    }
}
