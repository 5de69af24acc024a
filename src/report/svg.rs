//! Small inline SVG charts for the HTML report: a line chart with gaps
//! (hit rate, query time) and time-positioned columns (query volume, memory,
//! entries). Plain SVG 1.1 with presentation attributes: no scripts, no
//! styles or fonts from elsewhere, every text escaped, so each `<svg>` block
//! is also a well-formed stand-alone document.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::markup::esc;

/// Width of the drawing in SVG units (it scales to the page width).
pub const WIDTH: f64 = 760.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 50.0;
const FONT: &str =
    "font-family=\"system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif\"";
const AXIS: &str = "#4a5568";
const GRID: &str = "#e2e8f0";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

/// A warm drawn as a marker on the time axis.
#[derive(Debug, Clone, Copy)]
pub struct Marker {
    /// When it happened (ms since the epoch).
    pub t_ms: i64,
    /// Succeeded (green) or not (red).
    pub ok: bool,
}

/// How values on the y axis read.
#[derive(Debug, Clone, Copy)]
pub enum YFormat {
    /// Percent, axis fixed at 0–100.
    Percent,
    /// Milliseconds with decimals as needed.
    Ms,
    /// Megabytes with decimals as needed.
    Mb,
    /// Whole counts with thousands separators.
    Count,
}

/// What every chart shares: the time span and the axis titles.
pub struct Frame<'a> {
    /// Left end of the time axis (ms since the epoch).
    pub from_ms: i64,
    /// Right end of the time axis (ms since the epoch).
    pub to_ms: i64,
    /// Title of the y axis, with its unit, e.g. `Hit rate (%)`.
    pub y_title: &'a str,
    /// How tick labels read.
    pub y_format: YFormat,
    /// Height of the drawing in SVG units.
    pub height: f64,
    /// An accessible description (`<title>`).
    pub description: &'a str,
    /// Warms to mark under the plot.
    pub markers: &'a [Marker],
}

pub use crate::text::thousands;

/// A step of 1, 2, 2.5 or 5 × 10ⁿ that divides `max` into about 4 parts.
fn nice_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 2.5 {
        2.5
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

fn decimals_for(step: f64) -> usize {
    (0..6)
        .find(|d| {
            let scaled = step * 10f64.powi(*d as i32);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(6)
}

fn tick_label(v: f64, step: f64, f: YFormat) -> String {
    match f {
        YFormat::Percent => format!("{v:.0} %"),
        YFormat::Ms => format!("{v:.*} ms", decimals_for(step)),
        YFormat::Mb => format!("{v:.*} MB", decimals_for(step)),
        YFormat::Count => {
            if step >= 1.0 {
                thousands(v.round() as u64)
            } else {
                format!("{v:.*}", decimals_for(step))
            }
        }
    }
}

/// The y axis top and tick step for data up to `max`.
fn y_scale(max: f64, f: YFormat) -> (f64, f64) {
    match f {
        YFormat::Percent => (100.0, 25.0),
        YFormat::Count if max < 4.0 => (4.0, 1.0),
        _ => {
            let step = nice_step(max);
            let top = (max / step).ceil().max(1.0) * step;
            (top, step)
        }
    }
}

/// Candidate x tick steps, smallest first.
const X_STEPS: [i64; 17] = [
    MINUTE,
    2 * MINUTE,
    5 * MINUTE,
    10 * MINUTE,
    15 * MINUTE,
    30 * MINUTE,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    60 * DAY,
];

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

struct Plot<'a> {
    frame: &'a Frame<'a>,
    height: f64,
}

impl Plot<'_> {
    fn plot_w(&self) -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn plot_h(&self) -> f64 {
        self.height - TOP - BOTTOM
    }

    fn x(&self, t: i64) -> f64 {
        let span = (self.frame.to_ms - self.frame.from_ms).max(1) as f64;
        let t = t.clamp(self.frame.from_ms, self.frame.to_ms);
        LEFT + (t - self.frame.from_ms) as f64 / span * self.plot_w()
    }

    fn y(&self, v: f64, top: f64) -> f64 {
        TOP + self.plot_h() - (v / top).clamp(0.0, 1.0) * self.plot_h()
    }

    /// Opening tag, description, background, y grid with labels, both axis
    /// lines and the y title.
    fn y_axis(&self, out: &mut String, top: f64, step: f64) {
        let f = self.frame;
        let (w, h) = (WIDTH, self.height);
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\" {FONT} font-size=\"11\"><title>{}</title>",
            esc(f.description)
        );
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"0\" width=\"{w:.0}\" height=\"{h:.0}\" fill=\"#ffffff\"/>"
        );
        // Horizontal grid and y labels.
        let mut v = 0.0;
        while v <= top + step * 0.001 {
            let y = self.y(v, top);
            let _ = write!(
                out,
                "<line x1=\"{LEFT:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{GRID}\" stroke-width=\"1\"/>",
                LEFT + self.plot_w()
            );
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{AXIS}\">{}</text>",
                LEFT - 6.0,
                y + 3.5,
                esc(&tick_label(v, step, f.y_format))
            );
            v += step;
        }
        // Axis lines.
        let bottom = TOP + self.plot_h();
        let _ = write!(
            out,
            "<line x1=\"{LEFT:.1}\" y1=\"{TOP:.1}\" x2=\"{LEFT:.1}\" y2=\"{bottom:.1}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>\
             <line x1=\"{LEFT:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>",
            LEFT + self.plot_w()
        );
        let cy = TOP + self.plot_h() / 2.0;
        let _ = write!(
            out,
            "<text x=\"14\" y=\"{cy:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\" transform=\"rotate(-90 14 {cy:.1})\">{}</text>",
            esc(f.y_title)
        );
    }

    /// Ticks on round UTC times (at most 7) with labels, and the x title.
    fn time_axis(&self, out: &mut String) {
        let f = self.frame;
        let bottom = TOP + self.plot_h();
        // X ticks: at most 7, on round UTC times.
        let span = (f.to_ms - f.from_ms).max(1);
        let step_ms = X_STEPS
            .iter()
            .copied()
            .find(|s| span / s <= 6)
            .unwrap_or(90 * DAY);
        let mut t = f.from_ms.div_euclid(step_ms) * step_ms;
        if t < f.from_ms {
            t += step_ms;
        }
        let mut last_day = None;
        while t <= f.to_ms {
            let x = self.x(t);
            let d = utc(t);
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>",
                bottom + 4.0
            );
            let (line1, line2) = if step_ms >= DAY {
                (d.format("%b %d").to_string(), None)
            } else {
                let day = d.date_naive();
                let second = (last_day != Some(day)).then(|| d.format("%b %d").to_string());
                last_day = Some(day);
                (d.format("%H:%M").to_string(), second)
            };
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
                bottom + 16.0,
                esc(&line1)
            );
            if let Some(l2) = line2 {
                let _ = write!(
                    out,
                    "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
                    bottom + 28.0,
                    esc(&l2)
                );
            }
            t += step_ms;
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">Time (UTC)</text>",
            LEFT + self.plot_w() / 2.0,
            self.height - 6.0
        );
    }

    /// Warm markers: small triangles on the time axis.
    fn markers(&self, out: &mut String) {
        let bottom = TOP + self.plot_h();
        for m in self.frame.markers {
            if m.t_ms < self.frame.from_ms || m.t_ms > self.frame.to_ms {
                continue;
            }
            let x = self.x(m.t_ms);
            let color = if m.ok { "#2e7d32" } else { "#c62828" };
            let _ = write!(
                out,
                "<path d=\"M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z\" fill=\"{color}\"/>",
                x - 4.5,
                bottom,
                x + 4.5,
                bottom,
                x,
                bottom - 8.0
            );
        }
    }

    fn empty_note(&self, out: &mut String, text: &str) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#718096\" font-size=\"13\">{}</text>",
            LEFT + self.plot_w() / 2.0,
            TOP + self.plot_h() / 2.0,
            esc(text)
        );
    }
}

/// A line over `points` (x: ms since the epoch; `None` is a gap, not a
/// zero). Isolated points are drawn as dots.
pub fn line_chart(
    frame: &Frame,
    points: &[(i64, Option<f64>)],
    color: &str,
    empty: &str,
) -> String {
    let plot = Plot {
        frame,
        height: frame.height,
    };
    let max = points.iter().filter_map(|p| p.1).fold(0.0f64, f64::max);
    let (top, step) = y_scale(max, frame.y_format);
    let mut out = String::new();
    plot.y_axis(&mut out, top, step);
    plot.time_axis(&mut out);
    let values = points.iter().filter(|p| p.1.is_some()).count();
    if values == 0 {
        plot.empty_note(&mut out, empty);
    } else {
        let mut d = String::new();
        let mut dots = Vec::new();
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, d: &mut String, dots: &mut Vec<(f64, f64)>| {
            if run.len() == 1 {
                dots.push(run[0]);
            } else {
                for (i, (x, y)) in run.iter().enumerate() {
                    let _ = write!(d, "{}{x:.1} {y:.1}", if i == 0 { "M" } else { "L" });
                }
            }
            run.clear();
        };
        for (t, v) in points {
            match v {
                Some(v) => run.push((plot.x(*t), plot.y(*v, top))),
                None => flush(&mut run, &mut d, &mut dots),
            }
        }
        flush(&mut run, &mut d, &mut dots);
        if !d.is_empty() {
            let _ = write!(
                out,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>"
            );
        }
        for (x, y) in dots {
            let _ = write!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{color}\"/>"
            );
        }
    }
    plot.markers(&mut out);
    out.push_str("</svg>");
    out
}

/// Columns on the time axis: each `(start, end, value)` fills its span (at
/// least `min_px` wide, centred on it).
pub fn column_chart(
    frame: &Frame,
    columns: &[(i64, i64, f64)],
    color: &str,
    min_px: f64,
    empty: &str,
) -> String {
    let plot = Plot {
        frame,
        height: frame.height,
    };
    let max = columns.iter().map(|c| c.2).fold(0.0f64, f64::max);
    let (top, step) = y_scale(max, frame.y_format);
    let mut out = String::new();
    plot.y_axis(&mut out, top, step);
    plot.time_axis(&mut out);
    if columns.iter().all(|c| c.2 <= 0.0) {
        plot.empty_note(&mut out, empty);
    } else {
        let bottom = TOP + plot.plot_h();
        for &(start, end, v) in columns {
            if v <= 0.0 {
                continue;
            }
            let (x0, x1) = (plot.x(start), plot.x(end));
            let mut width = (x1 - x0 - 0.6).max(min_px);
            let mut x = (x0 + x1) / 2.0 - width / 2.0;
            x = x.max(LEFT);
            width = width.min(LEFT + plot.plot_w() - x);
            let y = plot.y(v, top);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                (bottom - y).max(0.5)
            );
        }
    }
    plot.markers(&mut out);
    out.push_str("</svg>");
    out
}

/// Evenly spaced bars, one per `(time, value)` sample in time order, the
/// times labelled under some of them (memory and entries at each sample).
pub fn bar_chart(frame: &Frame, bars: &[(i64, f64)], color: &str, empty: &str) -> String {
    let plot = Plot {
        frame,
        height: frame.height,
    };
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let (top, step) = y_scale(max, frame.y_format);
    let mut out = String::new();
    plot.y_axis(&mut out, top, step);
    let bottom = TOP + plot.plot_h();
    if bars.is_empty() {
        plot.empty_note(&mut out, empty);
    } else {
        let n = bars.len() as f64;
        let pitch = plot.plot_w() / n;
        let width = (pitch * 0.7).clamp(1.0, 48.0);
        let first = bars[0].0;
        let last = bars[bars.len() - 1].0;
        let format = if last - first < HOUR {
            "%H:%M:%S"
        } else if last - first < 2 * DAY {
            "%H:%M"
        } else {
            "%b %d %H:%M"
        };
        // About one label per 90 units, always the last bar's.
        let every = ((90.0 / pitch).ceil() as usize).max(1);
        let mut last_day = None;
        for (i, &(t, v)) in bars.iter().enumerate() {
            let cx = LEFT + pitch * (i as f64 + 0.5);
            let y = plot.y(v, top);
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{color}\"/>",
                cx - width / 2.0,
                (bottom - y).max(0.5)
            );
            let labelled = (bars.len() - 1 - i).is_multiple_of(every);
            if labelled {
                let d = utc(t);
                let day = d.date_naive();
                let _ = write!(
                    out,
                    "<line x1=\"{cx:.1}\" y1=\"{bottom:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"{AXIS}\" stroke-width=\"1\"/>\
                     <text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
                    bottom + 4.0,
                    bottom + 16.0,
                    esc(&d.format(format).to_string())
                );
                if format != "%b %d %H:%M" && last_day != Some(day) {
                    let _ = write!(
                        out,
                        "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">{}</text>",
                        bottom + 28.0,
                        esc(&d.format("%b %d").to_string())
                    );
                }
                last_day = Some(day);
            }
        }
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{AXIS}\">Sample time (UTC), one bar per sample</text>",
        LEFT + plot.plot_w() / 2.0,
        plot.height - 6.0
    );
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(100.0), 25.0);
        assert_eq!(nice_step(8.0), 2.0);
        assert_eq!(nice_step(0.9), 0.25);
        assert_eq!(y_scale(3.3, YFormat::Ms), (4.0, 1.0));
        assert_eq!(y_scale(73.0, YFormat::Percent), (100.0, 25.0));
        assert_eq!(tick_label(0.5, 0.25, YFormat::Ms), "0.50 ms");
        assert_eq!(tick_label(1.5, 0.5, YFormat::Mb), "1.5 MB");
        assert_eq!(tick_label(12_000.0, 2000.0, YFormat::Count), "12,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }

    #[test]
    fn gaps_break_the_line_and_single_points_are_dots() {
        let frame = Frame {
            from_ms: 0,
            to_ms: 10 * MINUTE,
            y_title: "Hit rate (%) <&>",
            y_format: YFormat::Percent,
            height: 200.0,
            description: "test",
            markers: &[Marker {
                t_ms: 5 * MINUTE,
                ok: false,
            }],
        };
        let pts = [
            (0, Some(50.0)),
            (MINUTE, Some(60.0)),
            (2 * MINUTE, None),
            (3 * MINUTE, Some(70.0)),
            (4 * MINUTE, None),
        ];
        let svg = line_chart(&frame, &pts, "#000", "none");
        assert_eq!(svg.matches("<path d=\"M").count(), 2, "{svg}"); // line + marker
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("Hit rate (%) &lt;&amp;&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let empty = line_chart(&frame, &[(0, None)], "#000", "No queries");
        assert!(empty.contains("No queries"));
    }
}
