//! The Warming tab: jobs running now (by any instance) with progress and
//! controls, the queue, and the history.

use eframe::egui;
use egui::RichText;

use crate::backend::Command;
use crate::jobs::{JobSnapshot, JobState};
use crate::ui::clock::{ago, local_time, parse_iso_ms};
use crate::ui::model::Model;
use crate::ui::theme;
use crate::ui::widgets::history::history_ui;
use crate::ui::widgets::progress;

/// Draws the tab; commands go to `cmds`.
pub fn warming_ui(ui: &mut egui::Ui, model: &Model, now_ms: i64, cmds: &mut Vec<Command>) {
    let dark = theme::is_dark(ui.ctx());
    let server_now = model.server_now(now_ms);
    let running = model.running_jobs();
    let queued = model.queued_jobs();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(format!("Active jobs ({})", running.len()));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui
                        .add_enabled(
                            model.connected(),
                            egui::Button::new(RichText::new("Warm All").strong()),
                        )
                        .on_hover_text(
                            "Warm every enabled datasource (recently warmed ones are skipped)",
                        )
                        .clicked()
                    {
                        cmds.push(Command::WarmAll { force: false });
                    }
                });
            });
            if !model.connection.redis.is_up() {
                ui.label(
                    RichText::new("Redis is not connected: live jobs are unknown.")
                        .color(theme::warn(dark)),
                );
            } else if running.is_empty() {
                ui.label(RichText::new("No warm is running.").color(theme::muted(dark)));
            }
            for job in &running {
                active_job_ui(ui, job, server_now, model.connected(), cmds);
            }
            ui.add_space(10.0);
            ui.heading(format!("Queued ({})", queued.len()));
            if queued.is_empty() {
                ui.label(
                    RichText::new("Nothing is waiting for a warm slot.").color(theme::muted(dark)),
                );
            }
            for job in &queued {
                queued_job_ui(ui, job, server_now, model.connected(), cmds);
            }
            ui.add_space(10.0);
            workers_ui(ui, model, server_now);
            ui.add_space(10.0);
            ui.heading("History");
            history_ui(
                ui,
                "warming-history",
                &model.recent,
                server_now,
                now_ms,
                true,
            );
        });
}

/// Who started a job, from where, and when.
fn started_text(job: &JobSnapshot, server_now: i64) -> String {
    let when = job
        .started_at
        .as_deref()
        .or(Some(job.queued_at.as_str()))
        .and_then(parse_iso_ms)
        .map(|t| ago(server_now - t))
        .unwrap_or_else(|| "—".into());
    let verb = if job.started_at.is_some() {
        "started"
    } else {
        "queued"
    };
    format!("{verb} {when} by {} ({})", job.owner, job.origin)
}

/// Why a stale job is shown as such, and what happens to it.
fn stale_text(job: &JobSnapshot, server_now: i64) -> String {
    let last = job
        .last_heartbeat
        .as_deref()
        .and_then(parse_iso_ms)
        .map(|ms| format!("{} ({})", local_time(ms, server_now), ago(server_now - ms)))
        .unwrap_or_else(|| "never".into());
    format!(
        "Stale: last heartbeat {last}. The instance running it stopped; it is marked failed and cleaned up once its warm lock's lease runs out."
    )
}

fn active_job_ui(
    ui: &mut egui::Ui,
    job: &JobSnapshot,
    server_now: i64,
    connected: bool,
    cmds: &mut Vec<Command>,
) {
    let dark = theme::is_dark(ui.ctx());
    egui::Frame::group(ui.style())
        .inner_margin(10.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label(RichText::new(&job.datasource_name).strong().size(15.0));
                ui.label(
                    RichText::new(format!("#{}", job.datasource_id)).color(theme::muted(dark)),
                );
                ui.label(
                    RichText::new(progress::state_label(job.state))
                        .color(progress::state_color(job.state, dark))
                        .strong(),
                );
                if job.forced {
                    ui.label(RichText::new("forced").small().color(theme::muted(dark)));
                }
                // A stale job's process is gone: nobody would obey a control.
                let controllable = job.state != JobState::Stale;
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    ui.add_enabled_ui(connected && controllable, |ui| {
                        if !controllable {
                            return;
                        }
                        if ui
                            .button("Cancel")
                            .on_hover_text("Stop; the live cache stays as it is")
                            .clicked()
                        {
                            cmds.push(Command::Cancel {
                                job_id: job.job_id.clone(),
                            });
                        }
                        match job.state {
                            JobState::Paused if ui.button("Resume").clicked() => {
                                cmds.push(Command::Resume {
                                    job_id: job.job_id.clone(),
                                });
                            }
                            JobState::Running
                                if ui
                                    .button("Pause")
                                    .on_hover_text("Stop reading; keeps the lock")
                                    .clicked() =>
                            {
                                cmds.push(Command::Pause {
                                    job_id: job.job_id.clone(),
                                });
                            }
                            _ => {}
                        }
                    });
                });
            });
            progress::progress_bar_ui(ui, job, ui.available_width());
            let mut parts: Vec<String> = Vec::new();
            if job.rows_total.is_some() || job.rows_processed > 0 {
                parts.push(progress::rows_text(job));
                let speed = progress::speed_text(job);
                if !speed.is_empty() {
                    parts.push(speed);
                }
            }
            parts.push(started_text(job, server_now));
            ui.label(parts.join(" • "));
            if let Some(reason) = job
                .pause_reason
                .as_ref()
                .filter(|_| job.state != JobState::Stale)
            {
                let text = if reason.to_lowercase().starts_with("paused") {
                    let mut c = reason.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                } else {
                    format!("Paused: {reason}")
                };
                ui.label(RichText::new(text).color(theme::warn(dark)));
            }
            if job.state == JobState::Stale {
                ui.label(RichText::new(stale_text(job, server_now)).color(theme::bad(dark)));
            }
        });
    if matches!(job.state, JobState::Running | JobState::Swapping) {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    }
}

fn queued_job_ui(
    ui: &mut egui::Ui,
    job: &JobSnapshot,
    server_now: i64,
    connected: bool,
    cmds: &mut Vec<Command>,
) {
    let dark = theme::is_dark(ui.ctx());
    ui.horizontal(|ui| {
        ui.label(RichText::new(&job.datasource_name).strong());
        ui.label(RichText::new(format!("#{}", job.datasource_id)).color(theme::muted(dark)));
        ui.label(started_text(job, server_now));
        if let Some(ms) = job.estimated_duration_ms {
            ui.label(
                RichText::new(format!("estimated {}", estimate_text(ms))).color(theme::muted(dark)),
            );
        }
        if job.state == JobState::Stale {
            ui.label(RichText::new(stale_text(job, server_now)).color(theme::bad(dark)));
        } else if ui
            .add_enabled(connected, egui::Button::new("Cancel"))
            .clicked()
        {
            cmds.push(Command::Cancel {
                job_id: job.job_id.clone(),
            });
        }
    });
}

/// `2m 5s` for an estimate in milliseconds.
fn estimate_text(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(ms.div_ceil(1000))).to_string()
}

/// The workers (agents) that run queued jobs, as of the last refresh.
fn workers_ui(ui: &mut egui::Ui, model: &Model, server_now: i64) {
    let dark = theme::is_dark(ui.ctx());
    ui.heading(format!("Workers ({})", model.workers.len()));
    if model.workers.is_empty() {
        ui.label(
            RichText::new(
                "No worker is alive: warms run in this window and stop when it closes. Start one with `cachedeck agent`.",
            )
            .color(theme::muted(dark)),
        );
        return;
    }
    for w in &model.workers {
        ui.horizontal(|ui| {
            ui.label(RichText::new(&w.instance).strong());
            ui.label(
                RichText::new(format!("on {} (v{})", w.host, w.version)).color(theme::muted(dark)),
            );
            if w.leader {
                ui.label(RichText::new("leader").color(theme::good(dark)));
            }
            ui.label(if w.running_jobs.is_empty() {
                "idle".to_string()
            } else {
                format!("running {}", w.running_jobs.join(", "))
            });
            if let Some(t) = parse_iso_ms(&w.last_heartbeat) {
                ui.label(
                    RichText::new(format!("heartbeat {}", ago(server_now - t)))
                        .color(theme::muted(dark)),
                );
            }
        });
    }
}
