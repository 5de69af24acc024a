//! The namespace tree beside the key list: key names split at `:` (never
//! inside a `{…}` hash tag), counting the keys under each prefix. Clicking a
//! namespace narrows the browse to `prefix:*`. Bounded: at most
//! [`MAX_DEPTH`] levels and [`MAX_NODES`] namespaces, whatever the keys.

use std::collections::HashMap;

use eframe::egui;
use egui::RichText;

use crate::ui::{format, theme};

/// Namespace levels counted (deeper segments count in their ancestor).
pub const MAX_DEPTH: usize = 4;
/// Namespaces kept; keys under further new prefixes count in the deepest
/// existing ancestor only.
pub const MAX_NODES: usize = 20_000;
/// Children listed under one namespace (the largest first).
const SHOWN_CHILDREN: usize = 200;

/// One namespace.
#[derive(Debug, Default)]
struct Node {
    /// Keys under this prefix.
    count: u64,
    /// Sub-namespaces by segment bytes.
    children: HashMap<Box<[u8]>, Node>,
    /// Children sorted by count (largest first), as of `sorted_at`.
    sorted: Vec<(Box<[u8]>, u64)>,
    /// The tree version `sorted` was computed at.
    sorted_at: u64,
}

/// The namespace tree of the keys a browse holds.
#[derive(Debug, Default)]
pub struct NamespaceTree {
    /// The whole keyspace browsed (count = keys added).
    root: Node,
    /// Namespaces held.
    nodes: usize,
    /// Bumped on every change, so sorted child lists are recomputed lazily.
    version: u64,
}

/// The `:` positions of `key` outside hash tags, at most `max`.
fn cuts(key: &[u8], max: usize) -> Vec<usize> {
    crate::redis_admin::info::namespace_cuts(key, max)
}

/// A SCAN pattern for every key under `prefix` (segments joined by `:`):
/// glob characters escaped; bytes that are not text become `?` (any one
/// byte), so the pattern stays typeable and still narrows.
pub fn narrow_pattern(prefix: &[u8]) -> String {
    let escaped = crate::redis_admin::glob_escape(prefix);
    let mut out = String::with_capacity(escaped.len() + 2);
    for chunk in escaped.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('?');
        }
    }
    out.push_str(":*");
    out
}

impl NamespaceTree {
    /// Forgets every key.
    pub fn clear(&mut self) {
        *self = NamespaceTree::default();
    }

    /// Keys counted.
    pub fn total(&self) -> u64 {
        self.root.count
    }

    /// Namespaces held.
    pub fn len(&self) -> usize {
        self.nodes
    }

    /// True when no namespace is held.
    pub fn is_empty(&self) -> bool {
        self.nodes == 0
    }

    /// Counts one key.
    pub fn add(&mut self, key: &[u8]) {
        self.version += 1;
        self.root.count += 1;
        let mut node = &mut self.root;
        let mut start = 0;
        for cut in cuts(key, MAX_DEPTH) {
            let seg = &key[start..cut];
            start = cut + 1;
            if !node.children.contains_key(seg) {
                if self.nodes >= MAX_NODES {
                    return;
                }
                self.nodes += 1;
                node.children.insert(seg.into(), Node::default());
            }
            let Some(child) = node.children.get_mut(seg) else {
                return;
            };
            child.count += 1;
            node = child;
        }
    }

    /// Draws the tree; returns the prefix clicked (segments joined by `:`).
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Option<Vec<u8>> {
        let dark = theme::is_dark(ui.ctx());
        if self.root.count == 0 {
            return None;
        }
        if self.root.children.is_empty() {
            ui.label(
                RichText::new("No `:` namespaces among the keys loaded.").color(theme::muted(dark)),
            );
            return None;
        }
        let mut clicked = None;
        let version = self.version;
        let id = ui.make_persistent_id("ns-tree");
        node_ui(
            ui,
            &mut self.root,
            version,
            id,
            &mut Vec::new(),
            &mut clicked,
        );
        if self.nodes >= MAX_NODES {
            ui.label(
                RichText::new(format!(
                    "Showing the first {} namespaces; narrow the pattern for more.",
                    format::group(MAX_NODES as u64)
                ))
                .small()
                .color(theme::muted(dark)),
            );
        }
        clicked
    }
}

/// Draws the children of `node`.
fn node_ui(
    ui: &mut egui::Ui,
    node: &mut Node,
    version: u64,
    id: egui::Id,
    prefix: &mut Vec<u8>,
    clicked: &mut Option<Vec<u8>>,
) {
    let dark = theme::is_dark(ui.ctx());
    if node.sorted_at != version || node.sorted.len() != node.children.len().min(SHOWN_CHILDREN) {
        let mut all: Vec<(Box<[u8]>, u64)> = node
            .children
            .iter()
            .map(|(k, n)| (k.clone(), n.count))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(SHOWN_CHILDREN);
        node.sorted = all;
        node.sorted_at = version;
    }
    let shown = node.sorted.clone();
    for (seg, count) in &shown {
        let before = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b':');
        }
        prefix.extend_from_slice(seg);
        let label = format!("{}:", crate::keys::display_bytes(seg));
        let child_id = id.with(&**seg);
        let has_children = node
            .children
            .get(seg)
            .is_some_and(|c| !c.children.is_empty());
        let header = |ui: &mut egui::Ui, clicked: &mut Option<Vec<u8>>, prefix: &[u8]| {
            if ui
                .link(RichText::new(&label).monospace())
                .on_hover_text(format!("Browse {}", narrow_pattern(prefix)))
                .clicked()
            {
                *clicked = Some(prefix.to_vec());
            }
            ui.label(RichText::new(format::group(*count)).color(theme::muted(dark)));
        };
        if has_children {
            let state = egui::collapsing_header::CollapsingState::load_with_default_open(
                ui.ctx(),
                child_id,
                false,
            );
            state
                .show_header(ui, |ui| header(ui, clicked, prefix))
                .body(|ui| {
                    if let Some(child) = node.children.get_mut(seg) {
                        node_ui(ui, child, version, child_id, prefix, clicked);
                    }
                });
        } else {
            ui.horizontal(|ui| {
                // Line up with the headers' toggle buttons.
                ui.add_space(ui.spacing().indent);
                header(ui, clicked, prefix);
            });
        }
        prefix.truncate(before);
    }
    let hidden = node.children.len().saturating_sub(SHOWN_CHILDREN);
    if hidden > 0 {
        ui.label(
            RichText::new(format!("… {} more", format::group(hidden as u64)))
                .small()
                .color(theme::muted(dark)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_counted_without_splitting_hash_tags() {
        let mut t = NamespaceTree::default();
        t.add(b"cache:{ds:1}:m:Charges");
        t.add(b"cache:{ds:1}:m:Payments");
        t.add(b"idx:{ds:1}:master");
        t.add(b"plain");
        assert_eq!(t.total(), 4);
        let cache = &t.root.children[&b"cache"[..]];
        assert_eq!(cache.count, 2);
        let ds = &cache.children[&b"{ds:1}"[..]];
        assert_eq!(ds.count, 2);
        assert_eq!(ds.children[&b"m"[..]].count, 2);
        assert!(!t.root.children.contains_key(&b"plain"[..]));
    }

    #[test]
    fn narrowing_escapes_globs_and_binary() {
        assert_eq!(narrow_pattern(b"cache:{ds:1}"), "cache:{ds:1}:*");
        assert_eq!(narrow_pattern(b"a*b"), "a\\*b:*");
        assert_eq!(narrow_pattern(b"x\xff"), "x?:*");
    }

    #[test]
    fn the_node_count_is_bounded() {
        let mut t = NamespaceTree::default();
        for i in 0..(MAX_NODES + 500) {
            t.add(format!("n{i}:leaf").as_bytes());
        }
        assert_eq!(t.len(), MAX_NODES);
        assert_eq!(t.total(), (MAX_NODES + 500) as u64);
    }
}
