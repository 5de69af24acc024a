//! The Redis tab's slow log panel: every master's slow commands (passwords
//! masked by the backend), latency events, and a confirmed, audited clear.

use eframe::egui;
use egui::RichText;

use crate::backend::{Command, ToolsCommand};
use crate::redis_admin::slowlog::SlowLog;
use crate::ui::model::Model;
use crate::ui::{format, theme};

/// The button that reads the slow log again.
pub const REFRESH_LABEL: &str = "Read slow log";
/// The button that asks to clear the slow log.
pub const CLEAR_LABEL: &str = "Clear slow log…";
/// The confirmation's button that clears it.
pub const CONFIRM_LABEL: &str = "Clear it";
/// Rows of slow commands shown at most (newest first).
const ROWS: usize = 200;

/// What the panel shows and what it waits for.
#[derive(Default)]
pub struct SlowLogView {
    /// The latest answer.
    pub latest: Option<SlowLog>,
    /// A read or clear was asked for and has not been answered.
    pub busy: bool,
    /// The last read or clear failed, and why.
    pub error: Option<String>,
    /// The clear confirmation is open.
    pub confirming: bool,
    /// The panel was shown once: its first read was asked for.
    asked: bool,
}

impl SlowLogView {
    /// Folds in an answer.
    pub fn apply(&mut self, log: SlowLog) {
        self.latest = Some(log);
        self.busy = false;
        self.error = None;
    }

    /// Folds in a failure.
    pub fn failed(&mut self, error: String) {
        self.busy = false;
        self.error = Some(error);
    }

    fn ask(&mut self, cmd: ToolsCommand, cmds: &mut Vec<Command>) {
        self.busy = true;
        cmds.push(Command::Tools(cmd));
    }

    /// Draws the panel (inside the Redis tab's scroll area).
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &Model, cmds: &mut Vec<Command>) {
        let dark = theme::is_dark(ui.ctx());
        let muted = theme::muted(dark);
        let up = model.connection.redis.is_up();
        if !self.asked && up {
            self.asked = true;
            self.ask(ToolsCommand::SlowLog, cmds);
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new("Slow log").strong());
            let free = up && !self.busy;
            if ui
                .add_enabled(free, egui::Button::new(REFRESH_LABEL))
                .clicked()
            {
                self.ask(ToolsCommand::SlowLog, cmds);
            }
            if ui
                .add_enabled(free, egui::Button::new(CLEAR_LABEL))
                .on_hover_text(
                    "Clears the slow log of every master (audited; needs write permission)",
                )
                .clicked()
            {
                self.confirming = true;
            }
            if self.busy {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.label(RichText::new(e).color(theme::bad(dark)));
        }
        self.confirm_ui(ui.ctx(), cmds);
        let Some(log) = &self.latest else {
            return;
        };
        for n in &log.nodes {
            let mut line = format!(
                "{}: {} entries • logs commands slower than {} • latency monitor {}",
                n.node,
                n.length.map_or("?".into(), format::group_i),
                match n.slower_than_us {
                    Some(us) if us < 0 => "never (off)".to_string(),
                    Some(us) => format!("{} µs", format::group_i(us)),
                    None => "? (CONFIG not permitted)".into(),
                },
                match n.latency_threshold_ms {
                    Some(0) => "off".to_string(),
                    Some(ms) => format!("above {ms} ms"),
                    None => "?".into(),
                }
            );
            if let Some(note) = &n.note {
                line.push_str(&format!(" — {note}"));
            }
            ui.label(RichText::new(line).small().color(muted));
        }
        if log.entries.is_empty() {
            ui.label(RichText::new("No slow commands logged.").color(muted));
        } else {
            egui::Grid::new("slowlog-entries")
                .striped(true)
                .num_columns(5)
                .show(ui, |ui| {
                    for h in ["When (UTC)", "Duration", "Node", "Client", "Command"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for e in log.entries.iter().take(ROWS) {
                        ui.label(e.at.replace('T', " ").trim_end_matches('Z').to_string());
                        ui.label(micros(e.duration_us));
                        ui.label(&e.node);
                        ui.label(match (&e.client, &e.client_name) {
                            (Some(c), Some(n)) => format!("{c} ({n})"),
                            (Some(c), None) => c.clone(),
                            (None, Some(n)) => n.clone(),
                            (None, None) => "-".into(),
                        });
                        ui.label(RichText::new(&e.command).monospace());
                        ui.end_row();
                    }
                });
            if log.entries.len() > ROWS {
                ui.label(
                    RichText::new(format!(
                        "the newest {ROWS} of {} shown; `cachedeck slowlog --json` has all",
                        log.entries.len()
                    ))
                    .small()
                    .color(muted),
                );
            }
        }
        if !log.latency.is_empty() {
            ui.add_space(6.0);
            ui.label(RichText::new("Latency events").strong());
            egui::Grid::new("slowlog-latency")
                .striped(true)
                .num_columns(5)
                .show(ui, |ui| {
                    for h in ["Node", "Event", "Latest", "Worst", "Points"] {
                        ui.label(RichText::new(h).strong());
                    }
                    ui.end_row();
                    for l in &log.latency {
                        ui.label(&l.node);
                        ui.label(&l.event);
                        ui.label(format!("{} ms", l.latest_ms));
                        ui.label(format!("{} ms", l.max_ms));
                        ui.label(l.history.len().to_string());
                        ui.end_row();
                    }
                });
        }
    }

    /// The confirmation of a clear: says what it does, for everyone.
    fn confirm_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        if !self.confirming {
            return;
        }
        let nodes = self.latest.as_ref().map_or(0, |l| l.nodes.len());
        egui::Window::new("Clear the slow log?")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                ui.label(format!(
                    "This clears the slow log of {} for every client and admin; it is audited.",
                    if nodes == 1 {
                        "the server".to_string()
                    } else {
                        format!("all {nodes} masters")
                    }
                ));
                ui.horizontal(|ui| {
                    if ui.button(CONFIRM_LABEL).clicked() {
                        self.confirming = false;
                        self.ask(ToolsCommand::ResetSlowLog, cmds);
                    }
                    if ui.button("Keep it").clicked() {
                        self.confirming = false;
                    }
                });
            });
    }
}

/// Microseconds as people read them: `850 µs`, `12.40 ms`, `1.2 s`.
fn micros(us: i64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else {
        format::millis(us as f64 / 1000.0)
    }
}
