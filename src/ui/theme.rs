//! Colours and text styles. Dark and light both follow the system; health
//! colours keep their meaning in both (green good, amber ageing, red cold).

use eframe::egui;
use egui::{Color32, FontFamily, FontId, TextStyle, Theme};

use crate::metrics::types::{Health, Overall};

/// Applies cachedeck's look on top of egui's dark and light styles. The
/// theme preference starts as "follow the system"; the top bar can force
/// light or dark, and egui keeps that choice with the window state.
pub fn install(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        style.text_styles.insert(
            TextStyle::Heading,
            FontId::new(20.0, FontFamily::Proportional),
        );
        style
            .text_styles
            .insert(TextStyle::Body, FontId::new(14.0, FontFamily::Proportional));
        style.text_styles.insert(
            TextStyle::Button,
            FontId::new(14.0, FontFamily::Proportional),
        );
        style.text_styles.insert(
            TextStyle::Small,
            FontId::new(11.5, FontFamily::Proportional),
        );
        style.text_styles.insert(
            TextStyle::Monospace,
            FontId::new(13.0, FontFamily::Monospace),
        );
        style.spacing.item_spacing = egui::vec2(8.0, 6.0);
        style.spacing.button_padding = egui::vec2(8.0, 4.0);
        style.spacing.interact_size.y = 24.0;
    });
}

/// Whether the dark style is in use.
pub fn is_dark(ctx: &egui::Context) -> bool {
    ctx.theme() == Theme::Dark
}

/// Green for a healthy state.
pub fn good(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgb(76, 196, 120)
    } else {
        Color32::from_rgb(30, 140, 70)
    }
}

/// Amber for degraded or stale.
pub fn warn(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgb(240, 180, 60)
    } else {
        Color32::from_rgb(190, 120, 0)
    }
}

/// Red for cold or failed.
pub fn bad(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgb(240, 100, 95)
    } else {
        Color32::from_rgb(200, 45, 40)
    }
}

/// Blue accent for running work.
pub fn accent(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgb(95, 160, 250)
    } else {
        Color32::from_rgb(30, 100, 210)
    }
}

/// Secondary text (captions, units).
pub fn muted(dark: bool) -> Color32 {
    if dark {
        Color32::from_gray(150)
    } else {
        Color32::from_gray(105)
    }
}

/// The colour of a datasource's health.
pub fn health_color(h: Health, dark: bool) -> Color32 {
    match h {
        Health::Excellent | Health::Good => good(dark),
        Health::Degraded | Health::Stale => warn(dark),
        Health::Cold => bad(dark),
    }
}

/// The word shown for a health label.
pub fn health_label(h: Health) -> &'static str {
    match h {
        Health::Excellent => "Excellent",
        Health::Good => "Good",
        Health::Degraded => "Degraded",
        Health::Stale => "Stale",
        Health::Cold => "Cold",
    }
}

/// The colour of the overall health verdict.
pub fn overall_color(o: Overall, dark: bool) -> Color32 {
    match o {
        Overall::Excellent | Overall::Good => good(dark),
        Overall::Degraded => warn(dark),
        Overall::Critical => bad(dark),
    }
}

/// The word shown for the overall verdict.
pub fn overall_label(o: Overall) -> &'static str {
    match o {
        Overall::Excellent => "Excellent",
        Overall::Good => "Good",
        Overall::Degraded => "Degraded",
        Overall::Critical => "Critical",
    }
}

/// Card background, a step off the panel background.
pub fn card_fill(dark: bool) -> Color32 {
    if dark {
        Color32::from_gray(32)
    } else {
        Color32::from_gray(250)
    }
}

/// Card border.
pub fn card_stroke(dark: bool) -> Color32 {
    if dark {
        Color32::from_gray(60)
    } else {
        Color32::from_gray(210)
    }
}
