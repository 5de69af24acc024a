//! TTL controls: the selected key's "expire in N s" / "persist" row, the
//! production confirmation for it, and parsing of what the admin typed.

use std::time::Duration;

use eframe::egui;
use egui::RichText;

use crate::redis_admin::TtlChange;
use crate::ui::{format, theme};

/// The button that sets the typed TTL on the selected key.
pub const SET_TTL_LABEL: &str = "Set TTL";
/// The button that removes the selected key's expiry.
pub const PERSIST_LABEL: &str = "Persist";
/// The button that opens the purge dialog for the selected key alone.
pub const DELETE_LABEL: &str = "Delete key…";
/// The confirm button of the production TTL dialog.
pub const CONFIRM_TTL_LABEL: &str = "Change TTL";
/// What to type in production to change one key's TTL.
pub const CONFIRM_WORD: &str = "change";

/// Reads a TTL typed in the window: `persist`, whole seconds, or a
/// duration such as `90s`, `15m`, `4h`, `2d`.
pub fn parse_ttl(text: &str) -> Result<TtlChange, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("persist") {
        return Ok(TtlChange::Persist);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return if secs > 0 {
            Ok(TtlChange::Expire(Duration::from_secs(secs)))
        } else {
            Err("a TTL of 0 would delete the key; use Delete".into())
        };
    }
    match crate::config::parse_duration(t) {
        Ok(d) if !d.is_zero() => Ok(TtlChange::Expire(d)),
        _ => Err(format!(
            "`{t}` is not a TTL: seconds (3600), a duration (15m, 4h, 2d) or `persist`"
        )),
    }
}

/// What the TTL row asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum TtlAction {
    /// Change the selected key's expiry.
    Set(TtlChange),
    /// Open the purge dialog for the selected key.
    Delete,
}

/// The TTL row under the key's facts; `input` is what the admin typed.
pub fn ttl_row_ui(ui: &mut egui::Ui, input: &mut String, busy: bool) -> Option<TtlAction> {
    let dark = theme::is_dark(ui.ctx());
    let mut action = None;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("New TTL:");
        ui.add(
            egui::TextEdit::singleline(input)
                .hint_text("3600, 15m, 4h")
                .desired_width(90.0),
        )
        .labelled_by(label.id);
        let parsed = parse_ttl(input);
        let ok = matches!(parsed, Ok(TtlChange::Expire(_)));
        let set = ui
            .add_enabled(ok && !busy, egui::Button::new(SET_TTL_LABEL))
            .on_disabled_hover_text("Type seconds or a duration first");
        if set.clicked()
            && let Ok(change) = parsed.clone()
        {
            action = Some(TtlAction::Set(change));
        }
        if ui
            .add_enabled(!busy, egui::Button::new(PERSIST_LABEL))
            .on_hover_text("Remove the expiry")
            .clicked()
        {
            action = Some(TtlAction::Set(TtlChange::Persist));
        }
        if ui
            .add_enabled(!busy, egui::Button::new(DELETE_LABEL))
            .clicked()
        {
            action = Some(TtlAction::Delete);
        }
        if let (Err(e), false) = (&parsed, input.trim().is_empty()) {
            ui.label(RichText::new(e).small().color(theme::bad(dark)));
        }
    });
    action
}

/// The production confirmation of one key's TTL change.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyTtlDialog {
    /// The key (exact bytes).
    pub key: Vec<u8>,
    /// The change.
    pub change: TtlChange,
    /// What the admin typed.
    pub typed: String,
}

/// What the TTL dialog decided.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyTtlOutcome {
    /// Still open.
    Open,
    /// Closed without acting.
    Cancelled,
    /// Send the change.
    Confirmed,
}

impl KeyTtlDialog {
    /// Draws the dialog.
    pub fn ui(&mut self, ctx: &egui::Context) -> KeyTtlOutcome {
        let dark = theme::is_dark(ctx);
        let mut out = KeyTtlOutcome::Open;
        let what = match self.change {
            TtlChange::Persist => "remove its expiry".to_string(),
            TtlChange::Expire(d) => format!(
                "make it expire in {}",
                format::duration_ms(d.as_millis() as u64)
            ),
        };
        let modal = egui::Modal::new(egui::Id::unique("key-ttl-dialog")).show(ctx, |ui| {
            ui.set_width(460.0);
            ui.heading("Change the TTL?");
            ui.add(
                egui::Label::new(RichText::new(crate::keys::display_bytes(&self.key)).monospace())
                    .wrap(),
            );
            ui.label(format!("This will {what}."));
            ui.label(
                RichText::new("This is a production profile.")
                    .color(theme::bad(dark))
                    .strong(),
            );
            let prompt = ui.label(format!("Type {CONFIRM_WORD} to confirm:"));
            ui.add(
                egui::TextEdit::singleline(&mut self.typed)
                    .hint_text(CONFIRM_WORD)
                    .desired_width(f32::INFINITY),
            )
            .labelled_by(prompt.id);
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                let ok = self.typed.trim() == CONFIRM_WORD;
                if ui
                    .add_enabled(ok, egui::Button::new(CONFIRM_TTL_LABEL))
                    .clicked()
                {
                    out = KeyTtlOutcome::Confirmed;
                }
                if ui.button(super::purge::CANCEL_LABEL).clicked() {
                    out = KeyTtlOutcome::Cancelled;
                }
            });
        });
        if modal.should_close() && out == KeyTtlOutcome::Open {
            out = KeyTtlOutcome::Cancelled;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_text_is_read() {
        assert_eq!(parse_ttl("persist"), Ok(TtlChange::Persist));
        assert_eq!(
            parse_ttl("90"),
            Ok(TtlChange::Expire(Duration::from_secs(90)))
        );
        assert_eq!(
            parse_ttl("15m"),
            Ok(TtlChange::Expire(Duration::from_secs(900)))
        );
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
