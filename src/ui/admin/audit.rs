//! The Audit tab: who did what, filtered by time, action, user, datasource
//! and text; newest first, a bounded page at a time ("Load more"); export of
//! every matching row to CSV or JSON.

use eframe::egui;
use egui::RichText;
use serde::{Deserialize, Serialize};

use super::picker::{NO_DIALOG_HINT, PickKind, Picker};
use crate::backend::{AdminCommand, AdminEvent, AuditCursor, AuditFormat, AuditQuery, Command};
use crate::governance::audit::{AuditFilter, AuditRow, actions};
use crate::keys::DsId;
use crate::ui::model::Model;
use crate::ui::theme;

/// Rows per page.
pub const PAGE: i64 = 200;
/// The button that reads the log with the filters.
pub const SEARCH_LABEL: &str = "Search";
/// The button that reads the next page.
pub const MORE_LABEL: &str = "Load more";
/// The button that writes the matching rows to a file.
pub const EXPORT_LABEL: &str = "Export rows";

/// How far back the rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AuditSince {
    /// The last hour.
    Hour,
    /// The last 24 hours.
    Day,
    /// The last 7 days.
    #[default]
    Week,
    /// The last 30 days.
    Month,
    /// The last 365 days.
    Year,
    /// Every row kept.
    All,
    /// FROM..TO dates (UTC).
    Custom,
}

impl AuditSince {
    /// Every choice, as the selector lists them.
    pub const ALL: [AuditSince; 7] = [
        AuditSince::Hour,
        AuditSince::Day,
        AuditSince::Week,
        AuditSince::Month,
        AuditSince::Year,
        AuditSince::All,
        AuditSince::Custom,
    ];

    /// Selector text.
    pub fn label(self) -> &'static str {
        match self {
            AuditSince::Hour => "last hour",
            AuditSince::Day => "last 24 hours",
            AuditSince::Week => "last 7 days",
            AuditSince::Month => "last 30 days",
            AuditSince::Year => "last year",
            AuditSince::All => "all time",
            AuditSince::Custom => "from … to …",
        }
    }

    fn span_ms(self) -> Option<i64> {
        let h = 3_600_000;
        match self {
            AuditSince::Hour => Some(h),
            AuditSince::Day => Some(24 * h),
            AuditSince::Week => Some(7 * 24 * h),
            AuditSince::Month => Some(30 * 24 * h),
            AuditSince::Year => Some(365 * 24 * h),
            AuditSince::All | AuditSince::Custom => None,
        }
    }
}

/// The Audit tab's filters and export choices, kept between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFilters {
    /// How far back.
    pub since: AuditSince,
    /// Custom range start (date or date-time, UTC).
    pub from: String,
    /// Custom range end (a bare date covers its whole day).
    pub to: String,
    /// Only this action; empty for any.
    pub action: String,
    /// Only this user (admin identity, Redis user or OS user).
    pub user: String,
    /// Only this datasource.
    pub datasource: Option<DsId>,
    /// Text the rows contain.
    pub text: String,
    /// Export format.
    pub format: AuditFormat,
    /// Export file.
    pub export_path: String,
}

/// `2025-01-31` or `2025-01-31 10:00` (UTC) in ms; a bare date is its
/// first millisecond, or with `end` the first millisecond of the next day.
pub fn parse_day(text: &str, end: bool) -> Option<i64> {
    let t = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let ms = d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        return Some(if end { ms + 86_400_000 } else { ms });
    }
    for f in ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Some(n.and_utc().timestamp_millis());
        }
    }
    None
}

impl AuditFilters {
    /// The store filter (page-sized), or what is wrong with the fields.
    pub fn filter(&self, server_now_ms: i64) -> Result<AuditFilter, String> {
        let (since_ms, until_ms) = match self.since {
            AuditSince::Custom => {
                let from = parse_day(&self.from, false).ok_or_else(|| {
                    format!(
                        "`{}` is not a date like 2025-01-31 or 2025-01-31 10:00",
                        self.from
                    )
                })?;
                let to = match self.to.trim() {
                    "" => None,
                    t => Some(parse_day(t, true).ok_or_else(|| {
                        format!("`{t}` is not a date like 2025-01-31 or 2025-01-31 10:00")
                    })?),
                };
                if to.is_some_and(|t| t <= from) {
                    return Err("the range is empty: FROM must be before TO".into());
                }
                (Some(from), to)
            }
            other => (other.span_ms().map(|s| server_now_ms - s), None),
        };
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(AuditFilter {
            since_ms,
            until_ms,
            action: opt(&self.action),
            user: opt(&self.user),
            datasource_id: self.datasource,
            limit: Some(PAGE),
        })
    }
}

/// What the Audit tab shows.
#[derive(Default)]
pub struct AuditView {
    /// Rows shown, newest first.
    pub rows: Vec<AuditRow>,
    /// More rows match below.
    pub more: bool,
    /// The query waiting for an answer.
    pub pending: Option<u64>,
    /// Numbers the queries, so late answers to old ones are dropped.
    seq: u64,
    /// The query the rows answer (for Load more).
    shown: Option<AuditQuery>,
    /// Why the last query failed, or what is wrong with the filters.
    pub error: Option<String>,
    /// An export is under way.
    pub exporting: bool,
    /// The last export's outcome, one line.
    pub exported: Option<Result<String, String>>,
    /// The export file dialog.
    picker: Picker,
}

impl AuditView {
    /// Folds in an audit answer.
    pub fn apply(&mut self, ev: AdminEvent) {
        match ev {
            AdminEvent::AuditRows {
                seq,
                rows,
                append,
                more,
            } if self.pending == Some(seq) => {
                self.pending = None;
                self.error = None;
                if append {
                    let seen: std::collections::HashSet<i64> =
                        self.rows.iter().map(|r| r.id).collect();
                    self.rows
                        .extend(rows.into_iter().filter(|r| !seen.contains(&r.id)));
                } else {
                    self.rows = rows;
                }
                self.more = more;
            }
            AdminEvent::AuditFailed { seq, message } if self.pending == Some(seq) => {
                self.pending = None;
                self.error = Some(message);
            }
            AdminEvent::AuditExported { path, result } => {
                self.exporting = false;
                self.exported =
                    Some(result.map(|n| format!("Exported {n} rows to {}", path.display())));
            }
            _ => {}
        }
    }

    /// Where the next page starts.
    fn cursor(&self) -> Option<AuditCursor> {
        let last = self.rows.last()?;
        Some(AuditCursor {
            at_ms: last.at_ms,
            seen_ids: self
                .rows
                .iter()
                .filter(|r| r.at_ms == last.at_ms)
                .map(|r| r.id)
                .collect(),
        })
    }

    /// Sends the first page of `f`, or shows what is wrong with it.
    fn search(&mut self, f: &AuditFilters, server_now: i64, cmds: &mut Vec<Command>) {
        match f.filter(server_now) {
            Ok(filter) => {
                self.seq += 1;
                let q = AuditQuery {
                    seq: self.seq,
                    filter,
                    text: f.text.trim().to_string(),
                    after: None,
                };
                self.pending = Some(self.seq);
                self.error = None;
                self.shown = Some(q.clone());
                cmds.push(Command::Admin(AdminCommand::QueryAudit(q)));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Draws the tab.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        f: &mut AuditFilters,
        now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        let dark = theme::is_dark(ui.ctx());
        let server_now = model.server_now(now_ms);
        if let Some(path) = self.picker.poll() {
            f.export_path = path.display().to_string();
        }
        let db_up = model.connection.database.is_up();
        if self.shown.is_none() && self.pending.is_none() && db_up {
            self.search(f, server_now, cmds);
        }
        ui.heading("Audit log");
        if !db_up {
            ui.label(
                RichText::new("The database is not connected: the audit log cannot be read now.")
                    .color(theme::warn(dark)),
            );
        }
        if filters_ui(ui, model, f) {
            self.search(f, server_now, cmds);
        }
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(theme::bad(dark)));
        }
        self.export_ui(ui, f, server_now, dark, cmds);
        ui.separator();
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} row{}{}",
                self.rows.len(),
                if self.rows.len() == 1 { "" } else { "s" },
                if self.more { " (more below)" } else { "" }
            ));
            if self.pending.is_some() {
                ui.spinner();
            }
        });
        table_ui(ui, &self.rows, now_ms, dark);
        if self.more
            && ui
                .add_enabled(self.pending.is_none(), egui::Button::new(MORE_LABEL))
                .clicked()
            && let Some(shown) = &self.shown
        {
            self.seq += 1;
            let mut q = shown.clone();
            q.seq = self.seq;
            q.after = self.cursor();
            self.pending = Some(self.seq);
            cmds.push(Command::Admin(AdminCommand::QueryAudit(q)));
        }
    }

    fn export_ui(
        &mut self,
        ui: &mut egui::Ui,
        f: &mut AuditFilters,
        server_now: i64,
        dark: bool,
        cmds: &mut Vec<Command>,
    ) {
        ui.horizontal(|ui| {
            ui.label("Export matching rows as");
            ui.radio_value(&mut f.format, AuditFormat::Csv, "CSV");
            ui.radio_value(&mut f.format, AuditFormat::Json, "JSON");
            let l = ui.label("to");
            ui.add(
                egui::TextEdit::singleline(&mut f.export_path)
                    .desired_width(320.0)
                    .hint_text(format!("/path/to/audit.{}", f.format.extension())),
            )
            .labelled_by(l.id);
            if ui
                .add_enabled(!self.picker.is_open(), egui::Button::new("Browse…"))
                .clicked()
            {
                let ext = f.format.extension();
                let current = std::path::PathBuf::from(f.export_path.trim());
                self.picker.open(
                    ui.ctx(),
                    PickKind::Save {
                        title: "Export the audit log".into(),
                        file_name: format!("audit.{ext}"),
                        directory: current.parent().map(|p| p.to_path_buf()),
                        filter: Some((ext.to_uppercase(), vec![ext.to_string()])),
                    },
                );
            }
            let ready = !f.export_path.trim().is_empty() && !self.exporting;
            if ui
                .add_enabled(ready, egui::Button::new(EXPORT_LABEL))
                .on_hover_text("Writes every row matching the filters (not only those loaded)")
                .clicked()
            {
                // The rows shown (the last search), else the filters as typed.
                let query = match &self.shown {
                    Some(q) => Ok(q.clone()),
                    None => f.filter(server_now).map(|filter| AuditQuery {
                        filter,
                        text: f.text.trim().to_string(),
                        ..AuditQuery::default()
                    }),
                };
                match query {
                    Ok(q) => {
                        self.exporting = true;
                        self.exported = None;
                        cmds.push(Command::Admin(AdminCommand::ExportAudit {
                            query: AuditQuery {
                                seq: 0,
                                after: None,
                                ..q
                            },
                            format: f.format,
                            path: std::path::PathBuf::from(f.export_path.trim()),
                        }));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            if self.exporting {
                ui.spinner();
            }
        });
        if self.picker.gave_nothing {
            ui.label(RichText::new(NO_DIALOG_HINT).color(theme::muted(dark)));
        }
        match &self.exported {
            Some(Ok(t)) => {
                ui.label(RichText::new(t).color(theme::good(dark)));
            }
            Some(Err(e)) => {
                ui.label(RichText::new(e).color(theme::bad(dark)));
            }
            None => {}
        }
    }
}

/// The filter row; true when the admin asked to search.
fn filters_ui(ui: &mut egui::Ui, model: &Model, f: &mut AuditFilters) -> bool {
    let mut go = false;
    ui.horizontal_wrapped(|ui| {
        let before = (f.since, f.action.clone(), f.datasource);
        egui::ComboBox::from_id_salt("audit-since")
            .selected_text(f.since.label())
            .show_ui(ui, |ui| {
                for s in AuditSince::ALL {
                    ui.selectable_value(&mut f.since, s, s.label());
                }
            });
        if f.since == AuditSince::Custom {
            let l = ui.label("from");
            let a = ui
                .add(
                    egui::TextEdit::singleline(&mut f.from)
                        .desired_width(120.0)
                        .hint_text("2025-01-01"),
                )
                .labelled_by(l.id);
            let l = ui.label("to");
            let b = ui
                .add(
                    egui::TextEdit::singleline(&mut f.to)
                        .desired_width(120.0)
                        .hint_text("2025-01-31"),
                )
                .labelled_by(l.id);
            go |= entered(ui, &a) || entered(ui, &b);
        }
        egui::ComboBox::from_id_salt("audit-action")
            .selected_text(if f.action.is_empty() {
                "any action"
            } else {
                f.action.as_str()
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut f.action, String::new(), "any action");
                for a in actions::ALL {
                    ui.selectable_value(&mut f.action, a.to_string(), a);
                }
            });
        let ds_text = match f.datasource {
            None => "any datasource".to_string(),
            Some(id) => match model.datasources.get(&id) {
                Some(d) => format!("{} (#{id})", d.name),
                None => format!("#{id}"),
            },
        };
        egui::ComboBox::from_id_salt("audit-ds")
            .selected_text(ds_text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut f.datasource, None, "any datasource");
                for (id, d) in &model.datasources {
                    ui.selectable_value(
                        &mut f.datasource,
                        Some(*id),
                        format!("{} (#{id})", d.name),
                    );
                }
            });
        let l = ui.label("User");
        let u = ui
            .add(
                egui::TextEdit::singleline(&mut f.user)
                    .desired_width(140.0)
                    .hint_text("any"),
            )
            .labelled_by(l.id);
        let l = ui.label("Text");
        let t = ui
            .add(
                egui::TextEdit::singleline(&mut f.text)
                    .desired_width(160.0)
                    .hint_text("in any field"),
            )
            .labelled_by(l.id);
        go |= entered(ui, &u) || entered(ui, &t);
        go |= ui.button(SEARCH_LABEL).clicked();
        go |= before != (f.since, f.action.clone(), f.datasource) && f.since != AuditSince::Custom;
    });
    go
}

/// Enter pressed in a text field.
fn entered(ui: &egui::Ui, r: &egui::Response) -> bool {
    r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
}

/// Column widths of the table.
const WIDTHS: [f32; 6] = [150.0, 170.0, 90.0, 60.0, 210.0, 110.0];

/// `2025-01-31 10:00:05` in local time.
fn when(ms: i64) -> String {
    use chrono::TimeZone as _;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn cell(ui: &mut egui::Ui, width: f32, text: RichText) -> egui::Response {
    ui.allocate_ui_with_layout(
        egui::vec2(width, ui.spacing().interact_size.y),
        egui::Layout::left_to_right(egui::Align::Center),
        |ui| {
            ui.set_width(width);
            ui.add(egui::Label::new(text).truncate())
        },
    )
    .inner
}

/// Parameters for the table: `jobId=abc, force=false` (the hover shows
/// the JSON).
fn params_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The rows, drawn only where visible.
fn table_ui(ui: &mut egui::Ui, rows: &[AuditRow], _now_ms: i64, dark: bool) {
    let header = ["Time (local)", "Action", "Result", "DS", "Who", "From"];
    ui.horizontal(|ui| {
        for (h, w) in header.iter().zip(WIDTHS) {
            cell(ui, w, RichText::new(*h).strong());
        }
        ui.label(RichText::new("Details").strong());
    });
    if rows.is_empty() {
        ui.label(RichText::new("No audit rows match.").color(theme::muted(dark)));
        return;
    }
    let row_height = ui.spacing().interact_size.y;
    egui::ScrollArea::vertical()
        .id_salt("audit-rows")
        .auto_shrink([false, true])
        .max_height((ui.available_height() - 36.0).max(120.0))
        .show_rows(ui, row_height, rows.len(), |ui, range| {
            for r in &rows[range] {
                let result_color = match r.result.as_str() {
                    "ok" => theme::good(dark),
                    "denied" | "failed" | "rate_limited" => theme::bad(dark),
                    "missed" | "cancelled" => theme::warn(dark),
                    _ => theme::muted(dark),
                };
                let user = match &r.redis_user {
                    Some(u) => format!("{} (redis {u})", r.db_user),
                    None => r.db_user.clone(),
                };
                let params = params_text(&r.params);
                let details = match &r.detail {
                    Some(d) if params.is_empty() => d.clone(),
                    Some(d) => format!("{d} — {params}"),
                    None => params,
                };
                let resp = ui
                    .horizontal(|ui| {
                        cell(ui, WIDTHS[0], RichText::new(when(r.at_ms)));
                        cell(ui, WIDTHS[1], RichText::new(&r.action));
                        cell(ui, WIDTHS[2], RichText::new(&r.result).color(result_color));
                        cell(
                            ui,
                            WIDTHS[3],
                            RichText::new(
                                r.datasource_id.map(|d| format!("#{d}")).unwrap_or_default(),
                            ),
                        );
                        cell(ui, WIDTHS[4], RichText::new(user));
                        cell(
                            ui,
                            WIDTHS[5],
                            RichText::new(format!("{}/{}", r.origin, r.profile)),
                        );
                        ui.add(egui::Label::new(details.clone()).truncate());
                    })
                    .response;
                resp.on_hover_ui(|ui| {
                    ui.label(format!(
                        "{} by {} ({}), {}",
                        r.at, r.db_user, r.os_user, r.origin
                    ));
                    if let Some(d) = &r.detail {
                        ui.label(d);
                    }
                    if let Ok(pretty) = serde_json::to_string_pretty(&r.params) {
                        ui.monospace(pretty);
                    }
                });
            }
        });
}
