//! Gathering rows per group as they are read, so that no sort is needed and
//! no row is held twice: each row's JSON is appended straight to its group's
//! buffer. The reader hands over everything it gathered whenever the buffers
//! pass a byte budget (and at the end); a group may therefore arrive in
//! several chunks, which the warm joins in Redis.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::source_err;
use crate::error::Result;
use crate::keys::{DsId, GroupKey};

/// Rows gathered per group since the last hand-over.
#[derive(Debug, Default)]
pub struct GroupChunk {
    /// Each group's rows as comma-joined JSON objects (no brackets).
    pub groups: Vec<(GroupKey, String)>,
    /// Rows in this chunk.
    pub rows: u64,
}

/// The accumulator a reader task fills.
pub(crate) struct GroupAcc {
    ds: DsId,
    /// Unambiguous text of a group key → its place in `groups`.
    index: HashMap<String, usize>,
    groups: Vec<(GroupKey, String)>,
    /// Reused buffer for building the lookup key of each row.
    keybuf: String,
    bytes: usize,
    rows: u64,
    budget: usize,
}

impl GroupAcc {
    pub(crate) fn new(ds: DsId, budget: usize) -> GroupAcc {
        GroupAcc {
            ds,
            index: HashMap::new(),
            groups: Vec::new(),
            keybuf: String::with_capacity(64),
            bytes: 0,
            rows: 0,
            budget,
        }
    }

    /// The buffer the next row of this group is written to (a comma already
    /// pushed when the group has rows). `parts` are measure, practice,
    /// provider, frequency; only the provider may be `None`.
    pub(crate) fn target(&mut self, parts: [Option<&str>; 4]) -> Result<&mut String> {
        self.keybuf.clear();
        for p in parts {
            match p {
                Some(v) => {
                    let _ = write!(self.keybuf, "{}:", v.len());
                    self.keybuf.push_str(v);
                }
                None => self.keybuf.push('-'),
            }
        }
        self.rows += 1;
        let i = match self.index.get(self.keybuf.as_str()) {
            Some(&i) => i,
            None => {
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
                self.groups.push((g, String::with_capacity(256)));
                self.index
                    .insert(self.keybuf.clone(), self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        let buf = &mut self.groups[i].1;
        if !buf.is_empty() {
            buf.push(',');
        }
        self.bytes = self.bytes.saturating_sub(buf.len());
        Ok(buf)
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

    /// Hands over everything gathered.
    pub(crate) fn take(&mut self) -> GroupChunk {
        self.index.clear();
        self.bytes = 0;
        GroupChunk {
            groups: std::mem::take(&mut self.groups),
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
        ] {
            let t = acc.target([Some("M"), Some("1"), prov, Some("F")]).unwrap();
            t.push_str(row);
            let n = t.len();
            acc.written(n);
        }
        let chunk = acc.take();
        assert_eq!(chunk.rows, 3);
        assert_eq!(chunk.groups.len(), 2);
        assert_eq!(chunk.groups[0].1, "{\"a\":1},{\"a\":3}");
        assert_eq!(chunk.groups[1].0.provider, None);
        assert!(acc.target([None, Some("1"), None, Some("F")]).is_err());
    }
}
