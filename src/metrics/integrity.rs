//! Index integrity of a datasource's live generation: every entry named by the
//! master index exists, carries an expiry and is a member of its three
//! secondary indexes (which the index list names), and every member of a
//! secondary index is in the master index.
//!
//! The health check samples (SRANDMEMBER); [`verify`] walks everything with
//! SSCAN in batches. Both read with pipelines in the datasource's `{ds:N}`
//! slot, so they work on a Redis Cluster and never stall Redis. A swap or an
//! invalidation during the check would make its findings meaningless, so the
//! generation and epoch are compared before and after.
//!
//! An entry a selective invalidation deleted stays listed until the next
//! warm (`cache:meta:{ds:N}:invalidated` names it): it is counted as
//! invalidated, not as missing. Members that are not UTF-8 are read as
//! bytes and counted as foreign, never an error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use redis::Value;
use serde::Serialize;

use super::collect::Sample;
use crate::cache::set_scan::SetScan;
use crate::error::{Error, Result};
use crate::keys::{self, DsId, Gen, ParsedKey, SecondaryIndex};
use crate::redis_conn::Redis;

/// Examples kept in a report (enough to show an admin what is wrong).
const MAX_EXAMPLES: usize = 10;
/// Members per SMISMEMBER command.
const MEMBERS_PER_CMD: usize = 1000;

/// What an integrity check found: counts and a few examples.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrityReport {
    /// The datasource checked.
    pub datasource_id: DsId,
    /// True for a full walk ([`verify`]), false for the health check's sample.
    pub complete: bool,
    /// Entries of the master index checked.
    pub entries_checked: u64,
    /// Master members whose entry key does not exist (deleted or evicted
    /// behind the index's back): readers of their indexes get misses.
    pub missing_entries: u64,
    /// Master members whose entry a selective invalidation deleted: readers
    /// miss them until the next warm restores them (not a fault).
    pub invalidated_entries: u64,
    /// Master members that are not entry keys of this datasource (another
    /// prefix or datasource, or not UTF-8).
    pub foreign_members: u64,
    /// (entry, index) pairs where the entry is missing from one of its three
    /// secondary indexes: queries through that index miss the entry.
    pub missing_memberships: u64,
    /// Secondary indexes of checked entries that the index list does not name
    /// (invalidation and clean-up would never find them).
    pub unlisted_indexes: u64,
    /// Checked entries without an expiry (PTTL -1) although every generation
    /// has one: they would outlive their generation.
    pub entries_without_ttl: u64,
    /// Secondary indexes checked.
    pub indexes_checked: u64,
    /// Index names in the index list whose set does not exist.
    pub missing_indexes: u64,
    /// Index-list members that are not secondary index names of this datasource.
    pub foreign_indexes: u64,
    /// Index members checked against the master index.
    pub members_checked: u64,
    /// Index members that the master index does not hold (or that are not
    /// UTF-8): queries through that index read entries that are no longer
    /// part of the generation.
    pub orphan_members: u64,
    /// A swap or invalidation happened during the check; the counts above
    /// may be artefacts of it and are not reported as problems.
    pub changed_during_check: bool,
    /// Up to ten findings as text, naming the keys.
    pub examples: Vec<String>,
    /// How long the check took.
    pub duration_ms: u64,
}

impl IntegrityReport {
    fn new(ds: DsId, complete: bool) -> Self {
        IntegrityReport {
            datasource_id: ds,
            complete,
            ..Default::default()
        }
    }

    /// Problems that break reads: an error of the health check.
    pub fn broken(&self) -> u64 {
        self.missing_entries
            + self.foreign_members
            + self.missing_memberships
            + self.unlisted_indexes
            + self.missing_indexes
            + self.foreign_indexes
            + self.orphan_members
    }

    /// True when the check ran on a stable generation and found nothing broken.
    pub fn ok(&self) -> bool {
        self.broken() == 0 && self.entries_without_ttl == 0
    }

    fn example(&mut self, text: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(text);
        }
    }

    /// One line for an issue text: what is broken, in counts.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let of_entries = |n: u64| format!("{n} of {} checked entries", self.entries_checked);
        if self.missing_entries > 0 {
            parts.push(format!(
                "{} are indexed but do not exist",
                of_entries(self.missing_entries)
            ));
        }
        if self.foreign_members > 0 {
            parts.push(format!(
                "{} master-index members are not entry keys of this datasource",
                self.foreign_members
            ));
        }
        if self.missing_memberships > 0 {
            parts.push(format!(
                "{} entry/index memberships are missing",
                self.missing_memberships
            ));
        }
        if self.unlisted_indexes > 0 {
            parts.push(format!(
                "{} indexes are not named in the index list",
                self.unlisted_indexes
            ));
        }
        if self.missing_indexes > 0 {
            parts.push(format!(
                "{} of {} checked indexes do not exist",
                self.missing_indexes, self.indexes_checked
            ));
        }
        if self.foreign_indexes > 0 {
            parts.push(format!(
                "{} index-list members are not index names of this datasource",
                self.foreign_indexes
            ));
        }
        if self.orphan_members > 0 {
            parts.push(format!(
                "{} of {} checked index members are not in the master index",
                self.orphan_members, self.members_checked
            ));
        }
        parts.join("; ")
    }
}

/// A member that is not UTF-8, for an example line.
fn raw_text(member: &[u8]) -> String {
    format!(
        "{} (hex {})",
        keys::display_bytes(member),
        hex::encode(member)
    )
}

fn parse<T: redis::FromRedisValue>(v: &Value, what: &str) -> Result<T> {
    redis::from_redis_value_ref(v).map_err(|e| Error::redis(format!("reading {what}"), e.into()))
}

/// Checks entry keys (members of the live master index) of `ds`: existence
/// and expiry (PTTL), membership in their three indexes, and that the index
/// list names those indexes. One pipeline.
async fn check_entries(
    redis: &Redis,
    ds: DsId,
    entries: &[String],
    rep: &mut IntegrityReport,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    // index name -> entries that must be in it
    let mut by_index: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    // Entry keys of this datasource (the only keys read: on a cluster the
    // others may live in another slot).
    let mut own: Vec<&str> = Vec::with_capacity(entries.len());
    rep.entries_checked += entries.len() as u64;
    for e in entries {
        match keys::parse(e) {
            Some(ParsedKey::Entry {
                ds: d,
                generation: Gen::Live,
                group,
            }) if d == ds => {
                own.push(e);
                for idx in SecondaryIndex::for_group(&group) {
                    by_index.entry(idx.key(ds, Gen::Live)).or_default().push(e);
                }
            }
            _ => {
                rep.foreign_members += 1;
                rep.example(format!(
                    "master index member {e} is not an entry key of datasource {ds}"
                ));
            }
        }
    }
    if own.is_empty() {
        return Ok(());
    }
    let mut p = redis::pipe();
    for e in &own {
        p.cmd("PTTL").arg(e);
    }
    for (idx, members) in &by_index {
        p.cmd("SMISMEMBER").arg(idx).arg(members);
    }
    let names: Vec<&String> = by_index.keys().collect();
    for chunk in names.chunks(MEMBERS_PER_CMD) {
        p.cmd("SMISMEMBER")
            .arg(keys::index_list(ds, Gen::Live))
            .arg(chunk);
    }
    for chunk in own.chunks(MEMBERS_PER_CMD) {
        p.cmd("SMISMEMBER").arg(keys::invalidated(ds)).arg(chunk);
    }
    let values: Vec<Value> = redis.pipe("checking sampled entries", &p).await?;
    let mut it = values.iter();
    let mut next = || {
        it.next().ok_or_else(|| {
            Error::Invalid("Redis answered a pipeline with fewer replies than commands".into())
        })
    };
    let mut pttls = Vec::with_capacity(own.len());
    for _ in &own {
        pttls.push(parse::<i64>(next()?, "an entry's PTTL")?);
    }
    let mut by_index_flags = Vec::with_capacity(by_index.len());
    for _ in &by_index {
        by_index_flags.push(parse::<Vec<bool>>(next()?, "index memberships")?);
    }
    let mut list_flags = Vec::new();
    for _ in names.chunks(MEMBERS_PER_CMD) {
        list_flags.push(parse::<Vec<bool>>(next()?, "index-list memberships")?);
    }
    let mut invalidated = Vec::with_capacity(own.len());
    for _ in own.chunks(MEMBERS_PER_CMD) {
        invalidated.extend(parse::<Vec<bool>>(next()?, "invalidated entries")?);
    }
    for ((e, pttl), inv) in own.iter().zip(pttls).zip(invalidated) {
        if pttl == -2 && inv {
            rep.invalidated_entries += 1;
        } else if pttl == -2 {
            rep.missing_entries += 1;
            rep.example(format!(
                "entry {e} is in the master index but does not exist"
            ));
        } else if pttl == -1 {
            rep.entries_without_ttl += 1;
            rep.example(format!("entry {e} has no expiry"));
        }
    }
    for ((idx, members), flags) in by_index.iter().zip(by_index_flags) {
        for (m, ok) in members.iter().zip(flags) {
            if !ok {
                rep.missing_memberships += 1;
                rep.example(format!("entry {m} is not a member of its index {idx}"));
            }
        }
    }
    for (chunk, flags) in names.chunks(MEMBERS_PER_CMD).zip(list_flags) {
        for (name, ok) in chunk.iter().zip(flags) {
            if !ok {
                rep.unlisted_indexes += 1;
                rep.example(format!("index {name} is not named in the index list"));
            }
        }
    }
    Ok(())
}

/// Checks that index members, given as (index name, member) pairs, are all
/// in the live master index. One pipeline.
async fn check_members(
    redis: &Redis,
    ds: DsId,
    pairs: &[(String, String)],
    rep: &mut IntegrityReport,
) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut p = redis::pipe();
    for chunk in pairs.chunks(MEMBERS_PER_CMD) {
        p.cmd("SMISMEMBER")
            .arg(keys::master_index(ds, Gen::Live))
            .arg(chunk.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>());
    }
    let answers: Vec<Vec<bool>> = redis.pipe("checking index members", &p).await?;
    for (chunk, flags) in pairs.chunks(MEMBERS_PER_CMD).zip(answers) {
        for ((idx, m), ok) in chunk.iter().zip(flags) {
            rep.members_checked += 1;
            if !ok {
                rep.orphan_members += 1;
                rep.example(format!(
                    "index {idx} names {m}, which the master index does not hold"
                ));
            }
        }
    }
    Ok(())
}

/// True when `name` is a live secondary index key of `ds`.
fn is_own_index(ds: DsId, name: &str) -> bool {
    matches!(
        keys::parse(name),
        Some(ParsedKey::Secondary { ds: d, generation: Gen::Live, .. }) if d == ds
    )
}

/// Reads the generation and epoch, to notice a swap or invalidation.
async fn generation_and_epoch(redis: &Redis, ds: DsId) -> Result<(Option<u64>, Option<i64>)> {
    let mut p = redis::pipe();
    p.cmd("HGET").arg(keys::meta(ds)).arg("generation");
    p.cmd("GET").arg(keys::epoch(ds));
    redis.pipe("reading the generation", &p).await
}

/// The health check's sample: the sampled master members and index names
/// (read by the stats pipeline), `members_per_index` random members of each
/// index. Three round trips at most.
pub(crate) async fn sample(
    redis: &Redis,
    ds: DsId,
    generation: u64,
    epoch: i64,
    sampled: &Sample,
    members_per_index: usize,
) -> Result<IntegrityReport> {
    let started = Instant::now();
    let mut rep = IntegrityReport::new(ds, false);
    check_entries(redis, ds, &sampled.entries, &mut rep).await?;
    for m in &sampled.foreign_entries {
        rep.foreign_members += 1;
        rep.example(format!(
            "master index member {} is not an entry key of datasource {ds}",
            raw_text(m)
        ));
    }
    for m in &sampled.foreign_indexes {
        rep.foreign_indexes += 1;
        rep.example(format!(
            "index list member {} is not an index name of datasource {ds}",
            raw_text(m)
        ));
    }

    let mut own: Vec<&String> = Vec::new();
    for n in &sampled.indexes {
        if is_own_index(ds, n) {
            own.push(n);
        } else {
            rep.foreign_indexes += 1;
            rep.example(format!(
                "index list member {n} is not an index name of datasource {ds}"
            ));
        }
    }
    let mut pairs = Vec::new();
    if !own.is_empty() {
        let mut p = redis::pipe();
        for n in &own {
            p.cmd("SRANDMEMBER").arg(*n).arg(members_per_index);
        }
        let samples: Vec<Vec<Vec<u8>>> = redis.pipe("sampling index members", &p).await?;
        for (n, members) in own.iter().zip(samples) {
            rep.indexes_checked += 1;
            if members.is_empty() {
                rep.missing_indexes += 1;
                rep.example(format!(
                    "index {n} is named in the index list but does not exist"
                ));
            }
            for m in members {
                match String::from_utf8(m) {
                    Ok(m) => pairs.push(((*n).clone(), m)),
                    Err(e) => {
                        rep.members_checked += 1;
                        rep.orphan_members += 1;
                        rep.example(format!(
                            "index {n} holds {}, which is not an entry key",
                            raw_text(e.as_bytes())
                        ));
                    }
                }
            }
        }
    }
    check_members(redis, ds, &pairs, &mut rep).await?;
    let (g, e) = generation_and_epoch(redis, ds).await?;
    rep.changed_during_check = g.unwrap_or(0) != generation || e.unwrap_or(0) != epoch;
    rep.duration_ms = started.elapsed().as_millis() as u64;
    Ok(rep)
}

/// The full integrity walk of `ds` for an explicit verify: every master
/// member, every listed index and every index member, read with SSCAN in
/// batches (a member may be seen twice if a set is rehashed meanwhile;
/// counts are then slightly high, never low).
pub async fn verify(redis: &Redis, ds: DsId) -> Result<IntegrityReport> {
    let started = Instant::now();
    let (generation, epoch) = generation_and_epoch(redis, ds).await?;
    let mut rep = IntegrityReport::new(ds, true);

    let mut master = SetScan::new(
        redis,
        keys::master_index(ds, Gen::Live),
        "scanning an index set",
    );
    while let Some(batch) = master.next().await? {
        check_entries(redis, ds, &batch, &mut rep).await?;
    }
    if master.skipped() > 0 {
        rep.foreign_members += master.skipped();
        let first = master.first_skipped().map(raw_text).unwrap_or_default();
        rep.example(format!(
            "master index member {first} is not an entry key of datasource {ds}"
        ));
    }

    // The index names are bounded by distinct measures × practices /
    // providers × frequencies, never by rows; each index is walked in batches.
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut list = SetScan::new(
        redis,
        keys::index_list(ds, Gen::Live),
        "scanning an index set",
    );
    while let Some(batch) = list.next().await? {
        names.extend(batch);
    }
    if list.skipped() > 0 {
        rep.foreign_indexes += list.skipped();
        let first = list.first_skipped().map(raw_text).unwrap_or_default();
        rep.example(format!(
            "index list member {first} is not an index name of datasource {ds}"
        ));
    }
    for name in &names {
        if !is_own_index(ds, name) {
            rep.foreign_indexes += 1;
            rep.example(format!(
                "index list member {name} is not an index name of datasource {ds}"
            ));
            continue;
        }
        rep.indexes_checked += 1;
        let mut seen_any = false;
        let mut members = SetScan::new(redis, name.clone(), "scanning an index set");
        while let Some(batch) = members.next().await? {
            seen_any |= !batch.is_empty();
            let pairs: Vec<(String, String)> =
                batch.into_iter().map(|m| (name.clone(), m)).collect();
            check_members(redis, ds, &pairs, &mut rep).await?;
        }
        if members.skipped() > 0 {
            seen_any = true;
            rep.members_checked += members.skipped();
            rep.orphan_members += members.skipped();
            let first = members.first_skipped().map(raw_text).unwrap_or_default();
            rep.example(format!(
                "index {name} holds {first}, which is not an entry key"
            ));
        }
        if !seen_any {
            rep.missing_indexes += 1;
            rep.example(format!(
                "index {name} is named in the index list but does not exist"
            ));
        }
    }
    let (g, e) = generation_and_epoch(redis, ds).await?;
    rep.changed_during_check = g != generation || e != epoch;
    rep.duration_ms = started.elapsed().as_millis() as u64;
    Ok(rep)
}
