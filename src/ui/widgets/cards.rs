//! One datasource's card on the dashboard: health, age, size, reader
//! statistics, warnings, a live progress bar while it warms, and its actions.

use eframe::egui;
use egui::{Align, Layout, RichText, Sense, UiBuilder, Vec2};

use super::progress;
use super::status::dot_ui;
use crate::jobs::{JobSnapshot, JobState};
use crate::metrics::types::DatasourceCacheMetrics;
use crate::ui::clock::ago;
use crate::ui::{format, theme};

/// Height of every card (fixed, so a long list scrolls by rows cheaply).
pub const CARD_HEIGHT: f32 = 236.0;
/// Narrowest card; the grid fits as many columns as this allows.
pub const CARD_MIN_WIDTH: f32 = 340.0;
/// Space between cards.
pub const CARD_GAP: f32 = 12.0;

/// What a card shows.
pub struct CardView<'a> {
    /// The datasource's metrics.
    pub metrics: &'a DatasourceCacheMetrics,
    /// Minutes since the last warm, as of now (`None`: never warmed).
    pub age_minutes: Option<f64>,
    /// The job warming it now, if any.
    pub job: Option<&'a JobSnapshot>,
    /// Whether actions can be sent (both connections up).
    pub connected: bool,
}

/// A button pressed on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    /// Shadow-warm a warm datasource again (forced).
    Refresh,
    /// Warm a cold datasource.
    WarmNow,
    /// Ask to delete the cache (opens the confirmation).
    Invalidate,
    /// Open the Details tab on it.
    Details,
    /// Open the Configure dialog.
    Configure,
}

/// Draws a card of exactly `size`; returns the button pressed.
pub fn card_ui(ui: &mut egui::Ui, size: Vec2, view: &CardView<'_>) -> Option<CardAction> {
    let dark = theme::is_dark(ui.ctx());
    let m = view.metrics;
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    if !ui.is_rect_visible(rect) {
        return None;
    }
    let health_color = theme::health_color(m.health, dark);
    ui.painter().rect(
        rect,
        8.0,
        theme::card_fill(dark),
        egui::Stroke::new(1.0, theme::card_stroke(dark)),
        egui::StrokeKind::Inside,
    );
    // A health-coloured edge on the left, readable at a glance.
    let edge = egui::Rect::from_min_size(rect.min, Vec2::new(5.0, rect.height()));
    ui.painter().rect_filled(
        edge,
        egui::CornerRadius {
            nw: 8,
            sw: 8,
            ne: 0,
            se: 0,
        },
        health_color,
    );
    let inner = rect
        .shrink2(Vec2::new(16.0, 12.0))
        .translate(Vec2::new(3.0, 0.0));
    let mut child = ui.new_child(
        UiBuilder::new()
            .max_rect(inner)
            .layout(Layout::top_down(Align::Min))
            .id_salt(("card", m.datasource_id)),
    );
    child.set_clip_rect(rect);
    card_body_ui(&mut child, view, health_color, dark)
}

fn card_body_ui(
    ui: &mut egui::Ui,
    view: &CardView<'_>,
    health_color: egui::Color32,
    dark: bool,
) -> Option<CardAction> {
    let m = view.metrics;
    let muted = theme::muted(dark);
    let mut action = None;
    ui.horizontal(|ui| {
        dot_ui(ui, health_color, true);
        ui.label(
            RichText::new(theme::health_label(m.health))
                .color(health_color)
                .strong(),
        )
        .on_hover_text(format!("Health score {:.0} / 100", m.health_score.score));
        if !m.enabled {
            ui.label(RichText::new("disabled").small().color(muted));
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            ui.label(RichText::new(format!("#{}", m.datasource_id)).color(muted));
        });
    });
    ui.add(egui::Label::new(RichText::new(&m.datasource_name).heading().strong()).truncate());
    // Age.
    match view.age_minutes {
        Some(age) => {
            let mut text = format!("Last warmed: {}", ago((age * 60_000.0) as i64));
            if age > m.stale_after_minutes {
                text.push_str(&format!(
                    " (stale after {})",
                    format::span_secs((m.stale_after_minutes * 60.0).round() as i64)
                ));
            }
            let color = if age > m.stale_after_minutes {
                theme::warn(dark)
            } else {
                ui.visuals().text_color()
            };
            ui.label(RichText::new(text).color(color))
                .on_hover_text(m.last_warmed.clone().unwrap_or_default());
        }
        None => {
            ui.label(RichText::new("Never warmed").color(theme::bad(dark)));
        }
    }
    // Size.
    if !m.is_warm && m.total_entries == 0 {
        ui.label(RichText::new("Nothing cached").color(muted));
    } else {
        ui.label(format!(
            "{} entries • {} • {} measures • {} practices",
            format::group(m.total_entries),
            format::mb(m.estimated_memory_mb),
            format::group(m.unique_measures),
            format::group(m.unique_practices)
        ));
    }
    // Readers.
    match (m.cache_hit_rate, m.avg_query_time_ms) {
        (Some(rate), Some(avg)) => ui.label(format!(
            "Hit rate {} • avg query {} • {}",
            format::percent(rate),
            format::millis(avg),
            format::count(m.total_queries, "query", "queries")
        )),
        // Sampled idle times show reads the application does not record.
        _ if m.reads_unreported() => ui.label(
            RichText::new(format!("Hit rate: {}", crate::metrics::READS_NOT_REPORTED)).color(muted),
        ),
        _ => ui.label(RichText::new("Hit rate: no queries yet").color(muted)),
    };
    // A live job, or the warnings.
    let warming = view.job.filter(|j| !j.state.is_final());
    // Warming by a job this window has not seen yet (the lock says so).
    let locked = warming.is_none() && m.warming_job.is_some();
    match warming {
        Some(job) => {
            ui.horizontal(|ui| {
                let w = ui.available_width() * 0.55;
                progress::progress_bar_ui(ui, job, w);
                ui.label(RichText::new(progress::rows_text(job)).small().color(muted));
            });
        }
        None if !m.warnings.is_empty() => {
            let mut text = m.warnings[0].clone();
            if m.warnings.len() > 1 {
                text.push_str(&format!(" (+{} more)", m.warnings.len() - 1));
            }
            ui.add(egui::Label::new(RichText::new(text).color(theme::warn(dark))).truncate())
                .on_hover_text(m.warnings.join("\n"));
        }
        None => {
            ui.label("");
        }
    }
    // Actions, pinned to the bottom.
    ui.with_layout(Layout::bottom_up(Align::Min), |ui| {
        ui.horizontal(|ui| {
            let busy = warming.is_some() || locked;
            if m.is_warm {
                ui.add_enabled_ui(view.connected && !busy, |ui| {
                    if busy {
                        ui.add(egui::Spinner::new().size(18.0));
                    }
                    if ui
                        .button("Refresh")
                        .on_hover_text(
                            "Shadow-warm again; readers keep the current cache until the swap",
                        )
                        .on_disabled_hover_text(if busy { "Warming now" } else { "Not connected" })
                        .clicked()
                    {
                        action = Some(CardAction::Refresh);
                    }
                });
            } else {
                ui.add_enabled_ui(view.connected && !busy, |ui| {
                    if busy {
                        ui.add(egui::Spinner::new().size(18.0));
                    }
                    let b = egui::Button::new(RichText::new("Warm Now").strong());
                    if ui
                        .add(b)
                        .on_hover_text("Fill the cache from the source query")
                        .clicked()
                    {
                        action = Some(CardAction::WarmNow);
                    }
                });
            }
            ui.add_enabled_ui(view.connected && m.is_warm && !busy, |ui| {
                if ui
                    .button("Invalidate")
                    .on_hover_text("Delete this datasource's cache")
                    .clicked()
                {
                    action = Some(CardAction::Invalidate);
                }
            });
            if ui.button("Details").clicked() {
                action = Some(CardAction::Details);
            }
            if ui.button("Configure").clicked() {
                action = Some(CardAction::Configure);
            }
        });
    });
    if matches!(
        warming.map(|j| j.state),
        Some(JobState::Running | JobState::Swapping)
    ) {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    }
    action
}
