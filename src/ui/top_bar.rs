//! The bar at the top: profile switcher, connection status of Redis and the
//! database, refresh, and the tabs.

use eframe::egui;
use egui::RichText;

use super::clock::ago;
use super::model::Model;
use super::state::Persisted;
use super::state::ThemeChoice;
use super::tabs::Tab;
use super::theme;
use super::widgets::status::link_chip_ui;
use crate::backend::Command;

/// Text of the refresh button (unique, so tests can click it by label).
pub const REFRESH_LABEL: &str = "Refresh now";

/// Draws the bar; commands go to `cmds`.
pub fn top_bar_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &mut Persisted,
    now_ms: i64,
    demo: bool,
    cmds: &mut Vec<Command>,
) {
    let dark = theme::is_dark(ui.ctx());
    ui.add_space(4.0);
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("cachedeck").strong().size(17.0));
        if demo {
            ui.label(
                RichText::new("DEMO")
                    .small()
                    .strong()
                    .color(theme::accent(dark)),
            )
            .on_hover_text(
                "A local demo: its own redis-server and SQLite data, removed from memory on exit",
            );
        }
        ui.separator();
        ui.label("Profile");
        let current = if model.profiles.current.is_empty() {
            "(none)".to_string()
        } else {
            model.profiles.current.clone()
        };
        let mut choice = current.clone();
        ui.add_enabled_ui(!demo && model.profiles.names.len() > 1, |ui| {
            egui::ComboBox::from_id_salt("profile")
                .selected_text(&current)
                .show_ui(ui, |ui| {
                    for name in &model.profiles.names {
                        ui.selectable_value(&mut choice, name.clone(), name);
                    }
                });
        });
        if choice != current {
            cmds.push(Command::SwitchProfile(choice));
        }
        if model.profiles.production {
            ui.label(
                RichText::new("PRODUCTION")
                    .small()
                    .strong()
                    .color(theme::bad(dark)),
            )
            .on_hover_text("Destructive actions ask you to type the datasource name");
        }
        for w in &model.profiles.warnings {
            ui.label(
                RichText::new("TLS NOT VERIFIED")
                    .small()
                    .strong()
                    .color(theme::bad(dark)),
            )
            .on_hover_text(w);
        }
        ui.separator();
        let elapsed = now_ms - model.connection_at_ms;
        link_chip_ui(ui, "Redis", &model.connection.redis, elapsed);
        link_chip_ui(ui, "Database", &model.connection.database, elapsed);
        if !model.connected() && ui.small_button("Reconnect").clicked() {
            cmds.push(Command::Reconnect);
        }
        ui.separator();
        if ui
            .button(REFRESH_LABEL)
            .on_hover_text(format!(
                "Read stats, health and jobs now (F5 or Ctrl+R); automatic every {} s",
                model.profiles.refresh_interval_secs.max(1)
            ))
            .clicked()
        {
            cmds.push(Command::Refresh);
        }
        if model.stats.is_some() {
            ui.label(
                RichText::new(format!("updated {}", ago(now_ms - model.stats_at_ms)))
                    .color(theme::muted(dark)),
            );
        }
    });
    ui.add_space(2.0);
    ui.horizontal(|ui| {
        for (i, tab) in Tab::ALL.iter().enumerate() {
            let mut text = tab.label().to_string();
            if *tab == Tab::Warming {
                let n = model.running_jobs().len() + model.queued_jobs().len();
                if n > 0 {
                    text.push_str(&format!(" ({n})"));
                }
            }
            if *tab == Tab::Health
                && let Some(h) = &model.health
                && !h.issues.is_empty()
            {
                text.push_str(&format!(" ({})", h.issues.len()));
            }
            let r = ui
                .selectable_label(view.tab == *tab, RichText::new(text).size(15.0))
                .on_hover_text(format!("Ctrl+{}", i + 1));
            if r.clicked() {
                view.tab = *tab;
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            theme_switch_ui(ui, &mut view.theme);
        });
    });
    ui.add_space(2.0);
}

/// Follow the system, or force light or dark (kept with the view state).
fn theme_switch_ui(ui: &mut egui::Ui, choice: &mut ThemeChoice) {
    let before = *choice;
    egui::ComboBox::from_id_salt("theme")
        .selected_text(choice.label())
        .width(80.0)
        .show_ui(ui, |ui| {
            for c in ThemeChoice::ALL {
                ui.selectable_value(choice, c, c.label());
            }
        });
    ui.label("Theme");
    if *choice != before {
        ui.ctx().set_theme(choice.preference());
    }
}
