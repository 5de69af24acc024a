//! The report Export dialog: range (24 h / 7 d / 30 d / FROM..TO), all or
//! some datasources, format (HTML / CSV / JSON) and destination; then the
//! backend's progress, and on completion the path with "Open folder".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eframe::egui;
use egui::RichText;
use serde::{Deserialize, Serialize};

use super::picker::{NO_DIALOG_HINT, PickKind, Picker};
use crate::backend::{AdminCommand, AdminEvent, Command};
use crate::keys::DsId;
use crate::report::{ReportFormat, ReportRange, ReportRequest};
use crate::ui::model::Model;
use crate::ui::theme;

/// The button that starts the export.
pub const WRITE_LABEL: &str = "Write report";
/// The button that shows the written file's folder.
pub const OPEN_FOLDER_LABEL: &str = "Open folder";

/// The period choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RangeChoice {
    /// The last 24 hours (minute buckets).
    Day,
    /// The last 7 days.
    #[default]
    Week,
    /// The last 30 days.
    Month,
    /// FROM..TO dates.
    Custom,
}

impl RangeChoice {
    /// Radio text.
    pub fn label(self) -> &'static str {
        match self {
            RangeChoice::Day => "24 h",
            RangeChoice::Week => "7 d",
            RangeChoice::Month => "30 d",
            RangeChoice::Custom => "from … to …",
        }
    }
}

/// The format choices (persisted; [`ReportFormat`] is the core's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FormatChoice {
    /// One printable page with charts.
    #[default]
    Html,
    /// Tables in a .zip (or a folder).
    Csv,
    /// The report document.
    Json,
}

impl FormatChoice {
    /// The core's format.
    pub fn format(self) -> ReportFormat {
        match self {
            FormatChoice::Html => ReportFormat::Html,
            FormatChoice::Csv => ReportFormat::Csv,
            FormatChoice::Json => ReportFormat::Json,
        }
    }
}

/// The dialog's choices kept between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportChoices {
    /// Period.
    pub range: RangeChoice,
    /// Format.
    pub format: FormatChoice,
    /// The folder last written to.
    pub folder: Option<PathBuf>,
}

/// Where the export is.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportState {
    /// Choosing.
    Editing,
    /// Sent; the latest step.
    Running {
        /// The export's id.
        id: u64,
        /// What it does now.
        step: String,
    },
    /// Written here.
    Done(PathBuf),
    /// Failed (or cancelled), one line.
    Failed(String),
}

/// The open dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportDialog {
    /// Period.
    pub range: RangeChoice,
    /// Custom start.
    pub from: String,
    /// Custom end.
    pub to: String,
    /// Every datasource (else `selected`).
    pub all: bool,
    /// The datasources chosen.
    pub selected: BTreeSet<DsId>,
    /// Format.
    pub format: FormatChoice,
    /// Destination.
    pub path: String,
    /// Progress.
    pub state: ExportState,
    /// Shown (a running export may be hidden and comes back when done).
    pub visible: bool,
}

/// Replaces the extension of a file name that is one of the formats'
/// defaults, so switching format keeps the name right.
fn with_format(path: &str, format: ReportFormat) -> String {
    let p = Path::new(path.trim());
    let known = ["html", "htm", "json", "zip"];
    match p.extension().and_then(|e| e.to_str()) {
        Some(e) if known.contains(&e.to_ascii_lowercase().as_str()) => {
            let new_ext = Path::new(format.default_file_name())
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("");
            p.with_extension(new_ext).display().to_string()
        }
        _ => path.to_string(),
    }
}

impl ExportDialog {
    /// A dialog with the remembered choices and every datasource chosen.
    pub fn new(model: &Model, saved: &ExportChoices) -> ExportDialog {
        // The folder written to last time, else the home folder.
        let folder = saved
            .folder
            .clone()
            .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
            .unwrap_or_default();
        let path = if folder.as_os_str().is_empty() {
            String::new()
        } else {
            folder
                .join(saved.format.format().default_file_name())
                .display()
                .to_string()
        };
        ExportDialog {
            range: saved.range,
            from: String::new(),
            to: String::new(),
            all: true,
            selected: model.datasources.keys().copied().collect(),
            format: saved.format,
            path,
            state: ExportState::Editing,
            visible: true,
        }
    }

    /// The request, or what to fix.
    pub fn request(&self) -> Result<(ReportRequest, ReportFormat, PathBuf), String> {
        let range = match self.range {
            RangeChoice::Day => ReportRange::last(Duration::from_secs(24 * 3600)),
            RangeChoice::Week => ReportRange::last(Duration::from_secs(7 * 24 * 3600)),
            RangeChoice::Month => ReportRange::last(Duration::from_secs(30 * 24 * 3600)),
            RangeChoice::Custom => {
                ReportRange::parse(&format!("{}..{}", self.from.trim(), self.to.trim()))
                    .map_err(|e| e.to_string())?
            }
        };
        let datasources = if self.all {
            Vec::new()
        } else if self.selected.is_empty() {
            return Err("choose at least one datasource".into());
        } else {
            self.selected.iter().copied().collect()
        };
        let path = self.path.trim();
        if path.is_empty() {
            return Err("choose where to write the report".into());
        }
        Ok((
            ReportRequest { range, datasources },
            self.format.format(),
            PathBuf::from(path),
        ))
    }

    /// Folds in the export's progress or end.
    pub fn apply(&mut self, ev: &AdminEvent) {
        let running = match &self.state {
            ExportState::Running { id, .. } => Some(*id),
            _ => None,
        };
        match ev {
            AdminEvent::ReportProgress { id, step } if running == Some(*id) => {
                self.state = ExportState::Running {
                    id: *id,
                    step: step.clone(),
                };
            }
            AdminEvent::ReportDone { id, result } if running == Some(*id) => {
                self.state = match result {
                    Ok(p) => ExportState::Done(p.clone()),
                    Err(e) => ExportState::Failed(e.clone()),
                };
                self.visible = true;
            }
            _ => {}
        }
    }
}

/// What the dialog did this frame.
pub enum DialogOutcome {
    /// Still open (or hidden while running).
    Open,
    /// Closed.
    Closed,
}

/// Draws the dialog; `next_id` numbers a new export.
pub fn export_dialog_ui(
    ctx: &egui::Context,
    d: &mut ExportDialog,
    model: &Model,
    saved: &mut ExportChoices,
    picker: &mut Picker,
    next_id: &mut u64,
    cmds: &mut Vec<Command>,
) -> DialogOutcome {
    if let Some(p) = picker.poll() {
        d.path = p.display().to_string();
    }
    if !d.visible {
        return DialogOutcome::Open;
    }
    let dark = theme::is_dark(ctx);
    let mut close = false;
    let modal = egui::Modal::new(egui::Id::unique("export-report-dialog")).show(ctx, |ui| {
        ui.set_width(560.0_f32.min(ctx.content_rect().width() - 60.0));
        ui.heading("Export cache-efficiency report");
        ui.add_space(6.0);
        let editing = matches!(d.state, ExportState::Editing | ExportState::Failed(_));
        ui.add_enabled_ui(editing, |ui| choices_ui(ui, d, model, picker, dark));
        ui.add_space(8.0);
        match d.state.clone() {
            ExportState::Editing | ExportState::Failed(_) => {
                if let ExportState::Failed(e) = &d.state {
                    ui.add(egui::Label::new(RichText::new(e).color(theme::bad(dark))).wrap());
                }
                let req = d.request();
                if let Err(problem) = &req {
                    ui.label(RichText::new(problem).color(theme::warn(dark)));
                }
                ui.horizontal(|ui| {
                    if ui
                        .add_enabled(req.is_ok(), egui::Button::new(WRITE_LABEL))
                        .clicked()
                        && let Ok((request, format, path)) = req
                    {
                        *next_id += 1;
                        saved.range = d.range;
                        saved.format = d.format;
                        saved.folder = path
                            .parent()
                            .map(Path::to_path_buf)
                            .filter(|p| !p.as_os_str().is_empty());
                        d.state = ExportState::Running {
                            id: *next_id,
                            step: "Starting…".into(),
                        };
                        cmds.push(Command::Admin(AdminCommand::ExportReport {
                            id: *next_id,
                            request,
                            format,
                            path,
                        }));
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            }
            ExportState::Running { id, step } => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(step);
                });
                ui.horizontal(|ui| {
                    if ui.button("Stop export").clicked() {
                        cmds.push(Command::Admin(AdminCommand::CancelReport(id)));
                    }
                    if ui
                        .button("Hide")
                        .on_hover_text(
                            "Keep exporting; this dialog comes back when the report is written",
                        )
                        .clicked()
                    {
                        d.visible = false;
                    }
                });
            }
            ExportState::Done(path) => {
                ui.label(
                    RichText::new("Report written:")
                        .color(theme::good(dark))
                        .strong(),
                );
                ui.add(
                    egui::Label::new(RichText::new(path.display().to_string()).monospace()).wrap(),
                );
                ui.horizontal(|ui| {
                    if ui.button(OPEN_FOLDER_LABEL).clicked() {
                        cmds.push(Command::Admin(AdminCommand::OpenFolder(path.clone())));
                    }
                    if ui.button("Close").clicked() {
                        close = true;
                    }
                });
            }
        }
    });
    let running = matches!(d.state, ExportState::Running { .. });
    if modal.should_close() && !running {
        close = true;
    }
    if close {
        DialogOutcome::Closed
    } else {
        DialogOutcome::Open
    }
}

/// Range, datasources, format and destination.
fn choices_ui(
    ui: &mut egui::Ui,
    d: &mut ExportDialog,
    model: &Model,
    picker: &mut Picker,
    dark: bool,
) {
    egui::Grid::new("export-grid")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            ui.label("Range");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    for r in [
                        RangeChoice::Day,
                        RangeChoice::Week,
                        RangeChoice::Month,
                        RangeChoice::Custom,
                    ] {
                        ui.radio_value(&mut d.range, r, r.label());
                    }
                });
                if d.range == RangeChoice::Custom {
                    ui.horizontal(|ui| {
                        let l = ui.label("From");
                        ui.add(
                            egui::TextEdit::singleline(&mut d.from)
                                .desired_width(150.0)
                                .hint_text("2025-01-01"),
                        )
                        .labelled_by(l.id);
                        let l = ui.label("To");
                        ui.add(
                            egui::TextEdit::singleline(&mut d.to)
                                .desired_width(150.0)
                                .hint_text("2025-01-31"),
                        )
                        .labelled_by(l.id);
                    });
                    ui.label(
                        RichText::new(
                            "UTC dates or date-times; at most 90 days, within the last 90 days.",
                        )
                        .color(theme::muted(dark)),
                    );
                }
            });
            ui.end_row();
            ui.label("Datasources");
            ui.vertical(|ui| {
                ui.checkbox(&mut d.all, "All datasources");
                if !d.all {
                    egui::ScrollArea::vertical()
                        .max_height(140.0)
                        .show(ui, |ui| {
                            for (id, ds) in &model.datasources {
                                let mut on = d.selected.contains(id);
                                if ui
                                    .checkbox(&mut on, format!("{} (#{id})", ds.name))
                                    .changed()
                                {
                                    if on {
                                        d.selected.insert(*id);
                                    } else {
                                        d.selected.remove(id);
                                    }
                                }
                            }
                        });
                }
            });
            ui.end_row();
            ui.label("Format");
            ui.horizontal(|ui| {
                let before = d.format;
                ui.radio_value(&mut d.format, FormatChoice::Html, "HTML");
                ui.radio_value(&mut d.format, FormatChoice::Csv, "CSV (.zip)");
                ui.radio_value(&mut d.format, FormatChoice::Json, "JSON");
                if before != d.format {
                    d.path = with_format(&d.path, d.format.format());
                }
            });
            ui.end_row();
            let l = ui.label("Save to");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut d.path)
                            .desired_width(360.0)
                            .hint_text(format!(
                                "/path/to/{}",
                                d.format.format().default_file_name()
                            )),
                    )
                    .labelled_by(l.id);
                    if ui
                        .add_enabled(!picker.is_open(), egui::Button::new("Browse…"))
                        .clicked()
                    {
                        let f = d.format.format();
                        let ext = Path::new(f.default_file_name())
                            .extension()
                            .and_then(|e| e.to_str())
                            .unwrap_or("")
                            .to_string();
                        let current = PathBuf::from(d.path.trim());
                        picker.open(
                            ui.ctx(),
                            PickKind::Save {
                                title: "Save the report".into(),
                                file_name: f.default_file_name().into(),
                                directory: current.parent().map(Path::to_path_buf),
                                filter: Some((ext.to_uppercase(), vec![ext])),
                            },
                        );
                    }
                });
                if picker.gave_nothing {
                    ui.label(RichText::new(NO_DIALOG_HINT).color(theme::muted(dark)));
                }
            });
            ui.end_row();
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switching_format_renames_a_default_extension_only() {
        assert_eq!(with_format("/t/r.html", ReportFormat::Csv), "/t/r.zip");
        assert_eq!(with_format("/t/r.zip", ReportFormat::Json), "/t/r.json");
        assert_eq!(with_format("/t/tables/", ReportFormat::Html), "/t/tables/");
        assert_eq!(with_format("", ReportFormat::Html), "");
    }
}
