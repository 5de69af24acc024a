//! What a warm has written so far: every entry of the new generation and
//! every secondary index with its members. The index sets themselves are not
//! written while rows stream in: on a refresh the swap only adds and removes
//! the members that changed and gives every index the new expiry, so a
//! refresh whose groups did not change sends no index membership at all; on
//! a cold cache it writes every set (see `swap.rs`).
//!
//! Memory: one name and length per entry, one name per index and three entry
//! numbers per entry; all grow with groups, never with rows.

use std::collections::BTreeMap;

use foldhash::fast::RandomState;
use indexmap::IndexMap;

use crate::keys::{self, DsId, Gen, GroupKey, SecondaryIndex};

/// Members an index gains and loses from one generation to the next.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct IndexChange<'a> {
    /// Entries the index gains (live names).
    pub added: Vec<&'a str>,
    /// Entries it loses.
    pub removed: Vec<&'a str>,
}

/// An index of the new generation.
#[derive(Debug, Default)]
struct IndexMembers {
    /// Entry numbers (positions in [`Written::entries`]).
    members: Vec<u32>,
    /// Bytes of the members' names (for the memory estimate).
    bytes: u64,
}

/// The new generation as written so far.
#[derive(Debug)]
pub(crate) struct Written {
    /// Named in key names.
    ds: DsId,
    /// Live entry name → bytes of its JSON; the position is the entry's number.
    entries: IndexMap<String, u64, RandomState>,
    /// The three indexes of each entry (positions in `indexes`), by entry number.
    entry_indexes: Vec<[u32; 3]>,
    /// Live index name → its members; the position is the index's number.
    indexes: IndexMap<String, IndexMembers, RandomState>,
}

impl Written {
    pub(crate) fn new(ds: DsId) -> Written {
        Written {
            ds,
            entries: IndexMap::default(),
            entry_indexes: Vec::new(),
            indexes: IndexMap::default(),
        }
    }

    /// The JSON length of an entry already written, to extend it.
    pub(crate) fn entry_len_mut(&mut self, key: &str) -> Option<&mut u64> {
        self.entries.get_mut(key)
    }

    /// Records a new entry of `group` with `len` bytes of JSON. Calls
    /// `new_index` with the name of each index first seen here.
    pub(crate) fn add_entry(
        &mut self,
        key: String,
        group: &GroupKey,
        len: u64,
        mut new_index: impl FnMut(&str),
    ) {
        let name_bytes = key.len() as u64;
        let (number, _) = self.entries.insert_full(key, len);
        let mut ids = [0u32; 3];
        for (slot, index) in ids.iter_mut().zip(SecondaryIndex::for_group(group)) {
            let name = index.key(self.ds, Gen::Live);
            let (i, fresh) = match self.indexes.get_index_of(&name) {
                Some(i) => (i, false),
                None => (
                    self.indexes.insert_full(name, IndexMembers::default()).0,
                    true,
                ),
            };
            let (name, idx) = self.indexes.get_index_mut(i).expect("index just found");
            idx.members.push(number as u32);
            idx.bytes += name_bytes;
            if fresh {
                new_index(name);
            }
            *slot = i as u32;
        }
        self.entry_indexes.push(ids);
    }

    /// Entries written.
    pub(crate) fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Indexes of the generation.
    pub(crate) fn index_count(&self) -> usize {
        self.indexes.len()
    }

    /// Live names of every entry, by number.
    pub(crate) fn entry_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Live name of entry number `e`.
    pub(crate) fn entry_name(&self, e: usize) -> &str {
        self.entries
            .get_index(e)
            .map(|(k, _)| k.as_str())
            .unwrap_or_default()
    }

    /// Live name of index number `i`.
    pub(crate) fn index_name(&self, i: u32) -> &str {
        self.indexes
            .get_index(i as usize)
            .map(|(k, _)| k.as_str())
            .unwrap_or_default()
    }

    /// JSON bytes of an entry.
    pub(crate) fn entry_len(&self, key: &str) -> Option<u64> {
        self.entries.get(key).copied()
    }

    /// Bytes of the member names of an index.
    pub(crate) fn index_bytes(&self, name: &str) -> Option<u64> {
        self.indexes.get(name).map(|i| i.bytes)
    }

    /// Total JSON bytes of every entry.
    pub(crate) fn entry_bytes_total(&self) -> u64 {
        self.entries.values().sum()
    }

    /// Total bytes of every index's member names.
    pub(crate) fn index_bytes_total(&self) -> u64 {
        self.indexes.values().map(|i| i.bytes).sum()
    }

    /// Live names of the members of index number `i`.
    pub(crate) fn members(&self, i: u32) -> impl Iterator<Item = &str> {
        let members = self
            .indexes
            .get_index(i as usize)
            .map(|(_, m)| m.members.as_slice())
            .unwrap_or_default();
        members
            .iter()
            .filter_map(|&e| self.entries.get_index(e as usize).map(|(k, _)| k.as_str()))
    }

    /// How the members of each index differ between the live generation and
    /// this one, given the entries only one of them has: `added` (live names
    /// of entries new in this generation) and `removed` (live entries this
    /// generation lacks). Indexes this generation no longer has are left out
    /// (the swap deletes them); unchanged indexes are not listed.
    pub(crate) fn changes<'a>(
        &self,
        added: &'a [String],
        removed: &'a [String],
    ) -> BTreeMap<u32, IndexChange<'a>> {
        let mut out: BTreeMap<u32, IndexChange<'a>> = BTreeMap::new();
        for key in added {
            if let Some(e) = self.entries.get_index_of(key.as_str()) {
                for i in self.entry_indexes[e] {
                    out.entry(i).or_default().added.push(key);
                }
            }
        }
        for key in removed {
            if let Some(keys::ParsedKey::Entry { group, .. }) = keys::parse(key) {
                for index in SecondaryIndex::for_group(&group) {
                    if let Some(i) = self.indexes.get_index_of(&index.key(self.ds, Gen::Live)) {
                        out.entry(i as u32).or_default().removed.push(key);
                    }
                }
            }
        }
        out
    }

    /// Number of the index named `name`, if this generation has it.
    pub(crate) fn index_number(&self, name: &str) -> Option<u32> {
        self.indexes.get_index_of(name).map(|i| i as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(m: &str, p: &str, prov: Option<&str>) -> GroupKey {
        GroupKey {
            measure: m.into(),
            practice: p.into(),
            provider: prov.map(str::to_string),
            frequency: "Monthly".into(),
        }
    }

    fn written(groups: &[GroupKey]) -> Written {
        let mut w = Written::new(3);
        for g in groups {
            w.add_entry(keys::entry(3, Gen::Live, g), g, 10, |_| {});
        }
        w
    }

    #[test]
    fn members_follow_the_entries_of_each_index() {
        let (a, b) = (group("M", "1", Some("5")), group("M", "1", None));
        let mut fresh = Vec::new();
        let mut w = Written::new(3);
        for g in [&a, &b] {
            w.add_entry(keys::entry(3, Gen::Live, g), g, 10, |n| {
                fresh.push(n.to_string())
            });
        }
        // m:freq and m:p:freq shared, one provider index each.
        assert_eq!(w.index_count(), 4);
        assert_eq!(fresh.len(), 4);
        let practice = SecondaryIndex::for_group(&a)[1].key(3, Gen::Live);
        let i = w.index_number(&practice).unwrap();
        let members: Vec<&str> = w.members(i).collect();
        assert_eq!(
            members,
            [keys::entry(3, Gen::Live, &a), keys::entry(3, Gen::Live, &b)]
        );
        assert_eq!(
            w.index_bytes(&practice),
            Some(members.iter().map(|m| m.len() as u64).sum())
        );
        assert_eq!(w.entry_name(1), keys::entry(3, Gen::Live, &b));
    }

    #[test]
    fn changes_list_what_each_index_gains_and_loses() {
        let kept = group("M", "1", Some("5"));
        let new = group("M", "2", Some("6"));
        let gone = group("M", "1", Some("7"));
        let w = written(&[kept.clone(), new.clone()]);
        let (new_key, gone_key) = (
            keys::entry(3, Gen::Live, &new),
            keys::entry(3, Gen::Live, &gone),
        );
        let added = [new_key.clone()];
        let removed = [gone_key.clone()];
        let changes = w.changes(&added, &removed);
        let by_name: BTreeMap<&str, &IndexChange> =
            changes.iter().map(|(&i, c)| (w.index_name(i), c)).collect();
        let idx = |g: &GroupKey, k: usize| SecondaryIndex::for_group(g)[k].key(3, Gen::Live);
        // The measure index gains one entry and loses one.
        let m = by_name[idx(&kept, 0).as_str()];
        assert_eq!(
            (m.added.as_slice(), m.removed.as_slice()),
            (&[new_key.as_str()][..], &[gone_key.as_str()][..])
        );
        // Practice 1 loses the gone entry; practice 2 and provider 6 are new.
        assert_eq!(by_name[idx(&gone, 1).as_str()].removed, [gone_key.as_str()]);
        assert_eq!(by_name[idx(&new, 1).as_str()].added, [new_key.as_str()]);
        assert_eq!(by_name[idx(&new, 2).as_str()].added, [new_key.as_str()]);
        // Provider 7 is not in this generation; provider 5 did not change.
        assert_eq!(changes.len(), 4);
        assert!(!by_name.contains_key(idx(&kept, 2).as_str()));
        assert!(w.changes(&[], &[]).is_empty());
    }
}
