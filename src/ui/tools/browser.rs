//! The key browser: the keys a browse returned, held up to a fixed bound,
//! drawn as a virtual list (only the visible rows are laid out), with the
//! namespace tree of the same keys.

use eframe::egui;
use egui::RichText;

use super::tree::NamespaceTree;
use crate::backend::{BrowsedKey, KeysPage};
use crate::ui::{format, theme};

/// Most keys one browse holds in the window.
pub const MAX_KEYS_HELD: usize = 1_000_000;
/// Most key-name bytes one browse holds (names plus escaped forms).
pub const MAX_NAME_BYTES: usize = 128 * 1024 * 1024;

/// What the browser holds and where its browse stands.
#[derive(Debug, Default)]
pub struct Browser {
    /// The window's number of the current browse (0: none yet).
    pub session: u64,
    /// The pattern of the current browse, as typed.
    pub pattern: String,
    /// The keys returned so far, in SCAN order.
    pub keys: Vec<BrowsedKey>,
    /// Heap bytes of `keys` (see [`MAX_NAME_BYTES`]).
    pub name_bytes: usize,
    /// Distinct keys the backend's session returned.
    pub scanned: u64,
    /// Keys in the keyspace (DBSIZE over every master) at the start.
    pub keyspace: u64,
    /// Every master was scanned to the end.
    pub done: bool,
    /// A request is under way (first page, load more or load all).
    pub loading: bool,
    /// Master being scanned and how many there are.
    pub node: (usize, usize),
    /// The duplicate filter of the scan is still complete.
    pub dedupe_complete: bool,
    /// Keys dropped because the window's bound was reached.
    pub dropped: u64,
    /// Index of the selected key in `keys`.
    pub selected: Option<usize>,
    /// Why the browse stopped, when it failed.
    pub error: Option<String>,
    /// Namespaces of the keys held.
    pub tree: NamespaceTree,
}

impl Browser {
    /// Starts holding a new browse.
    pub fn reset(&mut self, session: u64, pattern: String) {
        *self = Browser {
            session,
            pattern,
            loading: true,
            dedupe_complete: true,
            ..Browser::default()
        };
    }

    /// True when the window holds as much as it may.
    pub fn full(&self) -> bool {
        self.keys.len() >= MAX_KEYS_HELD || self.name_bytes >= MAX_NAME_BYTES
    }

    /// Folds in a batch of keys of the current browse.
    pub fn apply(&mut self, page: KeysPage) {
        if page.session != self.session {
            return;
        }
        for k in page.keys {
            if self.full() {
                self.dropped += 1;
                continue;
            }
            self.name_bytes += k.heap_bytes();
            self.tree.add(&k.key);
            self.keys.push(k);
        }
        self.scanned = page.scanned;
        self.keyspace = page.keyspace;
        self.done = page.done;
        self.loading = page.loading;
        self.node = page.node;
        self.dedupe_complete = page.dedupe_complete;
    }

    /// The browse failed or ended.
    pub fn failed(&mut self, session: u64, error: String) {
        if session == self.session {
            self.loading = false;
            self.error = Some(error);
        }
    }

    /// Bytes the held keys take in the window, rows included.
    pub fn held_bytes(&self) -> usize {
        self.name_bytes + self.keys.capacity() * BrowsedKey::ROW_BYTES
    }

    /// "12,345 keys loaded of 1,000,000 in the keyspace" and the state.
    pub fn status(&self) -> String {
        if self.session == 0 {
            return "Press Browse to list keys (SCAN, never KEYS).".into();
        }
        let mut s = format!(
            "{} loaded of {} in the keyspace",
            format::count(self.keys.len() as u64, "key", "keys"),
            format::group(self.keyspace)
        );
        if self.loading {
            s.push_str(&format!(
                " • scanning node {} of {}…",
                self.node.0 + 1,
                self.node.1.max(1)
            ));
        } else if self.done {
            s.push_str(" • scan complete");
        } else {
            s.push_str(" • more may match");
        }
        if self.dropped > 0 || self.full() {
            s.push_str(&format!(
                " • window limit reached ({} keys / {})",
                format::group(MAX_KEYS_HELD as u64),
                format::bytes_mb(MAX_NAME_BYTES as u64)
            ));
        }
        if !self.dedupe_complete {
            s.push_str(" • duplicates possible");
        }
        s
    }

    /// Draws the virtual key list; returns the row clicked.
    pub fn list_ui(&mut self, ui: &mut egui::Ui) -> Option<usize> {
        let dark = theme::is_dark(ui.ctx());
        if self.keys.is_empty() {
            let text = if self.loading {
                "Scanning…"
            } else if self.session == 0 {
                "No browse yet."
            } else {
                "No keys match."
            };
            ui.label(RichText::new(text).color(theme::muted(dark)));
            return None;
        }
        let mut clicked = None;
        // Rows touch (no item spacing) and are exactly `row_height` tall, so
        // show_rows places every row where it lays it out.
        let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 6.0;
        let total = self.keys.len();
        ui.scope(|ui| {
            ui.spacing_mut().item_spacing.y = 0.0;
            egui::ScrollArea::vertical()
                .id_salt("keys-list")
                .auto_shrink(false)
                .show_rows(ui, row_height, total, |ui, rows| {
                    for i in rows {
                        if row_ui(ui, &self.keys[i], self.selected == Some(i), row_height) {
                            clicked = Some(i);
                        }
                    }
                });
        });
        if let Some(i) = clicked {
            self.selected = Some(i);
        }
        clicked
    }
}

/// One full-width row, the name left-aligned and cut at the right edge;
/// true when clicked.
fn row_ui(ui: &mut egui::Ui, key: &BrowsedKey, selected: bool, height: f32) -> bool {
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, height), egui::Sense::click());
    let text = key.display();
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::Button, true, selected, text));
    if ui.is_rect_visible(rect) {
        let visuals = ui.style().interact_selectable(&response, selected);
        if selected || response.hovered() {
            ui.painter()
                .rect_filled(rect, visuals.corner_radius, visuals.weak_bg_fill);
        }
        let font = egui::TextStyle::Monospace.resolve(ui.style());
        let galley = ui
            .painter()
            .layout_no_wrap(text.to_string(), font, visuals.text_color());
        let pos = egui::pos2(rect.left() + 6.0, rect.center().y - galley.size().y / 2.0);
        ui.painter()
            .with_clip_rect(rect.intersect(ui.clip_rect()))
            .galley(pos, galley, visuals.text_color());
    }
    response.clicked()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(session: u64, keys: &[&[u8]]) -> KeysPage {
        KeysPage {
            session,
            keys: keys.iter().map(|k| BrowsedKey::new(k.to_vec())).collect(),
            scanned: keys.len() as u64,
            keyspace: 10,
            done: false,
            loading: false,
            node: (0, 1),
            dedupe_complete: true,
        }
    }

    #[test]
    fn pages_of_other_sessions_are_ignored() {
        let mut b = Browser::default();
        b.reset(2, "*".into());
        b.apply(page(1, &[b"old"]));
        b.apply(page(2, &[b"a:1", b"a:\xff"]));
        assert_eq!(b.keys.len(), 2);
        assert_eq!(b.keys[1].display(), "a:\\xff");
        assert_eq!(b.tree.total(), 2);
        assert!(b.status().starts_with("2 keys loaded of 10"));
    }
}
