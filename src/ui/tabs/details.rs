//! The Details tab for one datasource: reader trends (hit rate, query time,
//! load), how the entries are read (sampled idle times), memory and entries
//! over warms, entries per measure and frequency, and its recent jobs.

use eframe::egui;
use egui::RichText;

use super::Intent;
use crate::backend::{Command, DatasourceDetails, TrendRange};
use crate::keys::DsId;
use crate::ui::clock::ago;
use crate::ui::model::Model;
use crate::ui::state::Persisted;
use crate::ui::widgets::history::history_ui;
use crate::ui::widgets::plots::{Series, bar_list_ui, time_series_ui};
use crate::ui::{format, theme};

/// Height of each plot.
const PLOT_HEIGHT: f32 = 170.0;

/// The datasource the tab shows: the chosen one, else the first known.
pub fn current_ds(model: &Model, view: &Persisted) -> Option<DsId> {
    let known = |id: DsId| model.datasources.contains_key(&id) || model.metrics(id).is_some();
    view.details_ds.filter(|id| known(*id)).or_else(|| {
        model
            .stats
            .as_ref()
            .and_then(|s| s.datasources.first().map(|m| m.datasource_id))
            .or_else(|| model.datasources.keys().next().copied())
    })
}

/// Draws the tab; commands go to `cmds`, window actions to `intents`.
pub fn details_ui(
    ui: &mut egui::Ui,
    model: &Model,
    view: &mut Persisted,
    now_ms: i64,
    cmds: &mut Vec<Command>,
    intents: &mut Vec<Intent>,
) {
    let dark = theme::is_dark(ui.ctx());
    let Some(ds) = current_ds(model, view) else {
        ui.label(RichText::new("No datasources yet.").color(theme::muted(dark)));
        return;
    };
    view.details_ds = Some(ds);
    let name = model
        .metrics(ds)
        .map(|m| m.datasource_name.clone())
        .or_else(|| model.datasources.get(&ds).map(|d| d.name.clone()))
        .unwrap_or_else(|| format!("#{ds}"));
    let loading = model.details_pending.is_some();
    ui.horizontal_wrapped(|ui| {
        ui.label("Datasource");
        egui::ComboBox::from_id_salt("details-ds")
            .selected_text(format!("{name} (#{ds})"))
            .width(240.0)
            .show_ui(ui, |ui| {
                let mut choice = ds;
                if let Some(s) = &model.stats {
                    for m in &s.datasources {
                        ui.selectable_value(
                            &mut choice,
                            m.datasource_id,
                            format!("{} (#{})", m.datasource_name, m.datasource_id),
                        );
                    }
                }
                if choice != ds {
                    intents.push(Intent::ShowDetails(choice));
                }
            });
        ui.separator();
        ui.label("Range");
        for r in TrendRange::ALL {
            if ui.selectable_label(view.range == r, r.label()).clicked() && view.range != r {
                view.range = r;
            }
        }
        ui.separator();
        if ui
            .add_enabled(model.connected() && !loading, egui::Button::new("Reload"))
            .clicked()
        {
            cmds.push(Command::LoadDetails {
                ds,
                range: view.range,
            });
        }
        if ui.button("Configure").clicked() {
            intents.push(Intent::Configure(ds));
        }
        if loading {
            ui.spinner();
        }
    });
    ui.add_space(4.0);
    if let Some(m) = model.metrics(ds) {
        ui.horizontal_wrapped(|ui| {
            let c = theme::health_color(m.health, dark);
            crate::ui::widgets::status::dot_ui(ui, c, true);
            ui.label(
                RichText::new(theme::health_label(m.health))
                    .color(c)
                    .strong(),
            );
            let age = model
                .age_minutes(m, now_ms)
                .map(|a| format!("last warmed {}", ago((a * 60_000.0) as i64)))
                .unwrap_or_else(|| "never warmed".into());
            ui.label(format!(
                "{age} • {} entries • {} indexes • {} • {} measures • {} practices • {} providers",
                format::group(m.total_entries),
                format::group(m.index_count),
                format::mb(m.estimated_memory_mb),
                format::group(m.unique_measures),
                format::group(m.unique_practices),
                format::group(m.unique_providers),
            ));
        });
    }
    let details = model
        .details
        .as_ref()
        .filter(|d| d.ds == ds && d.range == view.range);
    let Some(d) = details else {
        if !model.connected() {
            ui.label(
                RichText::new("Not connected: details load once the connection is back.")
                    .color(theme::warn(dark)),
            );
        } else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Loading details…");
            });
        }
        return;
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            details_body_ui(ui, model, d, now_ms);
        });
}

fn details_body_ui(ui: &mut egui::Ui, model: &Model, d: &DatasourceDetails, now_ms: i64) {
    let dark = theme::is_dark(ui.ctx());
    let off = model.server_offset_ms;
    let t = &d.trends;
    let x_range = (t.from_ms - off, t.to_ms - off);
    let bucket = if t.hourly { "hour" } else { "minute" };
    ui.label(match (t.totals.hit_rate, t.totals.avg_query_ms) {
        (Some(rate), Some(avg)) => format!(
            "Last {}: {} queries • hit rate {} • avg query {} (per {bucket})",
            d.range.label(),
            format::group(t.totals.queries),
            format::percent(rate),
            format::millis(avg)
        ),
        _ if model.metrics(d.ds).is_some_and(|m| m.reads_unreported()) => format!(
            "Last {}: no queries recorded; {} (sampled reads below)",
            d.range.label(),
            crate::metrics::READS_NOT_REPORTED
        ),
        _ => format!("Last {}: no queries recorded", d.range.label()),
    });
    if let Some(m) = model.metrics(d.ds)
        && m.is_warm
    {
        ui.add_space(4.0);
        crate::ui::widgets::usage::read_usage_ui(
            ui,
            m.read_usage.as_ref(),
            model.server_now(now_ms),
        );
        ui.add_space(8.0);
    }
    let hit = Series::from_points(
        "Hit rate",
        "%",
        theme::good(dark),
        t.points.iter().map(|p| (p.time_ms - off, p.hit_rate)),
    );
    let avg = Series::from_points(
        "Avg query time",
        "ms",
        theme::accent(dark),
        t.points.iter().map(|p| (p.time_ms - off, p.avg_query_ms)),
    );
    let queries = Series::from_points(
        "Queries",
        "",
        theme::muted(dark),
        t.points
            .iter()
            .map(|p| (p.time_ms - off, Some(p.queries as f64))),
    );
    let mut memory = Series::from_points(
        "Memory",
        "MB",
        theme::warn(dark),
        t.memory
            .iter()
            .map(|p| (p.time_ms - off, Some(p.memory_mb))),
    );
    memory.markers = true;
    let mut entries = Series::from_points(
        "Entries",
        "",
        theme::accent(dark),
        t.memory
            .iter()
            .map(|p| (p.time_ms - off, Some(p.entries as f64))),
    );
    entries.markers = true;

    // Warms are sparse: plot their samples from the first one (at least the
    // last hour), not over the whole range.
    let mem_range = match t.memory.first() {
        Some(first) => (
            (first.time_ms - off - 300_000).min(x_range.1 - 3_600_000),
            x_range.1,
        ),
        None => x_range,
    };
    let wide = ui.available_width() > 900.0;
    type Spec<'a> = (&'a str, &'a str, Series, Option<(f64, f64)>, (i64, i64));
    let plot = |ui: &mut egui::Ui, (title, id, s, y, range): Spec<'_>| {
        ui.vertical(|ui| {
            ui.label(RichText::new(title).strong());
            time_series_ui(ui, id, &[s], range, now_ms, y, PLOT_HEIGHT);
        });
    };
    let pairs: [(Spec<'_>, Spec<'_>); 2] = [
        (
            ("Hit rate (%)", "plot-hit", hit, Some((0.0, 100.0)), x_range),
            ("Average query time (ms)", "plot-avg", avg, None, x_range),
        ),
        (
            (
                "Memory over warms (MB)",
                "plot-mem",
                memory,
                None,
                mem_range,
            ),
            (
                "Entries over warms",
                "plot-entries",
                entries,
                None,
                mem_range,
            ),
        ),
    ];
    for (a, b) in pairs {
        if wide {
            ui.columns(2, |cols| {
                plot(&mut cols[0], a);
                plot(&mut cols[1], b);
            });
        } else {
            plot(ui, a);
            plot(ui, b);
        }
        ui.add_space(6.0);
    }
    let title = format!("Queries per {bucket}");
    plot(ui, (&title, "plot-queries", queries, None, x_range));
    ui.add_space(8.0);

    ui.heading("Entries");
    let b = &d.breakdown;
    if b.truncated {
        ui.label(
            RichText::new(format!(
                "Counted over the first {} entries (a sample of a larger cache).",
                format::group(b.scanned)
            ))
            .color(theme::muted(dark)),
        );
    }
    ui.columns(2, |cols| {
        cols[0].label(RichText::new("Per measure").strong());
        bar_list_ui(&mut cols[0], &b.per_measure, theme::accent(dark));
        cols[1].label(RichText::new("Per frequency").strong());
        bar_list_ui(&mut cols[1], &b.per_frequency, theme::good(dark));
    });
    ui.add_space(8.0);
    ui.heading("Recent jobs");
    history_ui(
        ui,
        "details-history",
        &d.recent_jobs,
        model.server_now(now_ms),
        now_ms,
        false,
    );
}
