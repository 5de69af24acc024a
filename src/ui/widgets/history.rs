//! The table of ended warm jobs: when, how long, how much, and the outcome
//! (or the error).

use eframe::egui;
use egui::RichText;

use crate::jobs::RecentJob;
use crate::ui::clock::{ago, local_time, parse_iso_ms};
use crate::ui::{format, theme};

/// Draws the history. `now_ms` is the server's now (for "2 min ago");
/// `local_now_ms` the local clock (for wall-clock times). `with_datasource`
/// adds the datasource column (the Warming tab; Details shows one).
pub fn history_ui(
    ui: &mut egui::Ui,
    id: &str,
    jobs: &[RecentJob],
    now_ms: i64,
    local_now_ms: i64,
    with_datasource: bool,
) {
    let dark = theme::is_dark(ui.ctx());
    if jobs.is_empty() {
        ui.label(RichText::new("No warm jobs yet.").color(theme::muted(dark)));
        return;
    }
    egui::Grid::new(id)
        .striped(true)
        .num_columns(if with_datasource { 6 } else { 5 })
        .spacing([18.0, 6.0])
        .show(ui, |ui| {
            if with_datasource {
                ui.strong("Datasource");
            }
            ui.strong("Finished");
            ui.strong("Duration");
            ui.strong("Rows");
            ui.strong("Entries");
            ui.strong("Result");
            ui.end_row();
            for j in jobs {
                if with_datasource {
                    ui.label(format!("{} #{}", j.datasource_name, j.datasource_id));
                }
                let end = j
                    .completed_at
                    .as_deref()
                    .or(j.started_at.as_deref())
                    .and_then(parse_iso_ms);
                match end {
                    Some(t) => ui.label(ago(now_ms - t)).on_hover_text(format!(
                        "{} (local time), by {}",
                        local_time(t - (now_ms - local_now_ms), local_now_ms),
                        j.owner
                    )),
                    None => ui.label("—"),
                };
                ui.label(
                    j.duration_ms
                        .map(|d| format::duration_ms(d.max(0) as u64))
                        .unwrap_or_else(|| "—".into()),
                );
                ui.label(format::group_i(j.rows_processed));
                ui.label(format::group_i(j.entries_cached));
                result_ui(ui, j, dark);
                ui.end_row();
            }
        });
}

fn result_ui(ui: &mut egui::Ui, j: &RecentJob, dark: bool) {
    match j.state.as_str() {
        "succeeded" => {
            ui.label(RichText::new("succeeded").color(theme::good(dark)));
        }
        "skipped" => {
            ui.label(RichText::new("skipped (fresh)").color(theme::good(dark)))
                .on_hover_text("Warmed recently; skipped unless forced");
        }
        "cancelled" => {
            ui.label(RichText::new("cancelled").color(theme::warn(dark)));
        }
        other => {
            let text = match &j.error {
                Some(e) => format!("{other}: {e}"),
                None => other.to_string(),
            };
            ui.add(egui::Label::new(RichText::new(text).color(theme::bad(dark))).truncate())
                .on_hover_text(j.error.clone().unwrap_or_default());
        }
    }
}
