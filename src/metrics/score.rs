//! The seed's cache health scoring algorithm, with two changes:
//!
//! 1. The age bands scale with the datasource's own stale-after: their edges
//!    are `stale_after_minutes × {0.25, 0.5, 1, 1.5, 3}` (at the seed's 4 h
//!    that is exactly 60 / 120 / 240 / 360 / 720 minutes), so a datasource
//!    refreshed daily is not "stale" after 6 hours.
//! 2. A part with no data (the hit rate before the first query) is left out and
//!    the total is scaled to 100 over the parts that have data, so a freshly
//!    warmed cache nobody has queried yet scores 100, not 60.
//!
//! Labels: ≥ 90 excellent, ≥ 75 good, ≥ 50 degraded, ≥ 25 stale, else cold;
//! a cache that is not warm is cold with score 0.

use super::types::{Health, HealthScore};

/// Maximum points of the age part.
pub const AGE_MAX: f64 = 40.0;
/// Maximum points of the hit-rate part.
pub const HIT_RATE_MAX: f64 = 40.0;
/// Maximum points of the coverage part.
pub const COVERAGE_MAX: f64 = 20.0;

/// Fractions of stale-after at which the age score drops to the next band.
pub const AGE_BAND_FRACTIONS: [f64; 5] = [0.25, 0.5, 1.0, 1.5, 3.0];
/// Age points inside each band (the last one: beyond every edge).
pub const AGE_BAND_SCORES: [f64; 6] = [40.0, 35.0, 30.0, 20.0, 10.0, 0.0];

/// What the score is computed from (a subset of `DatasourceCacheMetrics`),
/// so the GUI and tests can score without Redis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreInput {
    /// Whether the live generation exists (master index and meta present);
    /// a cache that is not warm is cold whatever the other inputs say.
    pub is_warm: bool,
    /// Minutes since the last swap; `None` when never warmed, or warm but
    /// of unknown age (the part is then left out).
    pub age_minutes: Option<f64>,
    /// The datasource's stale-after in minutes: the age bands scale with it.
    pub stale_after_minutes: f64,
    /// Hit rate in percent since the last warm; `None` with no queries yet
    /// (the part is then left out).
    pub hit_rate: Option<f64>,
    /// Distinct measures cached (10 coverage points when > 0).
    pub unique_measures: u64,
    /// Distinct practices cached (10 coverage points when > 0).
    pub unique_practices: u64,
}

/// Points of the age part for `age_minutes` with this stale-after.
pub fn age_score(age_minutes: f64, stale_after_minutes: f64) -> f64 {
    for (i, fraction) in AGE_BAND_FRACTIONS.iter().enumerate() {
        if age_minutes < stale_after_minutes * fraction {
            return AGE_BAND_SCORES[i];
        }
    }
    AGE_BAND_SCORES[AGE_BAND_SCORES.len() - 1]
}

/// Points of the hit-rate part for a hit rate in percent.
pub fn hit_rate_score(hit_rate: f64) -> f64 {
    if hit_rate >= 95.0 {
        40.0
    } else if hit_rate >= 90.0 {
        35.0
    } else if hit_rate >= 80.0 {
        30.0
    } else if hit_rate >= 70.0 {
        20.0
    } else if hit_rate >= 50.0 {
        10.0
    } else {
        0.0
    }
}

/// Points of the coverage part.
pub fn coverage_score(unique_measures: u64, unique_practices: u64) -> f64 {
    let m = if unique_measures > 0 { 10.0 } else { 0.0 };
    let p = if unique_practices > 0 { 10.0 } else { 0.0 };
    m + p
}

/// The label of a (scaled) score.
pub fn label(score: f64) -> Health {
    if score >= 90.0 {
        Health::Excellent
    } else if score >= 75.0 {
        Health::Good
    } else if score >= 50.0 {
        Health::Degraded
    } else if score >= 25.0 {
        Health::Stale
    } else {
        Health::Cold
    }
}

/// Scores one datasource (see the module docs).
pub fn score(input: &ScoreInput) -> HealthScore {
    if !input.is_warm {
        return HealthScore {
            health: Health::Cold,
            score: 0.0,
            age_score: None,
            hit_rate_score: None,
            coverage_score: None,
        };
    };
    // A warm cache of unknown age (written by another tool, no last_warm
    // and no expiry to estimate it from) leaves the age part out.
    let age_part = input
        .age_minutes
        .map(|age| age_score(age.max(0.0), input.stale_after_minutes));
    let hit_part = input.hit_rate.map(hit_rate_score);
    let coverage_part = coverage_score(input.unique_measures, input.unique_practices);

    let mut got = coverage_part;
    let mut max = COVERAGE_MAX;
    if let Some(a) = age_part {
        got += a;
        max += AGE_MAX;
    }
    if let Some(h) = hit_part {
        got += h;
        max += HIT_RATE_MAX;
    }
    // Multiply first: every part is a multiple of 5, so 45 × 100 / 60 is
    // exactly 75 and a band edge is never missed by a rounding error.
    let scaled = got * 100.0 / max;
    HealthScore {
        health: label(scaled),
        score: (scaled * 100.0).round() / 100.0,
        age_score: age_part,
        hit_rate_score: hit_part,
        coverage_score: Some(coverage_part),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(age: f64, hit: Option<f64>) -> ScoreInput {
        ScoreInput {
            is_warm: true,
            age_minutes: Some(age),
            stale_after_minutes: 240.0,
            hit_rate: hit,
            unique_measures: 3,
            unique_practices: 7,
        }
    }

    #[test]
    fn age_bands_at_the_seed_stale_after_are_the_seed_minutes() {
        let cases = [
            (0.0, 40.0),
            (59.99, 40.0),
            (60.0, 35.0),
            (119.99, 35.0),
            (120.0, 30.0),
            (239.99, 30.0),
            (240.0, 20.0),
            (359.99, 20.0),
            (360.0, 10.0),
            (719.99, 10.0),
            (720.0, 0.0),
            (100_000.0, 0.0),
        ];
        for (age, want) in cases {
            assert_eq!(
                age_score(age, 240.0),
                want,
                "age {age} min at stale-after 240"
            );
        }
    }

    #[test]
    fn age_bands_scale_with_stale_after() {
        // Daily refresh: edges 360 / 720 / 1440 / 2160 / 4320.
        let cases = [
            (359.99, 40.0),
            (360.0, 35.0),
            (719.99, 35.0),
            (720.0, 30.0),
            (1439.99, 30.0),
            (1440.0, 20.0),
            (2159.99, 20.0),
            (2160.0, 10.0),
            (4319.99, 10.0),
            (4320.0, 0.0),
        ];
        for (age, want) in cases {
            assert_eq!(
                age_score(age, 1440.0),
                want,
                "age {age} min at stale-after 1440"
            );
        }
        // Ten minutes: edges 2.5 / 5 / 10 / 15 / 30.
        assert_eq!(age_score(2.49, 10.0), 40.0);
        assert_eq!(age_score(2.5, 10.0), 35.0);
        assert_eq!(age_score(9.99, 10.0), 30.0);
        assert_eq!(age_score(10.0, 10.0), 20.0);
        assert_eq!(age_score(29.99, 10.0), 10.0);
        assert_eq!(age_score(30.0, 10.0), 0.0);
    }

    #[test]
    fn hit_rate_bands() {
        let cases = [
            (100.0, 40.0),
            (95.0, 40.0),
            (94.99, 35.0),
            (90.0, 35.0),
            (89.99, 30.0),
            (80.0, 30.0),
            (79.99, 20.0),
            (70.0, 20.0),
            (69.99, 10.0),
            (50.0, 10.0),
            (49.99, 0.0),
            (0.0, 0.0),
        ];
        for (rate, want) in cases {
            assert_eq!(hit_rate_score(rate), want, "hit rate {rate}%");
        }
    }

    #[test]
    fn coverage_points() {
        assert_eq!(coverage_score(0, 0), 0.0);
        assert_eq!(coverage_score(1, 0), 10.0);
        assert_eq!(coverage_score(0, 1), 10.0);
        assert_eq!(coverage_score(5, 9), 20.0);
    }

    #[test]
    fn label_thresholds() {
        let cases = [
            (100.0, Health::Excellent),
            (90.0, Health::Excellent),
            (89.99, Health::Good),
            (75.0, Health::Good),
            (74.99, Health::Degraded),
            (50.0, Health::Degraded),
            (49.99, Health::Stale),
            (25.0, Health::Stale),
            (24.99, Health::Cold),
            (0.0, Health::Cold),
        ];
        for (s, want) in cases {
            assert_eq!(label(s), want, "score {s}");
        }
    }

    #[test]
    fn all_parts_add_up_unscaled() {
        let s = score(&input(30.0, Some(97.0)));
        assert_eq!(s.score, 100.0);
        assert_eq!(s.health, Health::Excellent);
        assert_eq!(s.age_score, Some(40.0));
        assert_eq!(s.hit_rate_score, Some(40.0));
        assert_eq!(s.coverage_score, Some(20.0));

        // 35 + 35 + 20 = 90: exactly the excellent edge.
        let s = score(&input(60.0, Some(90.0)));
        assert_eq!((s.score, s.health), (90.0, Health::Excellent));
        // 35 + 30 + 20 = 85.
        let s = score(&input(60.0, Some(89.99)));
        assert_eq!((s.score, s.health), (85.0, Health::Good));
        // 30 + 20 + 20 = 70.
        let s = score(&input(120.0, Some(70.0)));
        assert_eq!((s.score, s.health), (70.0, Health::Degraded));
        // 20 + 0 + 20 = 40.
        let s = score(&input(240.0, Some(10.0)));
        assert_eq!((s.score, s.health), (40.0, Health::Stale));
        // 0 + 0 + 20 = 20.
        let s = score(&input(720.0, Some(10.0)));
        assert_eq!((s.score, s.health), (20.0, Health::Cold));
        // 0 + 0 + 0.
        let mut i = input(720.0, Some(10.0));
        i.unique_measures = 0;
        i.unique_practices = 0;
        assert_eq!(score(&i).score, 0.0);
    }

    #[test]
    fn a_part_without_data_is_left_out_and_the_rest_scaled() {
        // The brief's example: age 40 + coverage 20 = 60 of 60 → 100.
        let s = score(&input(10.0, None));
        assert_eq!(s.score, 100.0);
        assert_eq!(s.health, Health::Excellent);
        assert_eq!(s.hit_rate_score, None);
        assert_eq!(s.age_score, Some(40.0));
        assert_eq!(s.coverage_score, Some(20.0));

        // 35 + 20 = 55 of 60 → 91.67, still excellent.
        let s = score(&input(60.0, None));
        assert_eq!(s.score, 91.67);
        assert_eq!(s.health, Health::Excellent);
        // 30 + 20 = 50 of 60 → 83.33 good.
        let s = score(&input(120.0, None));
        assert_eq!((s.score, s.health), (83.33, Health::Good));
        // 20 + 20 = 40 of 60 → 66.67 degraded.
        let s = score(&input(240.0, None));
        assert_eq!((s.score, s.health), (66.67, Health::Degraded));
        // 10 + 20 = 30 of 60 → 50 exactly: degraded, not stale.
        let s = score(&input(360.0, None));
        assert_eq!((s.score, s.health), (50.0, Health::Degraded));
        // 0 + 20 = 20 of 60 → 33.33 stale.
        let s = score(&input(720.0, None));
        assert_eq!((s.score, s.health), (33.33, Health::Stale));
        let mut i = input(720.0, None);
        i.unique_practices = 0;
        // 0 + 10 = 10 of 60 → 16.67 cold.
        let s = score(&i);
        assert_eq!((s.score, s.health), (16.67, Health::Cold));
        // 10 + 10 = 20 of 60 → 33.33 stale.
        let mut i = input(360.0, None);
        i.unique_practices = 0;
        let s = score(&i);
        assert_eq!((s.score, s.health), (33.33, Health::Stale));
        // 35 + 10 = 45 of 60 → exactly 75: good, not degraded.
        let mut i = input(60.0, None);
        i.unique_measures = 0;
        let s = score(&i);
        assert_eq!((s.score, s.health), (75.0, Health::Good));
    }

    #[test]
    fn a_warm_cache_of_unknown_age_is_scored_without_the_age_part() {
        let mut i = input(0.0, None);
        i.age_minutes = None;
        let s = score(&i);
        assert_eq!((s.score, s.health), (100.0, Health::Excellent));
        assert_eq!(s.age_score, None);
    }

    #[test]
    fn not_warm_is_cold_with_score_zero() {
        let mut never = input(0.0, Some(100.0));
        never.age_minutes = None;
        never.is_warm = false;
        let s = score(&never);
        assert_eq!((s.score, s.health), (0.0, Health::Cold));
        assert_eq!(
            (s.age_score, s.hit_rate_score, s.coverage_score),
            (None, None, None)
        );

        // Warmed once but the live generation is gone (expired, invalidated).
        let mut gone = input(5.0, Some(100.0));
        gone.is_warm = false;
        assert_eq!(score(&gone).health, Health::Cold);
        assert_eq!(score(&gone).score, 0.0);
    }
}
