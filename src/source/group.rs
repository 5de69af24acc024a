//! Gathering rows per group as they are read, so that no sort is needed and
//! no row is held twice: each row's JSON is appended straight to its group's
//! buffer, which already is the JSON array the cache stores (`[row,row,…]`).
//! The reader hands over everything it gathered whenever the buffers pass a
//! byte budget (and at the end); a group may therefore arrive in several
//! chunks, which the warm joins in Redis.
//!
//! Rows usually come grouped (a table filled or clustered by practice), so
//! the group of the previous row is checked first, before any hashing.

use std::collections::HashMap;

use super::source_err;
use crate::error::Result;
use crate::keys::{DsId, GroupKey};

/// Smallest and largest first capacity of a group's buffer.
const MIN_CAPACITY: usize = 128;
const MAX_CAPACITY: usize = 64 * 1024;

/// Rows gathered per group since the last hand-over.
#[derive(Debug, Default)]
pub struct GroupChunk {
    /// Each group's rows of this chunk as one JSON array text (`[…]`).
    pub groups: Vec<(GroupKey, String)>,
    /// Rows in this chunk.
    pub rows: u64,
}

/// The accumulator a reader task fills.
pub(crate) struct GroupAcc {
    /// Named in errors.
    ds: DsId,
    /// Unambiguous text of a group key → its place in `groups`.
    index: HashMap<String, usize, foldhash::fast::RandomState>,
    /// The groups of this chunk with their open arrays (no `]` yet).
    groups: Vec<(GroupKey, String)>,
    /// Reused buffer for building the lookup key of each row.
    keybuf: String,
    /// Lookup key and place of the previous row's group.
    last: Option<(String, usize)>,
    /// Bytes of row JSON gathered in this chunk.
    bytes: usize,
    /// Rows gathered in this chunk.
    rows: u64,
    /// Hand over when `bytes` reaches this.
    budget: usize,
    /// Bytes and groups of every chunk so far, to size new buffers.
    seen_bytes: u64,
    seen_groups: u64,
}

impl GroupAcc {
    pub(crate) fn new(ds: DsId, budget: usize) -> GroupAcc {
        GroupAcc {
            ds,
            index: HashMap::default(),
            groups: Vec::new(),
            keybuf: String::with_capacity(64),
            last: None,
            bytes: 0,
            rows: 0,
            budget,
            seen_bytes: 0,
            seen_groups: 0,
        }
    }

    /// The buffer the next row of this group is written to (a comma already
    /// pushed when the group has rows). `parts` are measure, practice,
    /// provider, frequency; only the provider may be `None`.
    pub(crate) fn target(&mut self, parts: [Option<&str>; 4]) -> Result<&mut String> {
        self.keybuf.clear();
        let mut digits = itoa::Buffer::new();
        for p in parts {
            match p {
                Some(v) => {
                    self.keybuf.push_str(digits.format(v.len()));
                    self.keybuf.push(':');
                    self.keybuf.push_str(v);
                }
                None => self.keybuf.push('-'),
            }
        }
        self.rows += 1;
        let i = match &self.last {
            Some((k, i)) if *k == self.keybuf => *i,
            _ => {
                let i = match self.index.get(self.keybuf.as_str()) {
                    Some(&i) => i,
                    None => self.new_group(parts)?,
                };
                match &mut self.last {
                    Some((k, li)) => {
                        k.clone_from(&self.keybuf);
                        *li = i;
                    }
                    None => self.last = Some((self.keybuf.clone(), i)),
                }
                i
            }
        };
        let buf = &mut self.groups[i].1;
        if buf.len() > 1 {
            buf.push(',');
        }
        self.bytes = self.bytes.saturating_sub(buf.len());
        Ok(buf)
    }

    /// Opens the buffer of a group first seen in this chunk.
    fn new_group(&mut self, parts: [Option<&str>; 4]) -> Result<usize> {
        let [Some(m), Some(p), prov, Some(f)] = parts else {
            return Err(source_err(
                self.ds,
                "a row has NULL in measure, practice_uid or frequency (only provider_uid may be NULL)",
            ));
        };
        let g = GroupKey {
            measure: m.to_string(),
            practice: p.to_string(),
            provider: prov.map(str::to_string),
            frequency: f.to_string(),
        };
        // Size the buffer like the groups seen so far, so it rarely grows.
        let avg = self.seen_bytes.checked_div(self.seen_groups).unwrap_or(0) as usize;
        let mut buf = String::with_capacity((avg + avg / 8).clamp(MIN_CAPACITY, MAX_CAPACITY));
        buf.push('[');
        self.groups.push((g, buf));
        let i = self.groups.len() - 1;
        self.index.insert(self.keybuf.clone(), i);
        Ok(i)
    }

    /// Accounts for the row just written into `target`'s buffer (its new length).
    pub(crate) fn written(&mut self, new_len: usize) {
        self.bytes += new_len;
    }

    /// True when the gathered rows should be handed over.
    pub(crate) fn full(&self) -> bool {
        self.bytes >= self.budget
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Hands over everything gathered, each group's array closed.
    pub(crate) fn take(&mut self) -> GroupChunk {
        self.index.clear();
        self.last = None;
        self.seen_bytes += self.bytes as u64;
        self.seen_groups += self.groups.len() as u64;
        self.bytes = 0;
        let mut groups = std::mem::take(&mut self.groups);
        for (_, buf) in &mut groups {
            buf.push(']');
        }
        GroupChunk {
            groups,
            rows: std::mem::take(&mut self.rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_a_group_are_joined_and_nulls_kept_apart() {
        let mut acc = GroupAcc::new(1, 1 << 20);
        for (prov, row) in [
            (Some("5"), "{\"a\":1}"),
            (None, "{\"a\":2}"),
            (Some("5"), "{\"a\":3}"),
            (Some("5"), "{\"a\":4}"),
        ] {
            let t = acc.target([Some("M"), Some("1"), prov, Some("F")]).unwrap();
            t.push_str(row);
            let n = t.len();
            acc.written(n);
        }
        let chunk = acc.take();
        assert_eq!(chunk.rows, 4);
        assert_eq!(chunk.groups.len(), 2);
        assert_eq!(chunk.groups[0].1, "[{\"a\":1},{\"a\":3},{\"a\":4}]");
        assert_eq!(chunk.groups[1].1, "[{\"a\":2}]");
        assert_eq!(chunk.groups[1].0.provider, None);
        assert!(acc.target([None, Some("1"), None, Some("F")]).is_err());
    }

    #[test]
    fn length_prefixes_keep_look_alike_keys_apart() {
        let mut acc = GroupAcc::new(1, 1 << 20);
        for parts in [
            [Some("a:1"), Some("b"), None, Some("F")],
            [Some("a"), Some("1:b"), None, Some("F")],
            [Some("a:1"), Some("b"), None, Some("F")],
        ] {
            let t = acc.target(parts).unwrap();
            t.push('1');
            let n = t.len();
            acc.written(n);
        }
        let chunk = acc.take();
        assert_eq!(chunk.groups.len(), 2);
        assert_eq!(chunk.groups[0].1, "[1,1]");
        // A later chunk starts empty and forgets the previous row's group.
        let t = acc
            .target([Some("a"), Some("1:b"), None, Some("F")])
            .unwrap();
        t.push('2');
        let n = t.len();
        acc.written(n);
        assert_eq!(acc.take().groups[0].1, "[2]");
    }
}
