//! The Analytics Cache tab: summary tiles, then one card per datasource in a
//! responsive, scrollable grid with sort and filter.

use eframe::egui;
use egui::{RichText, Vec2};

use super::Intent;
use crate::backend::Command;
use crate::metrics::types::{DatasourceCacheMetrics, Health, StatsReport};
use crate::ui::model::Model;
use crate::ui::state::{Persisted, SortKey};
use crate::ui::widgets::cards::{
    self, CARD_GAP, CARD_HEIGHT, CARD_MIN_WIDTH, CardAction, CardView,
};
use crate::ui::widgets::tiles::tile_ui;
use crate::ui::{format, theme};

/// Draws the tab; commands go to `cmds`, window actions to `intents`.
pub fn dashboard_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &mut Persisted,
    now_ms: i64,
    cmds: &mut Vec<Command>,
    intents: &mut Vec<Intent>,
) {
    let Some(stats) = &model.stats else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading cache statistics…");
        });
        return;
    };
    summary_ui(ui, model, stats);
    ui.add_space(8.0);
    let shown = toolbar_ui(ui, model, stats, view, cmds, intents);
    ui.add_space(6.0);
    found_ui(ui, model, intents);
    if stats.datasources.is_empty() {
        ui.label(
            "No datasources yet: add one with \"+ Add datasource\", or from a terminal with `cachedeck datasource add`.",
        );
        return;
    }
    if shown.is_empty() {
        ui.label(format!("No datasource matches \"{}\".", view.filter));
        return;
    }
    grid_ui(ui, model, &shown, now_ms, cmds, intents);
}

fn summary_ui(ui: &mut egui::Ui, model: &Model, stats: &StatsReport) {
    let dark = theme::is_dark(ui.ctx());
    let s = &stats.summary;
    let running = model.running_jobs().len();
    let queued = model.queued_jobs().len();
    let n_tiles = 6.0;
    let gap = ui.spacing().item_spacing.x;
    let avail = ui.available_width();
    let per_row = if avail >= 6.0 * 165.0 { n_tiles } else { 3.0 };
    let width = ((avail - gap * (per_row - 1.0)) / per_row).floor();
    ui.horizontal_wrapped(|ui| {
        tile_ui(
            ui,
            width,
            "Warm datasources",
            RichText::new(format!("{} / {}", s.warm_datasources, s.total_datasources)),
            &format!("{} cold", s.cold_datasources),
        );
        tile_ui(
            ui,
            width,
            "Cache entries",
            RichText::new(format::group(s.total_cache_entries)),
            &format!("{} indexes", format::group(s.total_indexes)),
        );
        tile_ui(
            ui,
            width,
            "Memory",
            RichText::new(format::mb(s.total_memory_mb)),
            "estimated",
        );
        match s.overall_cache_hit_rate {
            Some(rate) => tile_ui(
                ui,
                width,
                "Hit rate",
                RichText::new(format::percent(rate)),
                "since each warm",
            ),
            // Reads seen in sampled idle times, none recorded.
            None if stats.datasources.iter().any(|m| m.reads_unreported()) => tile_ui(
                ui,
                width,
                "Hit rate",
                RichText::new("not reported").color(theme::muted(dark)),
                "reads seen; see README",
            ),
            None => tile_ui(
                ui,
                width,
                "Hit rate",
                RichText::new("no queries yet").color(theme::muted(dark)),
                "since each warm",
            ),
        }
        match &model.health {
            Some(h) => tile_ui(
                ui,
                width,
                "Health",
                RichText::new(theme::overall_label(h.overall))
                    .color(theme::overall_color(h.overall, dark)),
                &match h.issues.len() {
                    0 => "no issues".to_string(),
                    1 => "1 issue".to_string(),
                    n => format!("{n} issues"),
                },
            ),
            None => tile_ui(ui, width, "Health", RichText::new("…"), "checking"),
        }
        tile_ui(
            ui,
            width,
            "Warming now",
            RichText::new(running.to_string()),
            &format!("{queued} queued"),
        );
    });
}

/// Draws the buttons, sort and filter; returns the cards to show, in order.
fn toolbar_ui<'a>(
    ui: &mut egui::Ui,
    model: &Model,
    stats: &'a StatsReport,
    view: &mut Persisted,
    cmds: &mut Vec<Command>,
    intents: &mut Vec<Intent>,
) -> Vec<&'a DatasourceCacheMetrics> {
    let shown = select(&stats.datasources, view);
    ui.horizontal_wrapped(|ui| {
        let enabled = model.connected();
        if ui
            .add_enabled(
                enabled,
                egui::Button::new(RichText::new("Warm All").strong()),
            )
            .on_hover_text(
                "Warm every enabled datasource (ones warmed in the last minutes are skipped)",
            )
            .clicked()
        {
            cmds.push(Command::WarmAll { force: false });
        }
        if ui
            .add_enabled(enabled, egui::Button::new("+ Add datasource"))
            .clicked()
        {
            intents.push(Intent::AddDatasource);
        }
        if ui
            .add_enabled(enabled, egui::Button::new("Export report…"))
            .on_hover_text("Write a cache-efficiency report (HTML, CSV or JSON)")
            .clicked()
        {
            intents.push(Intent::ExportReport);
        }
        ui.separator();
        ui.label("Sort");
        egui::ComboBox::from_id_salt("sort")
            .selected_text(view.sort.label())
            .width(190.0)
            .show_ui(ui, |ui| {
                for k in SortKey::ALL {
                    ui.selectable_value(&mut view.sort, k, k.label());
                }
            });
        let label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut view.filter)
                .hint_text("name or #id")
                .desired_width(180.0),
        )
        .labelled_by(label.id);
        if !view.filter.is_empty()
            && ui
                .small_button("×")
                .on_hover_text("Clear the filter")
                .clicked()
        {
            view.filter.clear();
        }
        ui.label(
            RichText::new(format!(
                "showing {} of {}",
                shown.len(),
                stats.datasources.len()
            ))
            .color(theme::muted(theme::is_dark(ui.ctx()))),
        );
    });
    // The selection reflects this frame's edits next frame; recompute so
    // typing filters at once.
    select(&stats.datasources, view)
}

/// Rank of a health label: worst first.
fn health_rank(h: Health) -> u8 {
    match h {
        Health::Cold => 0,
        Health::Stale => 1,
        Health::Degraded => 2,
        Health::Good => 3,
        Health::Excellent => 4,
    }
}

/// Filters and sorts the datasources for display.
pub fn select<'a>(
    all: &'a [DatasourceCacheMetrics],
    view: &Persisted,
) -> Vec<&'a DatasourceCacheMetrics> {
    let needle = view.filter.trim().trim_start_matches('#').to_lowercase();
    let mut v: Vec<&DatasourceCacheMetrics> = all
        .iter()
        .filter(|m| {
            needle.is_empty()
                || m.datasource_name.to_lowercase().contains(&needle)
                || m.datasource_id.to_string() == needle
        })
        .collect();
    match view.sort {
        SortKey::Health => v.sort_by(|a, b| {
            health_rank(a.health)
                .cmp(&health_rank(b.health))
                .then(a.health_score.score.total_cmp(&b.health_score.score))
                .then_with(|| a.datasource_name.cmp(&b.datasource_name))
        }),
        SortKey::Name => v.sort_by(|a, b| {
            a.datasource_name
                .to_lowercase()
                .cmp(&b.datasource_name.to_lowercase())
                .then(a.datasource_id.cmp(&b.datasource_id))
        }),
        SortKey::Age => v.sort_by(|a, b| {
            let age = |m: &DatasourceCacheMetrics| m.age_minutes.unwrap_or(f64::INFINITY);
            age(b)
                .total_cmp(&age(a))
                .then(a.datasource_id.cmp(&b.datasource_id))
        }),
        SortKey::Memory => v.sort_by(|a, b| {
            b.estimated_memory_mb
                .total_cmp(&a.estimated_memory_mb)
                .then(a.datasource_id.cmp(&b.datasource_id))
        }),
    }
    v
}

fn grid_ui(
    ui: &mut egui::Ui,
    model: &Model,
    shown: &[&DatasourceCacheMetrics],
    now_ms: i64,
    cmds: &mut Vec<Command>,
    intents: &mut Vec<Intent>,
) {
    let avail = ui.available_width() - 14.0; // room for the scroll bar
    let cols = (((avail + CARD_GAP) / (CARD_MIN_WIDTH + CARD_GAP)).floor() as usize).max(1);
    let width = ((avail - CARD_GAP * (cols as f32 - 1.0)) / cols as f32).floor();
    let rows = shown.len().div_ceil(cols);
    let connected = model.connected();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show_rows(ui, CARD_HEIGHT, rows, |ui, range| {
            ui.spacing_mut().item_spacing.y = CARD_GAP;
            for row in range {
                ui.horizontal(|ui| {
                    ui.spacing_mut().item_spacing.x = CARD_GAP;
                    for m in shown.iter().skip(row * cols).take(cols) {
                        let view = CardView {
                            metrics: m,
                            age_minutes: model.age_minutes(m, now_ms),
                            job: model.job_for(m.datasource_id),
                            connected,
                        };
                        match cards::card_ui(ui, Vec2::new(width, CARD_HEIGHT), &view) {
                            Some(CardAction::Refresh) => cmds.push(Command::Warm {
                                ids: vec![m.datasource_id],
                                force: true,
                            }),
                            Some(CardAction::WarmNow) => cmds.push(Command::Warm {
                                ids: vec![m.datasource_id],
                                force: false,
                            }),
                            Some(CardAction::Invalidate) => {
                                intents.push(Intent::ConfirmInvalidate(m.datasource_id))
                            }
                            Some(CardAction::Details) => {
                                intents.push(Intent::ShowDetails(m.datasource_id))
                            }
                            Some(CardAction::Configure) => {
                                intents.push(Intent::Configure(m.datasource_id))
                            }
                            None => {}
                        }
                    }
                });
            }
        });
}

/// Caches found in Redis whose datasource is not registered, each with a
/// Register button that opens the editor with its id.
fn found_ui(ui: &mut egui::Ui, model: &Model, intents: &mut Vec<Intent>) {
    let found: Vec<_> = model.unregistered().collect();
    if found.is_empty() {
        return;
    }
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.label(RichText::new("Found in Redis, not registered").strong());
        ui.label(
            RichText::new(
                "Caches written by another tool (e.g. the application's own warmer). Register one to see and manage it; nothing is written to Redis until you warm it.",
            )
            .weak(),
        );
        egui::Grid::new("found_in_redis")
            .num_columns(4)
            .spacing([16.0, 4.0])
            .show(ui, |ui| {
                for d in found {
                    ui.label(RichText::new(format!("DS #{}", d.datasource_id)).strong());
                    ui.label(format!("{} entries", d.total_entries));
                    ui.label(format!("≈ {:.2} MB", d.estimated_memory_mb));
                    if ui
                        .button("Register")
                        .on_hover_text(format!(
                            "Open the datasource editor with id {}",
                            d.datasource_id
                        ))
                        .clicked()
                    {
                        intents.push(Intent::Register(d.datasource_id));
                    }
                    ui.end_row();
                }
            });
    });
    ui.add_space(6.0);
}
