//! Connection status chips for the top bar: connected, reconnecting in N s
//! (counting down from when the state arrived), or failed with the reason.

use eframe::egui;
use egui::{RichText, Sense, Vec2};

use crate::backend::LinkState;
use crate::ui::theme;

/// Draws a dot and "Redis: connected" and friends. `elapsed_ms` is the time since
/// the state arrived, for the countdown.
pub fn link_chip_ui(ui: &mut egui::Ui, name: &str, state: &LinkState, elapsed_ms: i64) {
    let dark = theme::is_dark(ui.ctx());
    let (filled, color, text, hover) = match state {
        LinkState::Connecting => (
            false,
            theme::muted(dark),
            format!("{name}: connecting…"),
            None,
        ),
        LinkState::Connected { label } => (
            true,
            theme::good(dark),
            format!("{name}: connected"),
            Some(format!("Connected to {label}")),
        ),
        LinkState::Reconnecting {
            next_retry_in,
            reason,
        } => {
            let left = (next_retry_in.as_millis() as i64 - elapsed_ms).max(0);
            let text = if left > 0 {
                format!("{name}: reconnecting in {} s", (left + 999) / 1000)
            } else {
                format!("{name}: reconnecting…")
            };
            (false, theme::warn(dark), text, Some(reason.clone()))
        }
        LinkState::Failed(reason) => (
            true,
            theme::bad(dark),
            format!("{name}: failed: {}", shorten(reason, 32)),
            Some(reason.clone()),
        ),
    };
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 5.0;
        dot_ui(ui, color, filled);
        let r = ui.label(RichText::new(text).color(color));
        if let Some(h) = hover {
            r.on_hover_text(h);
        }
    });
}

/// A small coloured dot (filled) or ring (not), drawn rather than typed:
/// the bundled font has no symbol glyphs.
pub fn dot_ui(ui: &mut egui::Ui, color: egui::Color32, filled: bool) {
    let size = ui.text_style_height(&egui::TextStyle::Body);
    let (rect, _) = ui.allocate_exact_size(Vec2::new(10.0, size), Sense::hover());
    let c = rect.center();
    if filled {
        ui.painter().circle_filled(c, 4.5, color);
    } else {
        ui.painter()
            .circle_stroke(c, 4.0, egui::Stroke::new(1.6, color));
    }
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}
