//! Plots of the Details view: time series with a local-time x axis and
//! hover values, and simple labelled bar lists for breakdowns.

use eframe::egui;
use std::ops::RangeInclusive;

use egui::{Color32, RichText, Sense, Vec2};
use egui_plot::{GridInput, GridMark, HoverPosition, Line, Plot, PlotPoints, Points};

use crate::ui::clock::{axis_time, local_time};
use crate::ui::{format, theme};

/// Grid steps that read well on a time axis, in ms.
const TIME_STEPS_MS: [f64; 15] = [
    60_000.0,
    300_000.0,
    600_000.0,
    900_000.0,
    1_800_000.0,
    3_600_000.0,
    7_200_000.0,
    10_800_000.0,
    21_600_000.0,
    43_200_000.0,
    86_400_000.0,
    172_800_000.0,
    604_800_000.0,
    1_209_600_000.0,
    2_592_000_000.0,
];

/// One plotted quantity, split into segments where data is missing (a
/// bucket without queries is a gap, not a zero).
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Legend and hover name.
    pub name: String,
    /// Unit shown after values ("%", "ms", "MB", "entries").
    pub unit: &'static str,
    /// Line colour.
    pub color: Color32,
    /// Contiguous runs of `[local time ms, value]`.
    pub segments: Vec<Vec<[f64; 2]>>,
    /// Draw a marker at each point (sparse data such as warms).
    pub markers: bool,
}

impl Series {
    /// Builds a series from `(time ms, value)` where `None` is a gap.
    pub fn from_points(
        name: impl Into<String>,
        unit: &'static str,
        color: Color32,
        points: impl IntoIterator<Item = (i64, Option<f64>)>,
    ) -> Series {
        let mut segments: Vec<Vec<[f64; 2]>> = Vec::new();
        let mut current: Vec<[f64; 2]> = Vec::new();
        for (t, v) in points {
            match v {
                Some(y) => current.push([t as f64, y]),
                None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
                None => {}
            }
        }
        if !current.is_empty() {
            segments.push(current);
        }
        Series {
            name: name.into(),
            unit,
            color,
            segments,
            markers: false,
        }
    }

    /// True when there is nothing to draw.
    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(Vec::is_empty)
    }
}

/// Picks three grid steps for a time axis from the smallest readable one.
fn time_steps(input: GridInput) -> [f64; 3] {
    // Labels are about five characters wide: keep them well apart.
    let want = input.base_step_size * 12.0;
    let i = TIME_STEPS_MS
        .iter()
        .position(|s| *s >= want)
        .unwrap_or(TIME_STEPS_MS.len() - 1);
    let at = |k: usize| TIME_STEPS_MS[(i + k).min(TIME_STEPS_MS.len() - 1)];
    [at(0), at(1), at(2)]
}

/// 1-2-5 steps for a value axis, the smallest about 32 points apart, so
/// every short range (0–8 ms, 0–12 MB) gets several labelled lines.
fn value_steps(input: GridInput) -> [f64; 3] {
    let want = (input.base_step_size * 4.0).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(want.log10().floor());
    // The smallest of 1, 2, 5, 10 × magnitude that is at least `want`, and a
    // coarser step that is a multiple of it (so labels never crowd).
    let (s0, s1) = if want <= magnitude {
        (magnitude, 5.0 * magnitude)
    } else if want <= 2.0 * magnitude {
        (2.0 * magnitude, 10.0 * magnitude)
    } else if want <= 5.0 * magnitude {
        (5.0 * magnitude, 10.0 * magnitude)
    } else {
        (10.0 * magnitude, 50.0 * magnitude)
    };
    [s0, s1, s0 * 10.0]
}

/// A value with its unit, for hover labels and the y axis.
fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "%" => format::percent(v),
        "ms" => format::millis(v),
        "MB" => format::mb(v),
        "" => format::group(v.max(0.0).round() as u64),
        u => format!("{} {u}", format::group(v.max(0.0).round() as u64)),
    }
}

/// Draws a time-series plot `height` tall over `[from_ms, to_ms]` (local
/// time). `y_range` pins the y axis (0–100 for percentages).
pub fn time_series_ui(
    ui: &mut egui::Ui,
    id: &str,
    series: &[Series],
    (from_ms, to_ms): (i64, i64),
    now_ms: i64,
    y_range: Option<(f64, f64)>,
    height: f32,
) {
    let dark = theme::is_dark(ui.ctx());
    let unit = series.first().map(|s| s.unit).unwrap_or("");
    let units: Vec<(String, &'static str)> =
        series.iter().map(|s| (s.name.clone(), s.unit)).collect();
    let mut plot = Plot::new(id)
        .height(height)
        .allow_scroll(false)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_boxed_zoom(false)
        .show_background(false)
        .include_x(from_ms as f64)
        // A little room on the right so the newest point is not on the edge.
        .include_x(to_ms as f64 + (to_ms - from_ms) as f64 * 0.02)
        .x_grid_spacer(egui_plot::uniform_grid_spacer(time_steps))
        .y_grid_spacer(egui_plot::uniform_grid_spacer(value_steps))
        .x_axis_formatter(move |mark: GridMark, _range: &RangeInclusive<f64>| {
            axis_time(mark.value as i64)
        })
        .y_axis_formatter(move |mark: GridMark, _range: &RangeInclusive<f64>| {
            with_unit(mark.value, unit)
        })
        .y_axis_min_width(56.0)
        .label_formatter(move |pos: &HoverPosition<'_>| match pos {
            HoverPosition::NearDataPoint {
                plot_name,
                position,
                ..
            } => {
                let u = units
                    .iter()
                    .find(|(n, _)| n == plot_name)
                    .map(|(_, u)| *u)
                    .unwrap_or("");
                Some(format!(
                    "{}\n{}: {}",
                    local_time(position.x as i64, now_ms),
                    plot_name,
                    with_unit(position.y, u)
                ))
            }
            HoverPosition::Elsewhere { .. } => None,
        });
    if let Some((lo, hi)) = y_range {
        plot = plot.include_y(lo).include_y(hi);
    } else {
        // From zero, with headroom so the top grid line carries a label.
        let top = series
            .iter()
            .flat_map(|s| s.segments.iter().flatten())
            .map(|p| p[1])
            .fold(0.0_f64, f64::max);
        plot = plot.include_y(0.0).include_y(top * 1.2);
    }
    if series.len() > 1 {
        plot = plot.legend(egui_plot::Legend::default().position(egui_plot::Corner::LeftTop));
    }
    let empty = series.iter().all(Series::is_empty);
    let response = plot.show(ui, |plot_ui| {
        for s in series {
            for seg in &s.segments {
                if seg.len() == 1 || s.markers {
                    plot_ui.points(
                        Points::new(s.name.clone(), PlotPoints::new(seg.clone()))
                            .color(s.color)
                            .radius(3.0),
                    );
                }
                if seg.len() > 1 {
                    plot_ui.line(
                        Line::new(s.name.clone(), PlotPoints::new(seg.clone()))
                            .color(s.color)
                            .width(1.8),
                    );
                }
            }
        }
    });
    if empty {
        ui.painter().text(
            response.response.rect.center(),
            egui::Align2::CENTER_CENTER,
            "no data in this range",
            egui::FontId::proportional(13.0),
            theme::muted(dark),
        );
    }
}

/// A labelled bar per row (name, bar, count and share), largest first.
pub fn bar_list_ui(ui: &mut egui::Ui, rows: &[(String, u64)], color: Color32) {
    let dark = theme::is_dark(ui.ctx());
    let total: u64 = rows.iter().map(|(_, n)| n).sum();
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    if rows.is_empty() {
        ui.label(RichText::new("no entries").color(theme::muted(dark)));
        return;
    }
    egui::Grid::new(ui.next_auto_id())
        .num_columns(3)
        .spacing([10.0, 4.0])
        .show(ui, |ui| {
            for (name, n) in rows {
                ui.label(name);
                let width = 160.0;
                let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 14.0), Sense::hover());
                ui.painter()
                    .rect_filled(rect, 3.0, ui.visuals().extreme_bg_color);
                let filled = egui::Rect::from_min_size(
                    rect.min,
                    Vec2::new(width * (*n as f32 / max as f32), rect.height()),
                );
                ui.painter().rect_filled(filled, 3.0, color);
                let share = if total > 0 {
                    *n as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                ui.label(format!("{} ({:.0}%)", format::group(*n), share));
                ui.end_row();
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(base: f64) -> [f64; 3] {
        value_steps(GridInput {
            bounds: (0.0, 1.0),
            base_step_size: base,
        })
    }

    #[test]
    fn value_steps_climb_one_two_five_and_nest() {
        assert_eq!(steps(0.2), [1.0, 5.0, 10.0]);
        assert_eq!(steps(0.3), [2.0, 10.0, 20.0]);
        assert_eq!(steps(1.0), [5.0, 10.0, 50.0]);
        assert_eq!(steps(2.0), [10.0, 50.0, 100.0]);
    }
}
