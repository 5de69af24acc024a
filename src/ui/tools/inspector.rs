//! The inspector: type, TTL, encoding, memory, length and the decoded
//! meaning of the selected key, and its value page by page ("More"), drawn
//! as a virtual list of short rows so a 50 MB string or a million-member set
//! never makes a frame slow. The window holds at most [`MAX_ROWS`] rows of a
//! value; older rows give way to newer pages.

use eframe::egui;
use egui::RichText;

use crate::redis_admin::{Blob, Inspection, ValuePage};
use crate::ui::{format, theme};

/// Elements asked for per page.
pub const PAGE_COUNT: usize = 200;
/// Value rows held at most (older rows are dropped when a page would pass it).
pub const MAX_ROWS: usize = 50_000;
/// Characters per row of a string value (longer lines continue on the next row).
const ROW_CHARS: usize = 160;
/// The button that reads the next page.
pub const MORE_LABEL: &str = "More";

/// One row of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A piece of a string, or a set member.
    Text(String),
    /// A hash field and value, list index and item, zset member and score,
    /// stream id and fields.
    Pair(String, String),
    /// A member of an index: an entry key, opened by a click.
    Link {
        /// The key as shown.
        text: String,
        /// Its exact bytes.
        key: Vec<u8>,
    },
}

/// What the admin asked the inspector for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the next page.
    More,
    /// Inspect another key (an index member).
    Open(Vec<u8>),
}

/// What the inspector shows.
#[derive(Debug, Default)]
pub struct Inspector {
    /// The key shown (exact bytes), if any.
    pub key: Option<Vec<u8>>,
    /// Its type, TTL, … from the latest page.
    pub info: Option<Inspection>,
    /// The value's rows so far.
    pub rows: Vec<Row>,
    /// The pretty-printed JSON of a cache entry, as rows.
    pub pretty: Vec<Row>,
    /// Show `pretty` rather than `rows`.
    pub show_pretty: bool,
    /// Rows dropped to stay under [`MAX_ROWS`].
    pub dropped: u64,
    /// Elements of a collection read so far (a long element takes several
    /// rows, so rows do not count them).
    pub elements: u64,
    /// Cursor of the next page, when there is one.
    pub next_cursor: Option<String>,
    /// A request is under way.
    pub loading: bool,
    /// Why the last request failed.
    pub error: Option<String>,
}

/// The exact bytes of a blob.
pub fn blob_bytes(b: &Blob) -> Vec<u8> {
    match &b.hex {
        Some(h) => hex::decode(h).unwrap_or_else(|_| b.text.as_bytes().to_vec()),
        None => b.text.as_bytes().to_vec(),
    }
}

/// Splits text into rows of at most [`ROW_CHARS`] characters.
fn text_rows(text: &str, out: &mut Vec<Row>) {
    for line in text.split('\n') {
        let mut chars = line.chars().peekable();
        if chars.peek().is_none() {
            out.push(Row::Text(String::new()));
        }
        while chars.peek().is_some() {
            out.push(Row::Text(chars.by_ref().take(ROW_CHARS).collect()));
        }
    }
}

/// A name and a value as rows: the value cut into [`ROW_CHARS`] pieces
/// (later pieces under an empty name), then a note when the element was
/// longer than what was read.
fn pair_rows(name: String, value: &Blob, out: &mut Vec<Row>) {
    let mut pieces = Vec::new();
    text_rows(&value.text, &mut pieces);
    let mut name = Some(name);
    for p in pieces {
        let Row::Text(t) = p else { continue };
        out.push(Row::Pair(name.take().unwrap_or_default(), t));
    }
    if let Some(n) = name {
        out.push(Row::Pair(n, String::new()));
    }
    if let Some(full) = value.full_length {
        out.push(Row::Pair(String::new(), cut_note(value, full)));
    }
}

/// `… first 64.0 KB of 10.0 MB shown`
fn cut_note(value: &Blob, full: u64) -> String {
    let shown = value.hex.as_ref().map_or(value.text.len(), |h| h.len() / 2) as u64;
    format!("… first {} of {} shown", bytes(shown), bytes(full))
}

/// A byte count people read: `812 B`, `3.4 KB`, `12.3 MB`.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KB", n as f64 / 1024.0)
    } else {
        format::bytes_mb(n)
    }
}

impl Inspector {
    /// Starts showing `key` (its first page is on its way).
    pub fn open(&mut self, key: Vec<u8>) {
        *self = Inspector {
            key: Some(key),
            loading: true,
            show_pretty: true,
            ..Inspector::default()
        };
    }

    /// Folds in a page; pages of another key are ignored.
    pub fn apply(&mut self, cursor: Option<String>, ins: Inspection) {
        if self.key.as_deref() != Some(ins.key.key.as_slice()) {
            return;
        }
        self.loading = false;
        self.error = None;
        if cursor.is_none() {
            self.rows.clear();
            self.pretty.clear();
            self.dropped = 0;
            self.elements = 0;
        }
        self.elements += match &ins.value {
            Some(ValuePage::Hash { fields }) => fields.len(),
            Some(ValuePage::List { items, .. }) => items.len(),
            Some(ValuePage::Set { members }) => members.len(),
            Some(ValuePage::Zset { members, .. }) => members.len(),
            Some(ValuePage::Stream { entries }) => entries.len(),
            _ => 0,
        } as u64;
        let is_index = ins
            .parsed
            .as_ref()
            .is_some_and(|p| p.member_count.is_some());
        let rows = &mut self.rows;
        match &ins.value {
            Some(ValuePage::String {
                value, pretty_json, ..
            }) => {
                // A page may end inside a line: continue it.
                let mut fresh = Vec::new();
                text_rows(&value.text, &mut fresh);
                if let (Some(Row::Text(last)), Some(Row::Text(first))) =
                    (rows.last_mut(), fresh.first())
                    && cursor.is_some()
                    && last.chars().count() < ROW_CHARS
                {
                    last.push_str(first);
                    fresh.remove(0);
                }
                rows.extend(fresh);
                if let Some(p) = pretty_json {
                    text_rows(p, &mut self.pretty);
                }
            }
            // Long elements become several rows, so a frame only lays out
            // what is visible.
            Some(ValuePage::Hash { fields }) => {
                for f in fields {
                    let mut name = f.field.text.chars().take(ROW_CHARS).collect::<String>();
                    if let Some(full) = f.field.full_length {
                        name.push_str(&format!(" {}", cut_note(&f.field, full)));
                    }
                    pair_rows(name, &f.value, rows);
                }
            }
            Some(ValuePage::List { offset, items }) => {
                for (i, it) in items.iter().enumerate() {
                    pair_rows(format!("{}", *offset + i as u64), it, rows);
                }
            }
            Some(ValuePage::Set { members }) => {
                for m in members {
                    if is_index && m.full_length.is_none() {
                        rows.push(Row::Link {
                            text: m.text.clone(),
                            key: blob_bytes(m),
                        });
                    } else {
                        pair_rows(String::new(), m, rows);
                    }
                }
            }
            Some(ValuePage::Zset { members, .. }) => {
                for m in members {
                    pair_rows(m.score.clone(), &m.member, rows);
                }
            }
            Some(ValuePage::Stream { entries }) => {
                for e in entries {
                    let mut id = Some(e.id.clone());
                    for f in &e.fields {
                        let name = format!(
                            "{} {}=",
                            id.take().unwrap_or_default(),
                            f.field.text.chars().take(ROW_CHARS).collect::<String>()
                        );
                        pair_rows(name, &f.value, rows);
                    }
                    if let Some(id) = id {
                        rows.push(Row::Pair(id, String::new()));
                    }
                }
            }
            Some(ValuePage::Unsupported { note }) => rows.push(Row::Text(note.clone())),
            None => {}
        }
        if self.rows.len() > MAX_ROWS {
            let extra = self.rows.len() - MAX_ROWS;
            self.rows.drain(..extra);
            self.dropped += extra as u64;
        }
        self.next_cursor = ins.next_cursor.clone();
        self.info = Some(ins);
    }

    /// A request about the shown key failed.
    pub fn failed(&mut self, key: &[u8], error: String) {
        if self.key.as_deref() == Some(key) {
            self.loading = false;
            self.error = Some(error);
        }
    }

    /// Draws the key's facts and value; returns what the admin asked for.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> Option<Action> {
        let dark = theme::is_dark(ui.ctx());
        let muted = theme::muted(dark);
        let Some(key) = &self.key else {
            ui.label(RichText::new("Select a key to inspect it.").color(muted));
            return None;
        };
        let mut action = None;
        ui.add(
            egui::Label::new(
                RichText::new(crate::keys::display_bytes(key))
                    .monospace()
                    .strong(),
            )
            .wrap(),
        );
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(theme::bad(dark)));
        }
        let Some(info) = &self.info else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading…");
            });
            return None;
        };
        if !info.exists {
            ui.label(RichText::new("This key does not exist (deleted or expired).").color(muted));
            return None;
        }
        facts_ui(ui, info);
        ui.separator();
        let has_pretty = !self.pretty.is_empty();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Value").strong());
            if has_pretty {
                ui.selectable_value(&mut self.show_pretty, true, "Pretty JSON");
                ui.selectable_value(&mut self.show_pretty, false, "Raw");
            }
            let shown = self.elements;
            let of = match (info.key_type.as_str(), info.length) {
                ("string", Some(n)) => {
                    format!("{} of the value read", bytes(value_end(info).min(n)))
                }
                (_, Some(n)) => format!("{} of {} shown", format::group(shown), format::group(n)),
                _ => String::new(),
            };
            ui.label(RichText::new(of).small().color(muted));
            if self.dropped > 0 {
                ui.label(
                    RichText::new(format!(
                        "(first {} rows let go to stay small)",
                        format::group(self.dropped)
                    ))
                    .small()
                    .color(muted),
                );
            }
        });
        let more = self.next_cursor.is_some();
        let rows = if has_pretty && self.show_pretty {
            &self.pretty
        } else {
            &self.rows
        };
        let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
        let reserve = if more { 36.0 } else { 4.0 };
        let max_height = (ui.available_height() - reserve).max(row_height * 3.0);
        ui.scope(|ui| {
            // Rows exactly `row_height` apart, as show_rows assumes.
            ui.spacing_mut().item_spacing.y = 0.0;
            egui::ScrollArea::both()
                .id_salt("value-rows")
                .auto_shrink(false)
                .max_height(max_height)
                .show_rows(ui, row_height, rows.len(), |ui, range| {
                    ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
                    let layout = egui::Layout::left_to_right(egui::Align::Center);
                    for row in &rows[range] {
                        let size = egui::vec2(ui.available_width(), row_height);
                        ui.allocate_ui_with_layout(size, layout, |ui| match row {
                            Row::Text(t) => {
                                ui.label(RichText::new(t).monospace());
                            }
                            Row::Pair(a, b) => {
                                ui.label(RichText::new(a).monospace().color(theme::accent(dark)));
                                ui.label(RichText::new(b).monospace());
                            }
                            Row::Link { text, key } => {
                                if ui
                                    .link(RichText::new(text).monospace())
                                    .on_hover_text("Inspect this entry")
                                    .clicked()
                                {
                                    action = Some(Action::Open(key.clone()));
                                }
                            }
                        });
                    }
                });
        });
        if more {
            ui.horizontal(|ui| {
                let b = ui.add_enabled(!self.loading, egui::Button::new(MORE_LABEL));
                if b.clicked() {
                    action = Some(Action::More);
                }
                if self.loading {
                    ui.spinner();
                }
            });
        }
        action
    }
}

/// Where the string pages read so far end.
fn value_end(info: &Inspection) -> u64 {
    match &info.value {
        Some(ValuePage::String { offset, value, .. }) => offset + blob_bytes(value).len() as u64,
        _ => 0,
    }
}

/// The grid of facts and, for a cachedeck key, what its name means.
fn facts_ui(ui: &mut egui::Ui, info: &Inspection) {
    let dark = theme::is_dark(ui.ctx());
    let muted = theme::muted(dark);
    egui::Grid::new("key-facts")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            let mut row = |name: &str, value: String| {
                ui.label(RichText::new(name).color(muted));
                ui.label(value);
                ui.end_row();
            };
            row("Type", info.key_type.clone());
            row(
                "TTL",
                match info.ttl_ms {
                    Some(ms) => format!("expires in {}", format::duration_ms(ms.max(0) as u64)),
                    None => "no expiry".into(),
                },
            );
            row(
                "Encoding",
                info.encoding.clone().unwrap_or_else(|| "—".into()),
            );
            row(
                "Memory",
                info.memory_bytes.map(bytes).unwrap_or_else(|| "—".into()),
            );
            let length = match (info.key_type.as_str(), info.length) {
                ("string", Some(n)) => bytes(n),
                (_, Some(n)) => format::count(n, "element", "elements"),
                _ => "—".into(),
            };
            row("Length", length);
            if let Some(p) = &info.parsed {
                let kind = match p.kind.as_str() {
                    "entry" => "cache entry",
                    "masterIndex" => "master index",
                    "indexList" => "list of indexes",
                    "secondaryIndex" => "secondary index",
                    "meta" => "metadata",
                    "lastWarm" => "last warm time",
                    "epoch" => "invalidation epoch (never deleted)",
                    "invalidated" => "entries invalidated, waiting for a warm",
                    "lock" => "warm lock",
                    "stats" => "reader statistics",
                    "trend" => "memory trend",
                    other => other,
                };
                let generation = p
                    .generation
                    .as_deref()
                    .map(|g| format!(" ({g})"))
                    .unwrap_or_default();
                row(
                    "Analytics Cache",
                    format!("{kind} of datasource #{}{generation}", p.datasource),
                );
                let parts = [
                    ("Measure", p.measure.clone()),
                    ("Practice", p.practice.clone()),
                    (
                        "Provider",
                        if p.provider_is_null {
                            Some("NULL".into())
                        } else {
                            p.provider.clone()
                        },
                    ),
                    ("Frequency", p.frequency.clone()),
                ];
                for (name, v) in parts {
                    if let Some(v) = v {
                        row(name, v);
                    }
                }
                if let Some(n) = p.member_count {
                    row(
                        "Members",
                        format!(
                            "{} (listed below; click one to inspect it)",
                            format::group(n)
                        ),
                    );
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_into_rows() {
        let mut rows = Vec::new();
        text_rows(&"x".repeat(ROW_CHARS * 2 + 1), &mut rows);
        assert_eq!(rows.len(), 3);
        text_rows("a\nb", &mut rows);
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn elements_are_counted_not_their_rows() {
        let big = vec![b'x'; crate::redis_admin::ELEMENT_CAP + 5];
        let page = Inspection {
            key: crate::redis_admin::KeyInfo::new(b"l".to_vec()),
            exists: true,
            key_type: "list".into(),
            ttl_ms: None,
            encoding: None,
            memory_bytes: None,
            length: Some(4),
            value: Some(ValuePage::List {
                offset: 0,
                items: vec![Blob::new(b"a"), Blob::capped(&big)],
            }),
            next_cursor: Some("2".into()),
            parsed: None,
        };
        let mut ins = Inspector::default();
        ins.open(b"l".to_vec());
        ins.apply(None, page.clone());
        assert_eq!(ins.elements, 2);
        assert!(ins.rows.len() > 2);
        ins.apply(Some("2".into()), page);
        assert_eq!(ins.elements, 4);
    }

    #[test]
    fn long_elements_become_rows_with_their_full_length() {
        let mut rows = Vec::new();
        let big = vec![b'x'; crate::redis_admin::ELEMENT_CAP + 5];
        pair_rows("0".into(), &Blob::capped(&big), &mut rows);
        let pieces = crate::redis_admin::ELEMENT_CAP.div_ceil(ROW_CHARS);
        assert_eq!(rows.len(), pieces + 1);
        assert_eq!(rows[0], Row::Pair("0".into(), "x".repeat(ROW_CHARS)));
        assert_eq!(rows[1], Row::Pair(String::new(), "x".repeat(ROW_CHARS)));
        assert!(
            matches!(&rows[pieces], Row::Pair(a, b) if a.is_empty() && b == "… first 64.0 KB of 64.0 KB shown"),
            "{:?}",
            rows[pieces]
        );
        let mut rows = Vec::new();
        pair_rows("k".into(), &Blob::new(b""), &mut rows);
        assert_eq!(rows, vec![Row::Pair("k".into(), String::new())]);
    }

    #[test]
    fn blobs_give_back_their_bytes() {
        assert_eq!(blob_bytes(&Blob::new(b"\xff\x00")), b"\xff\x00".to_vec());
        assert_eq!(blob_bytes(&Blob::new(b"text")), b"text".to_vec());
    }
}
