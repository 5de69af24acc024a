//! The Keys tab (browser, namespace tree, inspector, purge, TTL) and the
//! Redis tab (live INFO plots), with their own view state.
//!
//! - `browser`: the keys of the current browse (bounded) as a virtual list.
//! - `tree`: the namespace tree of those keys.
//! - `inspector`: the selected key's facts and value pages.
//! - `purge`: the dry run → confirmation → progress dialog of pattern writes.
//! - `ttl`: the selected key's TTL row and its production confirmation.
//! - `server`: the Redis tab; `slowlog`: its slow log panel.

pub mod browser;
pub mod inspector;
pub mod purge;
pub mod server;
pub mod slowlog;
pub mod tree;
pub mod ttl;

use eframe::egui;
use egui::RichText;
use serde::{Deserialize, Serialize};

use crate::backend::{BrowseRequest, Command, PatternWrite, ToolsCommand, ToolsEvent};
use crate::redis_admin::TtlChange;
use crate::ui::model::Model;
use crate::ui::{format, theme};
use browser::{Browser, MAX_KEYS_HELD, MAX_NAME_BYTES};
use inspector::{Action, Inspector, PAGE_COUNT};
use purge::{DialogOutcome, PatternDialog, Stage};
use server::ServerView;
use ttl::{KeyTtlDialog, KeyTtlOutcome, TtlAction};

/// The button that starts a browse.
pub const BROWSE_LABEL: &str = "Browse";
/// The button that loads one more page.
pub const LOAD_MORE_LABEL: &str = "Load more";
/// The button that loads every remaining key (up to the window's bound).
pub const LOAD_ALL_LABEL: &str = "Load all";
/// The button that stops a load.
pub const STOP_LABEL: &str = "Stop";
/// The button that opens the purge dialog for the pattern.
pub const PURGE_MATCHING_LABEL: &str = "Purge matching…";
/// The button that opens the TTL dialog for the pattern.
pub const TTL_MATCHING_LABEL: &str = "Set TTL on matching…";
/// Page sizes offered.
const PAGE_SIZES: [usize; 4] = [100, 500, 1_000, 5_000];
/// Type filters offered (empty: every type).
const TYPES: [&str; 7] = ["", "string", "hash", "list", "set", "zset", "stream"];

/// The Redis tools' settings kept between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolsPersisted {
    /// The browse pattern (SCAN MATCH glob).
    pub pattern: String,
    /// Only keys of this type (empty: every type).
    pub type_filter: String,
    /// Keys per page ("load more").
    pub page_size: usize,
    /// The TTL typed for "Set TTL on matching…".
    pub pattern_ttl: String,
}

impl Default for ToolsPersisted {
    fn default() -> Self {
        ToolsPersisted {
            pattern: "*".into(),
            type_filter: String::new(),
            page_size: 500,
            pattern_ttl: String::new(),
        }
    }
}

/// What the Keys and Redis tabs show and are doing.
#[derive(Default)]
pub struct ToolsView {
    /// The keys of the current browse.
    pub browser: Browser,
    /// The selected key.
    pub inspector: Inspector,
    /// The open purge / TTL-by-pattern dialog.
    pub dialog: Option<PatternDialog>,
    /// The open production confirmation of one key's TTL change.
    pub key_ttl: Option<KeyTtlDialog>,
    /// The Redis tab.
    pub server: ServerView,
    /// The Redis tab's slow log panel.
    pub slowlog: slowlog::SlowLogView,
    /// What was typed in the selected key's TTL field.
    pub ttl_input: String,
    /// A key TTL change is under way.
    pub ttl_busy: bool,
    /// The last browse asked for (repeated after a write changed the keys).
    last_browse: Option<BrowseRequest>,
    /// A write ended: browse again and re-read the selected key.
    reload: bool,
}

impl ToolsView {
    /// Folds in one answer from the backend.
    pub fn apply(&mut self, ev: ToolsEvent, now_ms: i64) {
        match ev {
            ToolsEvent::Keys(page) => self.browser.apply(page),
            ToolsEvent::BrowseFailed { session, error } => self.browser.failed(session, error),
            ToolsEvent::Inspected { cursor, inspection } => {
                self.inspector.apply(cursor, *inspection)
            }
            ToolsEvent::InspectFailed { key, error } => self.inspector.failed(&key, error),
            ToolsEvent::Preview {
                pattern,
                write,
                preview,
            } => {
                if let Some(d) = &mut self.dialog
                    && matches!(d.stage, Stage::Counting)
                    && d.pattern == pattern
                    && d.write == write
                {
                    d.stage = Stage::Ready(preview);
                }
            }
            ToolsEvent::Progress(p) => {
                if let Some(PatternDialog {
                    stage: Stage::Running { progress, .. },
                    ..
                }) = &mut self.dialog
                {
                    *progress = Some(p);
                }
            }
            ToolsEvent::Purged(out) => {
                let text = format!(
                    "{} {} of {} matching keys{}{}.",
                    if out.cancelled {
                        "Cancelled after deleting"
                    } else {
                        "Deleted"
                    },
                    format::group(out.deleted),
                    format::group(out.matched),
                    kept(out.protected_skipped),
                    took(out.duration_ms)
                );
                self.finish_write(text);
            }
            ToolsEvent::TtlChanged(out) => {
                let text = format!(
                    "{} the TTL of {} of {} matching keys{}{}.",
                    if out.cancelled {
                        "Cancelled after changing"
                    } else {
                        "Changed"
                    },
                    format::group(out.changed),
                    format::group(out.matched),
                    kept(out.protected_skipped),
                    took(out.duration_ms)
                );
                self.finish_write(text);
            }
            ToolsEvent::KeyTtlChanged(out) => {
                self.ttl_busy = false;
                if self.inspector.key.as_deref() == Some(out.key.key.as_slice())
                    && let Some(info) = &mut self.inspector.info
                {
                    info.ttl_ms = out.ttl_ms;
                    info.exists = out.existed;
                }
            }
            ToolsEvent::WriteFailed { error } => {
                self.ttl_busy = false;
                if let Some(d) = &mut self.dialog
                    && matches!(d.stage, Stage::Counting | Stage::Running { .. })
                {
                    d.stage = Stage::Failed(error);
                    self.reload = true;
                }
            }
            ToolsEvent::Server(info) => self.server.apply(*info, now_ms),
            ToolsEvent::ServerFailed { error } => self.server.error = Some(error),
            ToolsEvent::SlowLog(log) => self.slowlog.apply(*log),
            ToolsEvent::SlowLogFailed { error } => self.slowlog.failed(error),
        }
    }

    fn finish_write(&mut self, text: String) {
        if let Some(d) = &mut self.dialog {
            d.stage = Stage::Done(text);
        }
        self.reload = true;
    }

    /// Starts a browse of the persisted pattern.
    fn browse(&mut self, saved: &ToolsPersisted, cmds: &mut Vec<Command>) {
        let session = self.browser.session + 1;
        let req = BrowseRequest {
            session,
            pattern: saved.pattern.trim().as_bytes().to_vec(),
            type_filter: (!saved.type_filter.is_empty()).then(|| saved.type_filter.clone()),
            page_size: saved.page_size.max(1),
        };
        self.browser
            .reset(session, saved.pattern.trim().to_string());
        self.last_browse = Some(req.clone());
        cmds.push(Command::Tools(ToolsCommand::Browse(req)));
    }

    /// Shows `key` in the inspector and asks for its first page.
    fn inspect(&mut self, key: Vec<u8>, cmds: &mut Vec<Command>) {
        self.inspector.open(key.clone());
        cmds.push(Command::Tools(ToolsCommand::Inspect {
            key,
            cursor: None,
            count: PAGE_COUNT,
        }));
    }

    /// Opens the pattern dialog and asks for its dry run.
    fn open_dialog(
        &mut self,
        pattern: Vec<u8>,
        write: PatternWrite,
        model: &Model,
        cmds: &mut Vec<Command>,
    ) {
        self.dialog = Some(PatternDialog::new(
            pattern.clone(),
            write,
            model.profiles.production,
        ));
        cmds.push(Command::Tools(ToolsCommand::Preview { pattern, write }));
    }

    /// Draws the Keys tab.
    pub fn keys_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        saved: &mut ToolsPersisted,
        _now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        let dark = theme::is_dark(ui.ctx());
        // The first visit lists the first page by itself (one SCAN call).
        if self.last_browse.is_none() && model.connection.redis.is_up() {
            self.browse(saved, cmds);
        }
        self.toolbar_ui(ui, model, saved, cmds);
        let status = self.browser.status();
        ui.label(RichText::new(status).small().color(theme::muted(dark)));
        if let Some(e) = &self.browser.error {
            ui.label(RichText::new(e).small().color(theme::bad(dark)));
        }
        ui.separator();
        egui::Panel::left("keys-tree")
            .resizable(true)
            .default_size(230.0)
            .min_size(140.0)
            .show(ui, |ui| {
                ui.label(RichText::new("Namespaces").strong());
                egui::ScrollArea::vertical()
                    .id_salt("ns-tree-scroll")
                    .auto_shrink(false)
                    .show(ui, |ui| {
                        if let Some(prefix) = self.browser.tree.ui(ui) {
                            saved.pattern = tree::narrow_pattern(&prefix);
                            self.browse(saved, cmds);
                        }
                    });
            });
        // The inspector takes at least two fifths of what the tree leaves.
        let inspector_min = (ui.available_width() * 0.4).max(260.0);
        egui::Panel::right("keys-inspector")
            .resizable(true)
            .default_size(inspector_min * 1.15)
            .min_size(inspector_min)
            .show(ui, |ui| self.inspector_ui(ui, model, cmds));
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(i) = self.browser.list_ui(ui)
                && let Some(k) = self.browser.keys.get(i)
            {
                let key = k.key.to_vec();
                self.inspect(key, cmds);
            }
        });
    }

    /// Pattern, filters, browse buttons and the pattern writes.
    fn toolbar_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        saved: &mut ToolsPersisted,
        cmds: &mut Vec<Command>,
    ) {
        let up = model.connection.redis.is_up();
        let b = &self.browser;
        let active = b.session != 0 && b.error.is_none();
        let can_more = up && active && !b.loading && !b.done && !b.full();
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Pattern:");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut saved.pattern)
                        .font(egui::TextStyle::Monospace)
                        .hint_text("cache:{ds:1}:*")
                        .desired_width(260.0),
                )
                .labelled_by(label.id);
            let entered = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            egui::ComboBox::from_id_salt("keys-type")
                .selected_text(if saved.type_filter.is_empty() {
                    "any type"
                } else {
                    saved.type_filter.as_str()
                })
                .show_ui(ui, |ui| {
                    for t in TYPES {
                        let text = if t.is_empty() { "any type" } else { t };
                        ui.selectable_value(&mut saved.type_filter, t.to_string(), text);
                    }
                });
            egui::ComboBox::from_id_salt("keys-page")
                .selected_text(format!(
                    "{} per page",
                    format::group(saved.page_size as u64)
                ))
                .show_ui(ui, |ui| {
                    for n in PAGE_SIZES {
                        ui.selectable_value(
                            &mut saved.page_size,
                            n,
                            format!("{} per page", format::group(n as u64)),
                        );
                    }
                });
            let pattern_ok = !saved.pattern.trim().is_empty();
            if ui
                .add_enabled(up && pattern_ok, egui::Button::new(BROWSE_LABEL))
                .clicked()
                || (entered && up && pattern_ok)
            {
                self.browse(saved, cmds);
            }
            let session = self.browser.session;
            if ui
                .add_enabled(can_more, egui::Button::new(LOAD_MORE_LABEL))
                .clicked()
            {
                self.browser.loading = true;
                cmds.push(Command::Tools(ToolsCommand::LoadMore { session }));
            }
            let all = ui
                .add_enabled(can_more, egui::Button::new(LOAD_ALL_LABEL))
                .on_hover_text(format!(
                    "SCAN on, paced, until the end or {} keys / {} are held",
                    format::group(MAX_KEYS_HELD as u64),
                    format::bytes_mb(MAX_NAME_BYTES as u64)
                ));
            if all.clicked() {
                self.browser.loading = true;
                cmds.push(Command::Tools(ToolsCommand::LoadAll {
                    session,
                    cap: MAX_KEYS_HELD - self.browser.keys.len(),
                    byte_budget: MAX_NAME_BYTES - self.browser.name_bytes,
                }));
            }
            if self.browser.loading && session != 0 && ui.button(STOP_LABEL).clicked() {
                cmds.push(Command::Tools(ToolsCommand::StopLoading { session }));
            }
            if self.browser.loading {
                ui.spinner();
            }
        });
        ui.horizontal_wrapped(|ui| {
            let pattern = saved.pattern.trim().as_bytes().to_vec();
            let idle = up && !pattern.is_empty() && self.dialog.is_none();
            if ui
                .add_enabled(idle, egui::Button::new(PURGE_MATCHING_LABEL))
                .on_hover_text("Dry run first: count and sample, then confirm")
                .clicked()
            {
                self.open_dialog(pattern.clone(), PatternWrite::Purge, model, cmds);
            }
            let label = ui.label("TTL for matching keys:");
            ui.add(
                egui::TextEdit::singleline(&mut saved.pattern_ttl)
                    .hint_text("3600, 4h or persist")
                    .desired_width(110.0),
            )
            .labelled_by(label.id);
            let change: Option<TtlChange> = ttl::parse_ttl(&saved.pattern_ttl).ok();
            if ui
                .add_enabled(
                    idle && change.is_some(),
                    egui::Button::new(TTL_MATCHING_LABEL),
                )
                .clicked()
                && let Some(change) = change
            {
                self.open_dialog(pattern, PatternWrite::Ttl(change), model, cmds);
            }
        });
    }

    /// The inspector panel with the TTL row.
    fn inspector_ui(&mut self, ui: &mut egui::Ui, model: &Model, cmds: &mut Vec<Command>) {
        ui.label(RichText::new("Inspector").strong());
        if let Some(key) = self.inspector.key.clone()
            && self.inspector.info.as_ref().is_some_and(|i| i.exists)
        {
            let busy = self.ttl_busy || self.dialog.is_some();
            match ttl::ttl_row_ui(ui, &mut self.ttl_input, busy) {
                Some(TtlAction::Set(change)) => {
                    if model.profiles.production {
                        self.key_ttl = Some(KeyTtlDialog {
                            key,
                            change,
                            typed: String::new(),
                        });
                    } else {
                        self.ttl_busy = true;
                        cmds.push(Command::Tools(ToolsCommand::SetKeyTtl { key, change }));
                    }
                }
                Some(TtlAction::Delete) => {
                    let pattern = crate::redis_admin::glob_escape(&key);
                    self.open_dialog(pattern, PatternWrite::Purge, model, cmds);
                }
                None => {}
            }
        }
        match self.inspector.ui(ui) {
            Some(Action::More) => {
                if let (Some(key), Some(cursor)) = (
                    self.inspector.key.clone(),
                    self.inspector.next_cursor.clone(),
                ) {
                    self.inspector.loading = true;
                    cmds.push(Command::Tools(ToolsCommand::Inspect {
                        key,
                        cursor: Some(cursor),
                        count: PAGE_COUNT,
                    }));
                }
            }
            Some(Action::Open(key)) => self.inspect(key, cmds),
            None => {}
        }
    }

    /// Draws the Redis tab.
    pub fn server_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        let slowlog = &mut self.slowlog;
        self.server.ui(ui, model, now_ms, cmds, |ui, cmds| {
            slowlog.ui(ui, model, cmds)
        });
    }

    /// Draws the tools' dialogs (purge and TTL confirmations), whatever tab
    /// is open, and does the tools' background work (INFO polls once the
    /// Redis tab was opened; reloads after a write).
    pub fn dialogs_ui(
        &mut self,
        ctx: &egui::Context,
        model: &Model,
        now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        self.server.poll(model, now_ms, cmds);
        if std::mem::take(&mut self.reload) {
            if let Some(mut req) = self.last_browse.clone()
                && model.connection.redis.is_up()
            {
                req.session = self.browser.session + 1;
                let pattern = String::from_utf8_lossy(&req.pattern).into_owned();
                self.browser.reset(req.session, pattern);
                self.last_browse = Some(req.clone());
                cmds.push(Command::Tools(ToolsCommand::Browse(req)));
            }
            if let Some(key) = self.inspector.key.clone() {
                self.inspect(key, cmds);
            }
        }
        if let Some(d) = &mut self.dialog {
            match d.ui(ctx) {
                DialogOutcome::Open => {}
                DialogOutcome::Send(c) => cmds.push(Command::Tools(c)),
                DialogOutcome::Close(c) => {
                    if let Some(c) = c {
                        cmds.push(Command::Tools(c));
                    }
                    self.dialog = None;
                }
            }
        }
        if let Some(d) = &mut self.key_ttl {
            match d.ui(ctx) {
                KeyTtlOutcome::Open => {}
                KeyTtlOutcome::Cancelled => self.key_ttl = None,
                KeyTtlOutcome::Confirmed => {
                    self.ttl_busy = true;
                    cmds.push(Command::Tools(ToolsCommand::SetKeyTtl {
                        key: d.key.clone(),
                        change: d.change,
                    }));
                    self.key_ttl = None;
                }
            }
        }
    }
}

/// ", 3 protected kept" when some were.
fn kept(n: u64) -> String {
    if n > 0 {
        format!(", {} protected kept", format::group(n))
    } else {
        String::new()
    }
}

/// " in 1.2 s"
fn took(ms: u64) -> String {
    format!(" in {}", format::duration_ms(ms))
}
