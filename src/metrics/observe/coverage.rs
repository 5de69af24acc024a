//! Coverage and index count of a cache cachedeck did not write, from the
//! names of its entries: the master set is read with SSCAN in batches, with a
//! pause between them, and each name is parsed leniently
//! ([`keys::parse_observed_entry`]). Every entry belongs to exactly three
//! secondary indexes (measure+frequency, +practice, +provider), so the index
//! count is the number of distinct such triples.
//!
//! Counting is exact up to a bound of members read. Beyond it the scan stops
//! and the distinct counts are estimated from what was read: SSCAN walks the
//! set in hash-table order, which is unrelated to the names, so the members
//! read are close to a uniform sample; the number of distinct values in the
//! whole set is then estimated with Chao1 (distinct in the sample plus
//! f1²/2f2, f1 and f2 being the values seen once and twice), capped by the
//! entry count. Nothing is written to Redis.

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use serde::Serialize;

use super::Source;
use crate::error::Result;
use crate::keys::{self, DsId, GroupKey};
use crate::redis_conn::Redis;

/// Members asked for per SSCAN call.
const SSCAN_COUNT: usize = 1000;

/// What the key names say about a cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Distinct secondary indexes the entries imply.
    pub index_count: u64,
    /// Distinct measures.
    pub measures: u64,
    /// Distinct practices.
    pub practices: u64,
    /// Distinct non-NULL providers.
    pub providers: u64,
    /// Frequencies seen, sorted.
    pub frequencies: Vec<String>,
    /// Members of the master set read (SSCAN may repeat one).
    pub members_read: u64,
    /// Members whose name is not an entry key of the datasource.
    pub unrecognised: u64,
    /// `observed` after a complete walk, `estimated` from a sample.
    pub source: Source,
    /// The whole master set was read.
    pub complete: bool,
}

/// How often each distinct value was seen, by 64-bit fingerprint (the
/// values themselves are not kept, so memory stays small).
#[derive(Default)]
struct Tally(HashMap<u64, u32>);

impl Tally {
    fn add(&mut self, fp: u64) {
        *self.0.entry(fp).or_default() += 1;
    }

    /// Exact when the walk was complete, else Chao1 capped at `cap`.
    fn count(&self, complete: bool, cap: u64) -> u64 {
        let d = self.0.len() as u64;
        if complete {
            return d;
        }
        let f1 = self.0.values().filter(|&&n| n == 1).count() as f64;
        let f2 = self.0.values().filter(|&&n| n == 2).count() as f64;
        let extra = if f2 > 0.0 {
            f1 * f1 / (2.0 * f2)
        } else {
            f1 * (f1 - 1.0).max(0.0) / 2.0
        };
        ((d as f64 + extra).round() as u64).clamp(d, cap.max(d))
    }
}

/// Distinct counting over entry names.
pub(crate) struct Counter {
    hasher: RandomState,
    measures: Tally,
    practices: Tally,
    providers: Tally,
    frequencies: BTreeSet<String>,
    by_measure_freq: Tally,
    by_practice: Tally,
    by_provider: Tally,
    read: u64,
    unrecognised: u64,
}

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter {
            hasher: RandomState::new(),
            measures: Tally::default(),
            practices: Tally::default(),
            providers: Tally::default(),
            frequencies: BTreeSet::new(),
            by_measure_freq: Tally::default(),
            by_practice: Tally::default(),
            by_provider: Tally::default(),
            read: 0,
            unrecognised: 0,
        }
    }

    fn fp<T: std::hash::Hash>(&self, v: T) -> u64 {
        self.hasher.hash_one(v)
    }

    pub(crate) fn add(&mut self, ds: DsId, name: &str) {
        self.read += 1;
        let Some(g) = keys::parse_observed_entry(ds, name) else {
            self.unrecognised += 1;
            return;
        };
        self.add_group(&g);
    }

    fn add_group(&mut self, g: &GroupKey) {
        let (m, p, f) = (&g.measure, &g.practice, &g.frequency);
        let fm = self.fp(m);
        self.measures.add(fm);
        let fp = self.fp(p);
        self.practices.add(fp);
        if let Some(prov) = &g.provider {
            let fv = self.fp(prov);
            self.providers.add(fv);
        }
        if !self.frequencies.contains(f) {
            self.frequencies.insert(f.clone());
        }
        let a = self.fp((m, f));
        self.by_measure_freq.add(a);
        let b = self.fp((m, p, f));
        self.by_practice.add(b);
        let c = self.fp((m, &g.provider, f));
        self.by_provider.add(c);
    }

    /// The counts; `complete` says whether every member was read, `entries`
    /// (SCARD) caps the estimates.
    pub(crate) fn finish(&self, complete: bool, entries: u64) -> Coverage {
        let n = |t: &Tally| t.count(complete, entries);
        Coverage {
            index_count: n(&self.by_measure_freq) + n(&self.by_practice) + n(&self.by_provider),
            measures: n(&self.measures),
            practices: n(&self.practices),
            providers: n(&self.providers),
            frequencies: self.frequencies.iter().cloned().collect(),
            members_read: self.read,
            unrecognised: self.unrecognised,
            source: if complete {
                Source::Observed
            } else {
                Source::Estimated
            },
            complete,
        }
    }
}

/// Coverage of a sample of entry names (SRANDMEMBER): what the figures are
/// until the walk has finished.
pub(crate) fn of_sample(ds: DsId, names: &[String], entries: u64) -> Coverage {
    let mut c = Counter::new();
    for n in names {
        c.add(ds, n);
    }
    // A sample that holds every entry is the whole set.
    let complete = entries > 0 && names.len() as u64 >= entries;
    c.finish(complete, entries)
}

/// Walks the master set of `ds` with SSCAN, `pace` between calls, until
/// `bound` members were read or the set ends.
pub(crate) async fn walk(
    redis: &Redis,
    ds: DsId,
    entries: u64,
    bound: u64,
    pace: Duration,
) -> Result<Coverage> {
    let master = keys::master_index(ds, keys::Gen::Live);
    let mut c = Counter::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, names): (u64, Vec<String>) = redis
            .query(
                "reading the entry names of an observed cache (SSCAN)",
                redis::cmd("SSCAN")
                    .arg(&master)
                    .arg(cursor)
                    .arg("COUNT")
                    // Never much more than the bound in one call.
                    .arg(SSCAN_COUNT.min(bound.max(10) as usize)),
            )
            .await?;
        for n in &names {
            c.add(ds, n);
        }
        cursor = next;
        if cursor == 0 {
            return Ok(c.finish(true, entries));
        }
        if c.read >= bound {
            return Ok(c.finish(false, entries));
        }
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(m: &str, p: u32, prov: &str, f: &str) -> String {
        format!("cache:{{ds:1}}:m:{m}:p:{p}:prov:{prov}:freq:{f}")
    }

    #[test]
    fn a_complete_walk_counts_exactly_and_nulls_are_not_providers() {
        let mut c = Counter::new();
        for (i, prov) in ["5", "null", "NULL", "", "%N", "6"].iter().enumerate() {
            c.add(1, &name("Charges", i as u32 % 2, prov, "Monthly"));
        }
        c.add(1, &name("Payments", 0, "5", "Weekly"));
        c.add(1, "cache:{ds:1}:something:else");
        let cov = c.finish(true, 8);
        assert_eq!(cov.measures, 2);
        assert_eq!(cov.practices, 2);
        assert_eq!(cov.providers, 2, "null forms are NULL");
        assert_eq!(cov.frequencies, vec!["Monthly", "Weekly"]);
        // m+f: Charges/Monthly, Payments/Weekly; m+p+f: 2 + 1;
        // m+prov+f: Charges 5, NULL, 6 + Payments 5.
        assert_eq!(cov.index_count, 2 + 3 + 4);
        assert_eq!((cov.members_read, cov.unrecognised), (8, 1));
        assert_eq!(cov.source, Source::Observed);
    }

    #[test]
    fn a_partial_walk_estimates_and_says_so() {
        let mut c = Counter::new();
        // 1000 practices, each seen once in the sample: Chao1 without f2.
        for p in 0..1000 {
            c.add(1, &name("M", p, "1", "F"));
        }
        let cov = c.finish(false, 5000);
        assert_eq!(cov.source, Source::Estimated);
        assert!(!cov.complete);
        assert_eq!(cov.measures, 1, "seen many times: no correction");
        assert_eq!(cov.practices, 5000, "capped by the entries");
        // Each value seen twice: nothing unseen is expected.
        let mut c = Counter::new();
        for p in 0..100 {
            c.add(1, &name("M", p, "1", "F"));
            c.add(1, &name("M", p, "2", "F"));
        }
        assert_eq!(c.finish(false, 10_000).practices, 100);
    }
}
