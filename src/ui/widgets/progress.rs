//! How a warm job's progress reads: the bar, rows, speed and time left.

use eframe::egui;
use egui::RichText;

use crate::jobs::{JobSnapshot, JobState};
use crate::ui::{format, theme};

/// The state as a word.
pub fn state_label(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "Queued",
        JobState::Running => "Running",
        JobState::Paused => "Paused",
        JobState::Swapping => "Swapping",
        JobState::Succeeded => "Succeeded",
        JobState::Failed => "Failed",
        JobState::Cancelled => "Cancelled",
        JobState::Skipped => "Skipped",
        JobState::Stale => "Stale",
    }
}

/// Colour of a state.
pub fn state_color(state: JobState, dark: bool) -> egui::Color32 {
    match state {
        JobState::Running | JobState::Swapping => theme::accent(dark),
        JobState::Paused | JobState::Queued => theme::warn(dark),
        JobState::Succeeded | JobState::Skipped => theme::good(dark),
        JobState::Failed | JobState::Cancelled | JobState::Stale => theme::bad(dark),
    }
}

/// The bar, labelled with its percent ("45%") and the phase when not plain running.
pub fn progress_bar_ui(ui: &mut egui::Ui, snap: &JobSnapshot, width: f32) -> egui::Response {
    let dark = theme::is_dark(ui.ctx());
    let fraction = (snap.progress / 100.0).clamp(0.0, 1.0) as f32;
    let percent = snap.progress.clamp(0.0, 100.0).floor() as u32;
    let text = match snap.state {
        JobState::Queued => "waiting for a free warm slot".to_string(),
        JobState::Running if snap.rows_total.is_none() => "counting rows…".to_string(),
        JobState::Running => format!("{percent}%"),
        JobState::Paused => format!("{percent}% • paused"),
        JobState::Swapping => format!("{percent}% • swapping in"),
        JobState::Stale => format!("{percent}% • stale: no heartbeat"),
        s => state_label(s).to_string(),
    };
    ui.add(
        egui::ProgressBar::new(fraction)
            .desired_width(width)
            .fill(state_color(snap.state, dark).gamma_multiply(0.85))
            .text(RichText::new(text).strong()),
    )
}

/// "27,000 / 60,000 rows" (or "27,000 rows" before the count is known).
pub fn rows_text(snap: &JobSnapshot) -> String {
    match snap.rows_total {
        Some(t) => format!(
            "{} / {} rows",
            format::group(snap.rows_processed),
            format::group(t)
        ),
        None => format!("{} rows", format::group(snap.rows_processed)),
    }
}

/// "8,500 rows/s • ETA 4.0 s" while running; empty otherwise.
pub fn speed_text(snap: &JobSnapshot) -> String {
    if snap.state != JobState::Running {
        return String::new();
    }
    let mut s = format!(
        "{} rows/s",
        format::group(snap.rows_per_second.max(0.0).round() as u64)
    );
    if let Some(eta) = snap.eta_ms {
        s.push_str(&format!(" • ETA {}", format::duration_ms(eta)));
    }
    s
}
