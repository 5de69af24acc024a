//! The Health tab: the health check's verdict, its issues with what to do
//! about each, and the overall recommendations.

use eframe::egui;
use egui::RichText;

use super::Intent;
use crate::metrics::types::Severity;
use crate::ui::model::Model;
use crate::ui::theme;

/// Draws the tab; window actions (open a datasource) go to `intents`.
pub fn health_ui(ui: &mut egui::Ui, model: &Model, intents: &mut Vec<Intent>) {
    let dark = theme::is_dark(ui.ctx());
    let Some(h) = &model.health else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Checking cache health…");
        });
        return;
    };
    ui.horizontal(|ui| {
        ui.heading("Overall:");
        ui.heading(
            RichText::new(theme::overall_label(h.overall))
                .color(theme::overall_color(h.overall, dark)),
        );
    });
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if h.issues.is_empty() {
                ui.label(RichText::new("No issues found.").color(theme::good(dark)));
            }
            for issue in &h.issues {
                let (icon, color) = match issue.severity {
                    Severity::Error => ("Error", theme::bad(dark)),
                    Severity::Warning => ("Warning", theme::warn(dark)),
                    Severity::Info => ("Info", theme::accent(dark)),
                };
                egui::Frame::group(ui.style())
                    .inner_margin(8.0)
                    .show(ui, |ui| {
                        ui.set_width(ui.available_width());
                        ui.horizontal(|ui| {
                            ui.label(RichText::new(icon).color(color).strong());
                            if let (Some(id), Some(name)) =
                                (issue.datasource_id, &issue.datasource_name)
                            {
                                if ui.link(format!("{name} (#{id})")).clicked() {
                                    intents.push(Intent::ShowDetails(id));
                                }
                            } else {
                                ui.label(RichText::new("Redis").strong());
                            }
                            ui.add(egui::Label::new(&issue.issue).wrap());
                        });
                        ui.label(
                            RichText::new(format!("Recommendation: {}", issue.recommendation))
                                .color(theme::muted(dark)),
                        );
                    });
            }
            if !h.recommendations.is_empty() {
                ui.add_space(8.0);
                ui.heading("Recommendations");
                for r in &h.recommendations {
                    ui.label(format!("• {r}"));
                }
            }
        });
}
