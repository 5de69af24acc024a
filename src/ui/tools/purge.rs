//! The pattern-write dialog (purge, or TTL change by pattern): a dry run
//! first (count, sample), then a confirmation — typed when the count is
//! large, when the pattern matches every key, and always in a production
//! profile — then progress with Cancel, then the result.

use eframe::egui;
use egui::RichText;

use crate::backend::{PatternWrite, ToolsCommand, WriteProgress};
use crate::redis_admin::{PurgePreview, TtlChange};
use crate::ui::{format, theme};

/// From this many matching keys on, the admin types the pattern to confirm.
pub const LARGE_COUNT: u64 = 1_000;
/// The confirm button of a purge.
pub const PURGE_LABEL: &str = "Delete keys";
/// The confirm button of a TTL change by pattern.
pub const TTL_LABEL: &str = "Change TTLs";
/// The cancel button (before, and while running).
pub const CANCEL_LABEL: &str = "Cancel";
/// The button that closes the dialog at the end.
pub const CLOSE_LABEL: &str = "Close";
/// What to type for a pattern that matches every key.
pub const EVERYTHING_WORD: &str = "everything";

/// Where the dialog stands.
#[derive(Debug, Clone)]
pub enum Stage {
    /// The dry run is counting.
    Counting,
    /// The dry run's answer; waiting for the admin.
    Ready(Box<PurgePreview>),
    /// Confirmed; the write runs.
    Running {
        /// Matching keys the dry run counted (for the progress bar).
        expected: u64,
        /// The latest progress.
        progress: Option<WriteProgress>,
        /// Cancel was pressed.
        cancelling: bool,
    },
    /// Ended: what happened.
    Done(String),
    /// Failed: why.
    Failed(String),
}

/// An open pattern-write dialog.
#[derive(Debug, Clone)]
pub struct PatternDialog {
    /// The pattern as bytes (what is sent).
    pub pattern: Vec<u8>,
    /// The pattern as people read it.
    pub shown: String,
    /// Purge or TTL change.
    pub write: PatternWrite,
    /// The profile is a production one: always typed confirmation.
    pub production: bool,
    /// Where it stands.
    pub stage: Stage,
    /// What the admin typed.
    pub typed: String,
}

/// What the dialog asks of the window this frame.
#[derive(Debug, Clone, PartialEq)]
pub enum DialogOutcome {
    /// Nothing.
    Open,
    /// Send this command (the dialog stays open).
    Send(ToolsCommand),
    /// Close the dialog, sending the command if any.
    Close(Option<ToolsCommand>),
}

impl PatternDialog {
    /// A dialog whose dry run was just asked for.
    pub fn new(pattern: Vec<u8>, write: PatternWrite, production: bool) -> PatternDialog {
        PatternDialog {
            shown: crate::keys::display_bytes(&pattern),
            pattern,
            write,
            production,
            stage: Stage::Counting,
            typed: String::new(),
        }
    }

    /// What must be typed to confirm, if anything.
    pub fn required_text(&self) -> Option<String> {
        let Stage::Ready(p) = &self.stage else {
            return None;
        };
        if p.matches_everything {
            Some(EVERYTHING_WORD.into())
        } else if self.production || p.count >= LARGE_COUNT {
            Some(self.shown.clone())
        } else {
            None
        }
    }

    /// True when the confirm button works.
    pub fn can_confirm(&self) -> bool {
        match &self.stage {
            Stage::Ready(p) if p.count > 0 => match self.required_text() {
                Some(t) => self.typed.trim() == t,
                None => true,
            },
            _ => false,
        }
    }

    fn confirm_label(&self) -> &'static str {
        match self.write {
            PatternWrite::Purge => PURGE_LABEL,
            PatternWrite::Ttl(_) => TTL_LABEL,
        }
    }

    fn title(&self) -> String {
        match self.write {
            PatternWrite::Purge => format!("Purge keys matching {}?", self.shown),
            PatternWrite::Ttl(TtlChange::Persist) => {
                format!("Remove the expiry of keys matching {}?", self.shown)
            }
            PatternWrite::Ttl(TtlChange::Expire(d)) => format!(
                "Expire keys matching {} in {}?",
                self.shown,
                format::duration_ms(d.as_millis() as u64)
            ),
        }
    }

    /// Draws the dialog.
    pub fn ui(&mut self, ctx: &egui::Context) -> DialogOutcome {
        let dark = theme::is_dark(ctx);
        let muted = theme::muted(dark);
        let mut out = DialogOutcome::Open;
        let modal = egui::Modal::new(egui::Id::unique("pattern-write-dialog")).show(ctx, |ui| {
            ui.set_width(520.0);
            ui.heading(self.title());
            ui.add_space(4.0);
            match &self.stage {
                Stage::Counting => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Dry run: counting the matching keys (nothing changes)…");
                    });
                    ui.add_space(8.0);
                    if ui.button(CANCEL_LABEL).clicked() {
                        out = DialogOutcome::Close(Some(ToolsCommand::CancelWrite));
                    }
                }
                Stage::Ready(p) => {
                    let p = (**p).clone();
                    out = self.ready_ui(ui, &p, dark);
                }
                Stage::Running {
                    expected,
                    progress,
                    cancelling,
                } => {
                    let (matched, done) = progress.map_or((0, 0), |p| (p.matched, p.done));
                    let frac = if *expected > 0 {
                        (matched as f32 / *expected as f32).min(1.0)
                    } else {
                        0.0
                    };
                    ui.add(egui::ProgressBar::new(frac).show_percentage());
                    let verb = match self.write {
                        PatternWrite::Purge => "deleted",
                        PatternWrite::Ttl(_) => "changed",
                    };
                    let node = progress
                        .map(|p| format!(" (node {} of {})", p.node.0 + 1, p.node.1.max(1)))
                        .unwrap_or_default();
                    ui.label(format!(
                        "{} {verb} of {} matching so far{node}",
                        format::group(done),
                        format::group(matched)
                    ));
                    ui.add_space(8.0);
                    let cancel = ui.add_enabled(!cancelling, egui::Button::new(CANCEL_LABEL));
                    if cancel.clicked() {
                        out = DialogOutcome::Send(ToolsCommand::CancelWrite);
                    }
                }
                Stage::Done(text) => {
                    ui.label(RichText::new(text).strong());
                    ui.add_space(8.0);
                    if ui.button(CLOSE_LABEL).clicked() {
                        out = DialogOutcome::Close(None);
                    }
                }
                Stage::Failed(text) => {
                    ui.label(RichText::new(text).color(theme::bad(dark)));
                    ui.label(RichText::new("Nothing more was changed.").color(muted));
                    ui.add_space(8.0);
                    if ui.button(CLOSE_LABEL).clicked() {
                        out = DialogOutcome::Close(None);
                    }
                }
            }
        });
        if let DialogOutcome::Send(ToolsCommand::CancelWrite) = out
            && let Stage::Running { cancelling, .. } = &mut self.stage
        {
            *cancelling = true;
        }
        if modal.should_close() && out == DialogOutcome::Open {
            out = match self.stage {
                // A running write is not abandoned by a click outside.
                Stage::Running { .. } => DialogOutcome::Open,
                Stage::Counting => DialogOutcome::Close(Some(ToolsCommand::CancelWrite)),
                _ => DialogOutcome::Close(None),
            };
        }
        out
    }

    fn ready_ui(&mut self, ui: &mut egui::Ui, p: &PurgePreview, dark: bool) -> DialogOutcome {
        let muted = theme::muted(dark);
        let mut out = DialogOutcome::Open;
        let what = match self.write {
            PatternWrite::Purge => "would be deleted",
            PatternWrite::Ttl(_) => "would get the new TTL",
        };
        ui.label(
            RichText::new(format!(
                "{} {what} (of {} in the keyspace).",
                format::count(p.count, "key", "keys"),
                format::group(p.keyspace_size)
            ))
            .strong(),
        );
        if p.protected > 0 {
            ui.label(
                RichText::new(format!(
                    "{} protected (invalidation epochs) match and are kept.",
                    format::count(p.protected, "key", "keys")
                ))
                .color(muted),
            );
        }
        if !p.sample.is_empty() {
            ui.label(RichText::new(format!("First {}:", p.sample.len())).color(muted));
            egui::ScrollArea::vertical()
                .id_salt("purge-sample")
                .max_height(160.0)
                .show(ui, |ui| {
                    for k in &p.sample {
                        ui.label(RichText::new(&k.display).monospace().small());
                    }
                });
        }
        if p.count == 0 {
            ui.label(RichText::new("Nothing matches; there is nothing to do.").color(muted));
        }
        if p.matches_everything {
            ui.label(
                RichText::new("This pattern matches every key.")
                    .color(theme::bad(dark))
                    .strong(),
            );
        }
        if self.production {
            ui.label(
                RichText::new("This is a production profile.")
                    .color(theme::bad(dark))
                    .strong(),
            );
        }
        if let Some(word) = self.required_text()
            && p.count > 0
        {
            let prompt = ui.label(format!("Type {word} to confirm:"));
            ui.add(
                egui::TextEdit::singleline(&mut self.typed)
                    .hint_text(word.clone())
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(prompt.id);
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let confirm = egui::Button::new(
                RichText::new(self.confirm_label())
                    .color(egui::Color32::WHITE)
                    .strong(),
            )
            .fill(theme::bad(dark));
            if ui.add_enabled(self.can_confirm(), confirm).clicked() {
                out = DialogOutcome::Send(ToolsCommand::RunPattern {
                    pattern: self.pattern.clone(),
                    write: self.write,
                    confirmed_all: p.matches_everything,
                });
                self.stage = Stage::Running {
                    expected: p.count,
                    progress: None,
                    cancelling: false,
                };
            }
            if ui.button(CANCEL_LABEL).clicked() {
                out = DialogOutcome::Close(None);
            }
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(count: u64, everything: bool, production: bool) -> PatternDialog {
        let mut d = PatternDialog::new(b"a:*".to_vec(), PatternWrite::Purge, production);
        d.stage = Stage::Ready(Box::new(PurgePreview {
            pattern: "a:*".into(),
            count,
            sample: Vec::new(),
            protected: 0,
            matches_everything: everything,
            keyspace_size: count,
        }));
        d
    }

    #[test]
    fn typing_is_asked_when_it_matters() {
        assert_eq!(ready(10, false, false).required_text(), None);
        assert!(ready(10, false, false).can_confirm());
        assert_eq!(
            ready(10, false, true).required_text().as_deref(),
            Some("a:*")
        );
        assert_eq!(
            ready(LARGE_COUNT, false, false).required_text().as_deref(),
            Some("a:*")
        );
        assert_eq!(
            ready(1, true, false).required_text().as_deref(),
            Some(EVERYTHING_WORD)
        );
        let mut d = ready(10, false, true);
        assert!(!d.can_confirm());
        d.typed = "a:*".into();
        assert!(d.can_confirm());
        assert!(!ready(0, false, false).can_confirm());
    }
}
