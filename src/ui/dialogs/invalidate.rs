//! "Invalidate cache?": lists what will be deleted; a production profile
//! also asks to type the datasource's name.

use eframe::egui;
use egui::RichText;

use super::Outcome;
use crate::keys::DsId;
use crate::metrics::types::DatasourceCacheMetrics;
use crate::ui::{format, theme};

/// The confirm button's text (distinct from the card's "Invalidate").
pub const CONFIRM_LABEL: &str = "Invalidate cache";

/// An open confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidateDialog {
    /// The datasource.
    pub ds: DsId,
    /// Its name (typed to confirm in production).
    pub name: String,
    /// Live entries that will be deleted.
    pub entries: u64,
    /// Secondary indexes that will be deleted.
    pub indexes: u64,
    /// Estimated memory freed.
    pub memory_mb: f64,
    /// Whether the profile is a production one.
    pub production: bool,
    /// What the admin typed (production only).
    pub typed: String,
}

impl InvalidateDialog {
    /// A confirmation for `m`.
    pub fn new(m: &DatasourceCacheMetrics, production: bool) -> InvalidateDialog {
        InvalidateDialog {
            ds: m.datasource_id,
            name: m.datasource_name.clone(),
            entries: m.total_entries,
            indexes: m.index_count,
            memory_mb: m.estimated_memory_mb,
            production,
            typed: String::new(),
        }
    }

    /// True when the admin may press Invalidate.
    pub fn can_confirm(&self) -> bool {
        !self.production || self.typed.trim() == self.name
    }
}

/// Draws the dialog; `Confirmed(ds)` when the admin confirmed.
pub fn invalidate_dialog_ui(ctx: &egui::Context, d: &mut InvalidateDialog) -> Outcome<DsId> {
    let dark = theme::is_dark(ctx);
    let mut outcome = Outcome::Open;
    let modal = egui::Modal::new(egui::Id::unique("invalidate-dialog")).show(ctx, |ui| {
        ui.set_width(440.0);
        ui.heading(format!("Invalidate {}?", d.name));
        ui.add_space(4.0);
        ui.label(format!("This deletes the live cache of datasource #{}:", d.ds));
        ui.label(format!("• {} entries", format::group(d.entries)));
        ui.label(format!("• {} indexes", format::group(d.indexes)));
        ui.label(format!("• about {} of memory", format::mb(d.memory_mb)));
        ui.add_space(4.0);
        ui.label(
            RichText::new("Readers get misses until the next warm. A warm running now is aborted and its shadow keys removed.")
                .color(theme::muted(dark)),
        );
        if d.production {
            ui.add_space(6.0);
            ui.label(RichText::new("This is a production profile.").color(theme::bad(dark)).strong());
            let prompt = ui.label(format!("Type {} to confirm:", d.name));
            ui.add(egui::TextEdit::singleline(&mut d.typed).hint_text(d.name.clone()).desired_width(f32::INFINITY))
                .labelled_by(prompt.id);
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let confirm = egui::Button::new(RichText::new(CONFIRM_LABEL).color(egui::Color32::WHITE).strong())
                .fill(theme::bad(dark));
            if ui.add_enabled(d.can_confirm(), confirm).clicked() {
                outcome = Outcome::Confirmed(d.ds);
            }
            if ui.button("Cancel").clicked() {
                outcome = Outcome::Cancelled;
            }
        });
    });
    if modal.should_close() && outcome == Outcome::Open {
        outcome = Outcome::Cancelled;
    }
    outcome
}
