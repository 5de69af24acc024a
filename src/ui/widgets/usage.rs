//! The Details tab's "Reads (sampled)" section: how a datasource's entries
//! are read, from a sample of their access clocks (`OBJECT IDLETIME` or
//! `OBJECT FREQ`), labelled as a sample with its size.

use eframe::egui;
use egui::RichText;

use crate::metrics::{GroupUsage, ReadUsage, UsageClock};
use crate::ui::{format, theme};

/// "Charges (40.0% in 1 h, 100.0% in 24 h)" or "Charges (mean LFU
/// counter 7.0)".
fn group_text(g: &GroupUsage) -> String {
    match (g.read_last_day, g.mean_frequency) {
        (Some(d), _) => format!(
            "{} ({} in 1 h, {} in 24 h)",
            g.value,
            format::percent(g.read_last_hour.unwrap_or(0.0)),
            format::percent(d)
        ),
        (None, Some(f)) => format!("{} (mean LFU counter {f:.1})", g.value),
        _ => g.value.clone(),
    }
}

fn list(gs: &[GroupUsage]) -> String {
    if gs.is_empty() {
        return "—".into();
    }
    gs.iter().map(group_text).collect::<Vec<_>>().join(", ")
}

/// Draws the section; `usage` is `None` until the first sample is in.
/// `server_now_ms` ages the sample.
pub fn read_usage_ui(ui: &mut egui::Ui, usage: Option<&ReadUsage>, server_now_ms: i64) {
    let dark = theme::is_dark(ui.ctx());
    let muted = theme::muted(dark);
    ui.heading("Reads (sampled)");
    let Some(u) = usage else {
        ui.label(RichText::new("Sampling how the entries are read…").color(muted));
        return;
    };
    let clock = match u.clock {
        UsageClock::IdleTime => "OBJECT IDLETIME",
        UsageClock::LfuFrequency => "OBJECT FREQ (LFU)",
    };
    let policy = u
        .policy
        .as_deref()
        .map(|p| format!(", maxmemory-policy {p}"))
        .unwrap_or_default();
    ui.label(
        RichText::new(format!(
            "Sample of {} of {} entries • {clock}{policy} • sampled {}",
            format::group(u.sample_size),
            format::group(u.total_entries),
            crate::ui::clock::ago(server_now_ms - u.sampled_at_ms)
        ))
        .color(muted),
    );
    if let (Some(h), Some(d)) = (u.read_last_hour, u.read_last_day) {
        ui.label(format!(
            "Read in the last hour: {} • in the last day: {} • not read for a day: {}",
            format::percent(h),
            format::percent(d),
            format::percent(u.cold_share)
        ));
    } else {
        ui.label(format!(
            "LFU counter 0 (not read lately): {}",
            format::percent(u.cold_share)
        ));
    }
    let color = if u.cold_share > 0.0 {
        theme::warn(dark)
    } else {
        theme::good(dark)
    };
    ui.label(RichText::new(u.cold_sentence()).color(color));
    // One wrapping line per key component: long practice lists must not
    // widen the tab.
    for (what, h, c) in [
        ("Measures", &u.hottest.measures, &u.coldest.measures),
        ("Practices", &u.hottest.practices, &u.coldest.practices),
        (
            "Frequencies",
            &u.hottest.frequencies,
            &u.coldest.frequencies,
        ),
    ] {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("{what}:")).strong());
            ui.label(format!("hottest {}", list(h)));
            ui.label(RichText::new("•").color(muted));
            ui.label(format!("coldest {}", list(c)));
        });
    }
    for n in &u.notes {
        ui.label(RichText::new(n).small().color(muted));
    }
}
