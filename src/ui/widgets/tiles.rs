//! The summary tiles at the top of the dashboard: a caption, a big value and
//! a small line under it.

use eframe::egui;
use egui::{RichText, Vec2};

use crate::ui::theme;

/// Draws one tile `width` wide.
pub fn tile_ui(ui: &mut egui::Ui, width: f32, caption: &str, value: RichText, detail: &str) {
    let dark = theme::is_dark(ui.ctx());
    egui::Frame::new()
        .fill(theme::card_fill(dark))
        .stroke(egui::Stroke::new(1.0, theme::card_stroke(dark)))
        .corner_radius(8.0)
        .inner_margin(egui::Margin::symmetric(14, 10))
        .show(ui, |ui| {
            // Margins (2 × 14) and the stroke (2 × 1) make up the rest.
            ui.set_min_size(Vec2::new(width - 30.0, 62.0));
            ui.set_max_width(width - 30.0);
            ui.vertical(|ui| {
                ui.label(RichText::new(caption).small().color(theme::muted(dark)));
                ui.label(value.size(22.0).strong());
                if !detail.is_empty() {
                    ui.label(RichText::new(detail).small().color(theme::muted(dark)));
                }
            });
        });
}
