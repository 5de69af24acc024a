//! Notifications: each notice or error is shown once, in the bottom-right
//! corner, and fades out. Errors stay longer and can be dismissed.

use eframe::egui;
use egui::{Align2, RichText};

use crate::ui::theme;

/// How long a notice stays, in ms.
const NOTICE_MS: i64 = 6_000;
/// How long an error stays, in ms.
const ERROR_MS: i64 = 12_000;
/// The fade at the end of a toast's life, in ms.
const FADE_MS: i64 = 1_000;
/// Toasts shown at once (older ones go first).
const MAX_SHOWN: usize = 5;

/// What kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    /// Something finished or changed.
    Notice,
    /// Something failed.
    Error,
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    /// Notice or error.
    pub kind: ToastKind,
    /// One line (wrapped when long).
    pub text: String,
    /// When it appeared (window clock, ms).
    pub at_ms: i64,
    /// How many times the same message came while shown.
    pub count: u32,
}

impl Toast {
    fn lifetime(&self) -> i64 {
        match self.kind {
            ToastKind::Notice => NOTICE_MS,
            ToastKind::Error => ERROR_MS,
        }
    }
}

/// The notifications on screen.
#[derive(Debug, Default)]
pub struct Toasts {
    /// Oldest first.
    items: Vec<Toast>,
}

impl Toasts {
    /// Adds a message; the same text while still shown bumps its count instead.
    pub fn push(&mut self, kind: ToastKind, text: impl Into<String>, now_ms: i64) {
        // Whatever produced it, a toast never shows a password.
        let text = crate::redact::redact(&text.into());
        if let Some(t) = self
            .items
            .iter_mut()
            .find(|t| t.kind == kind && t.text == text)
        {
            t.count += 1;
            t.at_ms = now_ms;
            return;
        }
        self.items.push(Toast {
            kind,
            text,
            at_ms: now_ms,
            count: 1,
        });
        if self.items.len() > MAX_SHOWN {
            self.items.remove(0);
        }
    }

    /// The messages on screen, oldest first.
    pub fn items(&self) -> &[Toast] {
        &self.items
    }

    /// Draws the toasts and drops expired ones.
    pub fn toasts_ui(&mut self, ctx: &egui::Context, now_ms: i64) {
        self.items.retain(|t| now_ms - t.at_ms < t.lifetime());
        if self.items.is_empty() {
            return;
        }
        let dark = theme::is_dark(ctx);
        let mut dismissed = None;
        let mut next_change = i64::MAX;
        egui::Area::new(egui::Id::unique("cachedeck-toasts"))
            .anchor(Align2::RIGHT_BOTTOM, egui::vec2(-16.0, -16.0))
            .order(egui::Order::Tooltip)
            .interactable(true)
            .show(ctx, |ui| {
                ui.set_max_width(420.0);
                for (i, t) in self.items.iter().enumerate().rev() {
                    let left = t.lifetime() - (now_ms - t.at_ms);
                    let alpha = (left as f32 / FADE_MS as f32).clamp(0.0, 1.0);
                    next_change = next_change.min(if left > FADE_MS { left - FADE_MS } else { 33 });
                    let accent = match t.kind {
                        ToastKind::Notice => theme::good(dark),
                        ToastKind::Error => theme::bad(dark),
                    };
                    let fill = ui.visuals().window_fill();
                    egui::Frame::new()
                        .fill(fill.gamma_multiply(alpha))
                        .stroke(egui::Stroke::new(1.5, accent.gamma_multiply(alpha)))
                        .corner_radius(6.0)
                        .inner_margin(egui::Margin::symmetric(12, 8))
                        .show(ui, |ui| {
                            ui.set_width(400.0);
                            ui.horizontal(|ui| {
                                let word = match t.kind {
                                    ToastKind::Notice => "Done",
                                    ToastKind::Error => "Error",
                                };
                                ui.label(
                                    RichText::new(word)
                                        .strong()
                                        .color(accent.gamma_multiply(alpha)),
                                );
                                let mut text = t.text.clone();
                                if t.count > 1 {
                                    text.push_str(&format!(" (×{})", t.count));
                                }
                                let color = ui.visuals().text_color().gamma_multiply(alpha);
                                ui.add(egui::Label::new(RichText::new(text).color(color)).wrap());
                                if t.kind == ToastKind::Error
                                    && ui.small_button("×").on_hover_text("Dismiss").clicked()
                                {
                                    dismissed = Some(i);
                                }
                            });
                        });
                    ui.add_space(6.0);
                }
            });
        if let Some(i) = dismissed {
            self.items.remove(i);
        }
        if next_change < i64::MAX {
            ctx.request_repaint_after(std::time::Duration::from_millis(next_change.max(16) as u64));
        }
    }
}
