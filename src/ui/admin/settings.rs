//! The Settings tab: the profiles of the profile file (add, edit, remove,
//! test a connection) and whether this window runs the schedules.

use eframe::egui;
use egui::RichText;

use super::picker::{NO_DIALOG_HINT, PickKind, Picker};
use super::profile_form::{ProfileForm, SecretForm, SecretMode};
use crate::backend::{
    AdminCommand, AdminEvent, Command, ProfileFileView, ProfileTest, SchedulerState,
    SchedulerStatus,
};
use crate::config::secrets::KeyringState;
use crate::ui::model::Model;
use crate::ui::{format, theme};

/// The Save button's text.
pub const SAVE_LABEL: &str = "Save profile";
/// The Test button's text.
pub const TEST_LABEL: &str = "Test connection";
/// The Add button's text.
pub const ADD_LABEL: &str = "Add profile";
/// The button that asks to remove the profile.
pub const REMOVE_LABEL: &str = "Remove profile…";
/// The button that confirms the removal.
pub const CONFIRM_REMOVE_LABEL: &str = "Remove";

/// What the Settings tab shows and edits.
#[derive(Default)]
pub struct SettingsView {
    /// The profile file as last read by the backend.
    pub file: Option<ProfileFileView>,
    /// The file was asked for (once; Reload asks again).
    requested: bool,
    /// The open editor.
    pub form: Option<ProfileForm>,
    /// After a save: edit this profile as the reloaded file has it.
    reselect: Option<String>,
    /// A save is under way.
    pub saving: bool,
    /// A connection test is under way.
    pub testing: bool,
    /// The last test's answer.
    pub test: Option<ProfileTest>,
    /// Why the last save or removal failed.
    pub error: Option<String>,
    /// Removal asked for this profile; waiting for confirmation.
    pub confirm_remove: Option<String>,
    /// What was typed to confirm removing a production profile.
    remove_typed: String,
    /// The window's scheduler.
    pub scheduler: Option<SchedulerStatus>,
    /// The CA file dialog.
    picker: Picker,
    /// A profile was opened for editing by itself once (the one in use).
    auto_opened: bool,
}

impl SettingsView {
    /// Folds in an answer about profiles or the scheduler.
    pub fn apply(&mut self, ev: AdminEvent) {
        match ev {
            AdminEvent::ProfileFile(view) => {
                let view = *view;
                if let (Some(name), Ok(file)) = (self.reselect.take(), &view.file)
                    && let Some(p) = file.profiles.get(&name)
                {
                    let is_default = file.default_profile.as_deref() == Some(name.as_str());
                    self.form = Some(ProfileForm::edit(&name, p, is_default));
                }
                self.file = Some(view);
            }
            AdminEvent::ProfileSaved { name, result } => {
                self.saving = false;
                match result {
                    Ok(()) => {
                        self.error = None;
                        self.reselect = Some(name);
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            AdminEvent::ProfileRemoved { name, result } => match result {
                Ok(()) => {
                    if self.form.as_ref().and_then(|f| f.original.as_deref()) == Some(&name) {
                        self.form = None;
                    }
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            },
            AdminEvent::ProfileTested(t) => {
                self.testing = false;
                self.test = Some(t);
            }
            AdminEvent::Scheduler(s) => self.scheduler = Some(s),
            _ => {}
        }
    }

    /// Draws the tab.
    pub fn ui(&mut self, ui: &mut egui::Ui, model: &Model, now_ms: i64, cmds: &mut Vec<Command>) {
        let dark = theme::is_dark(ui.ctx());
        if !self.requested {
            self.requested = true;
            cmds.push(Command::Admin(AdminCommand::LoadProfiles));
        }
        if let Some(path) = self.picker.poll()
            && let Some(f) = &mut self.form
        {
            f.tls_ca = path.display().to_string();
        }
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.heading("Connection profiles");
                    if ui.button("Reload").clicked() {
                        cmds.push(Command::Admin(AdminCommand::LoadProfiles));
                    }
                });
                let Some(view) = &self.file else {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Reading the profile file…");
                    });
                    return;
                };
                ui.label(
                    RichText::new(format!("Profile file: {}", view.path)).color(theme::muted(dark)),
                );
                keyring_line(ui, &view.keyring, dark);
                ui.add_space(6.0);
                match &view.file {
                    Err(e) => {
                        ui.add(egui::Label::new(RichText::new(e).color(theme::bad(dark))).wrap());
                        ui.label("Fix the file in an editor, then press Reload. cachedeck does not overwrite a file it cannot read.");
                    }
                    Ok(_) => self.profiles_ui(ui, model, dark, cmds),
                }
                ui.add_space(12.0);
                ui.separator();
                scheduler_ui(ui, self.scheduler.as_ref(), model.server_now(now_ms), dark);
            });
    }

    fn profiles_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        dark: bool,
        cmds: &mut Vec<Command>,
    ) {
        let Some(Ok(file)) = self.file.as_ref().map(|v| &v.file) else {
            return;
        };
        let file = file.clone();
        if self.form.is_none() && !self.auto_opened {
            // Open the profile in use (else the default, else the first).
            self.auto_opened = true;
            let pick = [
                Some(model.profiles.current.as_str()),
                file.default_profile.as_deref(),
            ]
            .into_iter()
            .flatten()
            .find(|n| file.profiles.contains_key(*n))
            .map(str::to_string)
            .or_else(|| file.profiles.keys().next().cloned());
            if let Some(name) = pick {
                let is_default = file.default_profile.as_deref() == Some(name.as_str());
                self.form = Some(ProfileForm::edit(&name, &file.profiles[&name], is_default));
            }
        }
        let keyring_ok = matches!(
            self.file.as_ref().map(|v| &v.keyring),
            Some(KeyringState::Available)
        );
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(220.0);
                if file.profiles.is_empty() {
                    ui.label(RichText::new("No profiles yet.").color(theme::muted(dark)));
                }
                for (name, p) in &file.profiles {
                    let mut text = name.clone();
                    if model.profiles.current == *name {
                        text.push_str("  (in use)");
                    }
                    if file.default_profile.as_deref() == Some(name.as_str()) {
                        text.push_str("  (default)");
                    }
                    let open = self.form.as_ref().and_then(|f| f.original.as_deref()) == Some(name);
                    let mut label = RichText::new(text);
                    if p.production {
                        label = label.color(theme::bad(dark));
                    }
                    if ui.selectable_label(open, label).clicked() && !open {
                        let is_default = file.default_profile.as_deref() == Some(name.as_str());
                        self.form = Some(ProfileForm::edit(name, p, is_default));
                        self.test = None;
                        self.error = None;
                        self.confirm_remove = None;
                    }
                }
                ui.add_space(6.0);
                if ui.button(ADD_LABEL).clicked() {
                    self.form = Some(ProfileForm::new_profile());
                    self.test = None;
                    self.error = None;
                    self.confirm_remove = None;
                }
                ui.add_space(4.0);
                ui.label(RichText::new("Red: production profiles.").color(theme::muted(dark)));
            });
            // A spacer, not a separator: a vertical separator would take
            // the whole height and push the Schedules section away.
            ui.add_space(16.0);
            ui.vertical(|ui| match &mut self.form {
                None => {
                    ui.label(
                        RichText::new("Choose a profile to edit, or add one.")
                            .color(theme::muted(dark)),
                    );
                }
                Some(form) => {
                    let in_use = form.original.as_deref() == Some(model.profiles.current.as_str());
                    form_ui(ui, form, keyring_ok, &mut self.picker, dark);
                    self.actions_ui(ui, in_use, dark, cmds);
                }
            });
        });
    }

    fn actions_ui(&mut self, ui: &mut egui::Ui, in_use: bool, dark: bool, cmds: &mut Vec<Command>) {
        let Some(form) = &self.form else { return };
        let edit = form.to_edit();
        ui.add_space(8.0);
        if let Err(problem) = &edit {
            ui.label(RichText::new(problem).color(theme::warn(dark)));
        }
        ui.horizontal(|ui| {
            let ok = edit.is_ok();
            if ui
                .add_enabled(ok && !self.saving, egui::Button::new(SAVE_LABEL))
                .on_hover_text("Write the profile file; typed passwords go to the OS keyring")
                .clicked()
                && let Ok(e) = &edit
            {
                self.saving = true;
                self.error = None;
                cmds.push(Command::Admin(AdminCommand::SaveProfile(Box::new(
                    e.clone(),
                ))));
            }
            if ui
                .add_enabled(ok && !self.testing, egui::Button::new(TEST_LABEL))
                .on_hover_text(
                    "Connect to Redis and the database with these values, without saving",
                )
                .clicked()
                && let Ok(e) = &edit
            {
                self.testing = true;
                self.test = None;
                cmds.push(Command::Admin(AdminCommand::TestProfile(Box::new(
                    e.clone(),
                ))));
            }
            if let Some(original) = form.original.clone() {
                let button = ui.add_enabled(!in_use, egui::Button::new(REMOVE_LABEL));
                let button = if in_use {
                    button.on_disabled_hover_text("This profile is in use: switch to another first")
                } else {
                    button
                };
                if button.clicked() {
                    self.confirm_remove = Some(original);
                    self.remove_typed.clear();
                }
            }
            if self.saving || self.testing {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            ui.add(egui::Label::new(RichText::new(e).color(theme::bad(dark))).wrap());
        }
        if let Some(t) = &self.test {
            ui.add_space(4.0);
            for (server, result) in [("Redis", &t.redis), ("Database", &t.database)] {
                let (text, color) = match result {
                    Ok(s) => (format!("{server} OK: {s}"), theme::good(dark)),
                    Err(e) => (format!("{server} failed: {e}"), theme::bad(dark)),
                };
                ui.add(egui::Label::new(RichText::new(text).color(color)).wrap());
            }
        }
        self.remove_ui(ui, dark, cmds);
    }

    fn remove_ui(&mut self, ui: &mut egui::Ui, dark: bool, cmds: &mut Vec<Command>) {
        let Some(name) = self.confirm_remove.clone() else {
            return;
        };
        let production = self.form.as_ref().is_some_and(|f| f.base.production);
        ui.add_space(6.0);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.label(RichText::new(format!("Remove profile {name}?")).strong());
            ui.label("It is deleted from the profile file, with its passwords in the OS keyring.");
            if production {
                ui.label(RichText::new("This is a production profile.").color(theme::bad(dark)));
                let prompt = ui.label(format!("Type {name} to confirm:"));
                ui.add(egui::TextEdit::singleline(&mut self.remove_typed).hint_text(name.clone()))
                    .labelled_by(prompt.id);
            }
            let can = !production || self.remove_typed.trim() == name;
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(can, egui::Button::new(CONFIRM_REMOVE_LABEL))
                    .clicked()
                {
                    cmds.push(Command::Admin(AdminCommand::RemoveProfile(name.clone())));
                    self.confirm_remove = None;
                }
                if ui.button("Keep it").clicked() {
                    self.confirm_remove = None;
                }
            });
        });
    }
}

/// Whether passwords can go to the keyring here.
fn keyring_line(ui: &mut egui::Ui, state: &KeyringState, dark: bool) {
    match state {
        KeyringState::Available => {
            ui.label(
                RichText::new("OS keyring: available — typed passwords are stored there.")
                    .color(theme::muted(dark)),
            );
        }
        KeyringState::Unavailable(why) => {
            ui.add(
                egui::Label::new(
                    RichText::new(format!(
                        "OS keyring: {}",
                        why.strip_prefix("configuration: ").unwrap_or(why)
                    ))
                    .color(theme::warn(dark)),
                )
                .wrap(),
            );
        }
    }
}

/// The editor's fields.
fn form_ui(
    ui: &mut egui::Ui,
    f: &mut ProfileForm,
    keyring_ok: bool,
    picker: &mut Picker,
    dark: bool,
) {
    ui.heading(match &f.original {
        Some(n) => format!("Profile {n}"),
        None => "New profile".to_string(),
    });
    egui::Grid::new("profile-grid")
        .num_columns(2)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            let l = ui.label("Name");
            ui.add(egui::TextEdit::singleline(&mut f.name).desired_width(260.0))
                .labelled_by(l.id);
            ui.end_row();
            ui.label("");
            ui.vertical(|ui| {
                ui.checkbox(&mut f.production, "Production profile");
                ui.label(
                    RichText::new("Destructive actions (invalidate, purge) then ask to type the name.")
                        .color(theme::muted(dark)),
                );
                ui.checkbox(&mut f.make_default, "Default profile (used when none is named)");
            });
            ui.end_row();
            let l = ui.label("Redis URLs");
            ui.vertical(|ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut f.redis_urls)
                        .desired_rows(2)
                        .desired_width(420.0)
                        .hint_text("redis://host:6379 — one per line; several are cluster seed nodes"),
                )
                .labelled_by(l.id);
                ui.label(
                    RichText::new("One URL: standalone, unless the server reports cluster mode. rediss:// for TLS.")
                        .color(theme::muted(dark)),
                );
            });
            ui.end_row();
            let l = ui.label("ACL user");
            ui.add(
                egui::TextEdit::singleline(&mut f.username)
                    .desired_width(260.0)
                    .hint_text("default"),
            )
            .labelled_by(l.id);
            ui.end_row();
            ui.label("Redis password");
            secret_ui(ui, "redis-secret", &mut f.redis_secret, keyring_ok, dark);
            ui.end_row();
            let l = ui.label("TLS CA file");
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut f.tls_ca)
                            .desired_width(340.0)
                            .hint_text("PEM file of a private CA (rediss:// only)"),
                    )
                    .labelled_by(l.id);
                    if ui
                        .add_enabled(!picker.is_open(), egui::Button::new("Browse…"))
                        .clicked()
                    {
                        picker.open(
                            ui.ctx(),
                            PickKind::Open {
                                title: "CA certificate (PEM)".into(),
                                filter: Some((
                                    "PEM certificates".into(),
                                    vec!["pem".into(), "crt".into(), "cer".into()],
                                )),
                            },
                        );
                    }
                });
                if picker.gave_nothing {
                    ui.label(RichText::new(NO_DIALOG_HINT).color(theme::muted(dark)));
                }
            });
            ui.end_row();
            let l = ui.label("Database URL");
            ui.vertical(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut f.database_url)
                        .desired_width(420.0)
                        .hint_text("postgres://user@host/db — empty: local SQLite store"),
                )
                .labelled_by(l.id);
            });
            ui.end_row();
            ui.label("Database password");
            secret_ui(ui, "db-secret", &mut f.db_secret, keyring_ok, dark);
            ui.end_row();
        });
}

/// One password's source and value.
fn secret_ui(ui: &mut egui::Ui, id: &str, s: &mut SecretForm, keyring_ok: bool, dark: bool) {
    ui.push_id(id, |ui| {
        ui.vertical(|ui| {
            ui.horizontal_wrapped(|ui| {
                if s.current.is_some() {
                    let label = s.current_label();
                    ui.radio_value(&mut s.mode, SecretMode::Keep, label);
                }
                ui.radio_value(&mut s.mode, SecretMode::None, "none");
                ui.add_enabled_ui(keyring_ok, |ui| {
                    ui.radio_value(&mut s.mode, SecretMode::Keyring, "OS keyring")
                        .on_disabled_hover_text("No OS keyring here: use an environment variable");
                });
                ui.radio_value(&mut s.mode, SecretMode::Env, "environment variable");
            });
            match s.mode {
                SecretMode::Keyring => {
                    let l = ui.label(
                        RichText::new("Password (stored in the OS keyring, never in the file)")
                            .color(theme::muted(dark)),
                    );
                    ui.add(
                        egui::TextEdit::singleline(&mut s.typed)
                            .password(true)
                            .desired_width(260.0),
                    )
                    .labelled_by(l.id);
                }
                SecretMode::Env => {
                    let l = ui.label(
                        RichText::new("Variable name (the file keeps only the name)")
                            .color(theme::muted(dark)),
                    );
                    ui.add(egui::TextEdit::singleline(&mut s.env).desired_width(260.0))
                        .labelled_by(l.id);
                }
                SecretMode::Keep | SecretMode::None => {}
            }
        });
    });
}

/// "In 4 min" from a duration in ms.
fn until(ms: i64) -> String {
    if ms <= 0 {
        "due now".into()
    } else {
        format!("in {}", format::duration_ms(ms as u64))
    }
}

/// Leader or not, and the next runs.
fn scheduler_ui(ui: &mut egui::Ui, s: Option<&SchedulerStatus>, server_now: i64, dark: bool) {
    ui.heading("Schedules");
    let Some(s) = s else {
        ui.label(RichText::new("The scheduler has not reported yet.").color(theme::muted(dark)));
        return;
    };
    match &s.state {
        SchedulerState::Stopped(why) => {
            ui.label(
                RichText::new(format!("This window runs no schedules: {why}"))
                    .color(theme::warn(dark)),
            );
        }
        SchedulerState::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Starting the scheduler…");
            });
        }
        SchedulerState::Running {
            instance_id,
            leader,
        } => {
            let (text, color) = if *leader {
                (
                    "This window is the schedule leader: it fires the runs.",
                    theme::good(dark),
                )
            } else {
                (
                    "Another instance (an agent or a window) leads; this window takes over if it stops.",
                    theme::muted(dark),
                )
            };
            ui.label(RichText::new(text).color(color))
                .on_hover_text(format!("instance {instance_id}"));
        }
    }
    if s.next_runs.is_empty() {
        if matches!(s.state, SchedulerState::Running { .. }) {
            ui.label(
                RichText::new("No schedules (add one with `cachedeck schedule add`).")
                    .color(theme::muted(dark)),
            );
        }
        return;
    }
    egui::Grid::new("next-runs")
        .striped(true)
        .num_columns(5)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            ui.strong("Schedule");
            ui.strong("Warms");
            ui.strong("Cron");
            ui.strong("Next run");
            ui.strong("");
            ui.end_row();
            for r in &s.next_runs {
                ui.label(format!("#{}", r.schedule_id));
                ui.label(&r.target);
                ui.label(format!("{} ({})", r.cron, r.tz));
                match (&r.problem, r.enabled, r.next_ms) {
                    (Some(p), _, _) => {
                        ui.label(RichText::new(p).color(theme::bad(dark)));
                    }
                    (None, false, _) => {
                        ui.label(RichText::new("disabled").color(theme::muted(dark)));
                    }
                    (None, true, Some(ms)) => {
                        ui.label(r.next_local.clone().unwrap_or_default());
                        ui.label(until(ms - server_now));
                    }
                    (None, true, None) => {
                        ui.label("never");
                    }
                }
                ui.end_row();
            }
        });
}
