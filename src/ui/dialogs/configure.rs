//! The datasource editor: name, source query (checked by the backend with
//! Validate), source database, stale-after, TTL, statement timeout and
//! enabled.

use eframe::egui;
use egui::RichText;

use super::Outcome;
use crate::config::parse_duration;
use crate::keys::DsId;
use crate::source::password;
use crate::store::{Datasource, DatasourceInput};
use crate::ui::model::Validation;
use crate::ui::{format, theme};

/// The label of the source password field (tests find it by this).
pub const SOURCE_PASSWORD_LABEL: &str = "Source password";

/// What the dialog can ask the backend.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigureRequest {
    /// Check this query (against this source, `None`: the profile's database).
    Validate {
        /// The query.
        sql: String,
        /// Its database.
        source_url: Option<String>,
        /// Its password reference.
        source_password: Option<String>,
    },
    /// Save the datasource.
    Save(DatasourceInput),
}

/// An open editor.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigureDialog {
    /// True when adding a datasource (the id is editable).
    pub is_new: bool,
    /// Id text (editable only when new).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Source database URL; empty means the profile's database. Shown with
    /// any password redacted (one stored before passwords were refused must
    /// be moved to a reference before the datasource can be saved).
    pub source_url: String,
    /// Where the source's password comes from: empty (none), `profile`,
    /// `env:VAR` or `keyring:NAME`.
    pub source_password: String,
    /// The source query.
    pub sql: String,
    /// Stale-after, e.g. "4h".
    pub stale_after: String,
    /// Entry lifetime, e.g. "48h".
    pub ttl: String,
    /// How long one source query may run, e.g. "10m".
    pub statement_timeout: String,
    /// Warmed by Warm All and schedules.
    pub enabled: bool,
    /// Waiting for the backend to confirm a save.
    pub saving: bool,
    /// Why the last save failed (shown in the dialog).
    pub error: Option<String>,
}

impl ConfigureDialog {
    /// An editor on an existing datasource.
    pub fn edit(d: &Datasource) -> ConfigureDialog {
        ConfigureDialog {
            is_new: false,
            id: d.id.to_string(),
            name: d.name.clone(),
            source_url: d
                .source_url
                .as_deref()
                .map(crate::redact::redact)
                .unwrap_or_default(),
            source_password: d.source_password.clone().unwrap_or_default(),
            sql: d.sql.clone(),
            stale_after: format::span_input(d.stale_after_secs),
            ttl: format::span_input(d.ttl_secs),
            statement_timeout: format::span_input(d.statement_timeout_secs),
            enabled: d.enabled,
            saving: false,
            error: None,
        }
    }

    /// An editor for a new datasource with the profile's defaults.
    pub fn new_datasource(next_id: DsId, stale_after: &str, ttl: &str) -> ConfigureDialog {
        ConfigureDialog {
            is_new: true,
            id: next_id.to_string(),
            name: String::new(),
            source_url: String::new(),
            source_password: String::new(),
            sql: String::new(),
            stale_after: stale_after.to_string(),
            ttl: ttl.to_string(),
            statement_timeout: format::span_input(crate::store::DEFAULT_STATEMENT_TIMEOUT_SECS),
            enabled: true,
            saving: false,
            error: None,
        }
    }

    /// The id typed, if it is a positive number.
    pub fn ds_id(&self) -> Option<DsId> {
        self.id.trim().parse::<DsId>().ok().filter(|id| *id > 0)
    }

    fn source(&self) -> Option<String> {
        let s = self.source_url.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    fn source_password(&self) -> Option<String> {
        let s = self.source_password.trim();
        (!s.is_empty() && !s.eq_ignore_ascii_case("none")).then(|| s.to_string())
    }

    /// The input to save, or the first problem with the fields.
    pub fn input(&self) -> Result<DatasourceInput, String> {
        let id = self.ds_id().ok_or("the id must be a positive number")?;
        if self.name.trim().is_empty() {
            return Err("give the datasource a name".into());
        }
        if self.sql.trim().is_empty() {
            return Err("enter the source query".into());
        }
        let stale = parse_duration(&self.stale_after).map_err(|e| format!("stale after: {e}"))?;
        let ttl = parse_duration(&self.ttl).map_err(|e| format!("TTL: {e}"))?;
        if stale.as_secs() == 0 || ttl.as_secs() == 0 {
            return Err("stale-after and TTL must be longer than 0".into());
        }
        let timeout = parse_duration(&self.statement_timeout)
            .map_err(|e| format!("statement timeout: {e}"))?;
        if !(1..=24 * 3600).contains(&timeout.as_secs()) {
            return Err("the statement timeout is between 1s and 24h".into());
        }
        if let Some(url) = self.source() {
            password::check_source_url(&url).map_err(|_| {
                "the source URL carries a password, which cachedeck will not store: remove it from the URL and say where it is in Source password (profile, env:VAR or keyring:NAME)".to_string()
            })?;
        }
        if let Some(reference) = self.source_password() {
            reference
                .parse::<password::SourcePassword>()
                .map_err(|e| format!("source password: {e}"))?;
        }
        Ok(DatasourceInput {
            id,
            name: self.name.trim().to_string(),
            source_url: self.source(),
            source_password: self.source_password(),
            sql: self.sql.trim().to_string(),
            stale_after_secs: stale.as_secs() as i64,
            ttl_secs: ttl.as_secs() as i64,
            enabled: self.enabled,
            statement_timeout_secs: timeout.as_secs() as i64,
        })
    }
}

/// Draws the editor. `validation` is the backend's latest check of this
/// datasource's query.
pub fn configure_dialog_ui(
    ctx: &egui::Context,
    d: &mut ConfigureDialog,
    validation: Option<&Validation>,
) -> Outcome<ConfigureRequest> {
    let dark = theme::is_dark(ctx);
    let mut outcome = Outcome::Open;
    let modal = egui::Modal::new(egui::Id::unique("configure-dialog")).show(ctx, |ui| {
        ui.set_width(560.0_f32.min(ctx.content_rect().width() - 60.0));
        ui.heading(if d.is_new {
            "Add datasource".to_string()
        } else {
            format!("Configure {} (#{})", d.name, d.id)
        });
        ui.add_space(6.0);
        egui::Grid::new("configure-grid")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                let l = ui.label("Id");
                ui.add_enabled(
                    d.is_new,
                    egui::TextEdit::singleline(&mut d.id).desired_width(120.0),
                )
                .labelled_by(l.id);
                ui.end_row();
                ui.label("Name");
                ui.add(egui::TextEdit::singleline(&mut d.name).desired_width(f32::INFINITY));
                ui.end_row();
                let l = ui.label("Source database");
                ui.add(
                    egui::TextEdit::singleline(&mut d.source_url)
                        .hint_text("the profile's database (no password in the URL)")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(l.id);
                ui.end_row();
                let l = ui.label(SOURCE_PASSWORD_LABEL);
                ui.add(
                    egui::TextEdit::singleline(&mut d.source_password)
                        .hint_text("empty (none), profile, env:VAR or keyring:NAME")
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(l.id);
                ui.end_row();
                ui.label("Stale after");
                ui.add(
                    egui::TextEdit::singleline(&mut d.stale_after)
                        .hint_text("4h")
                        .desired_width(120.0),
                );
                ui.end_row();
                ui.label("TTL");
                ui.add(
                    egui::TextEdit::singleline(&mut d.ttl)
                        .hint_text("48h")
                        .desired_width(120.0),
                );
                ui.end_row();
                ui.label("Statement timeout")
                    .on_hover_text("How long one query on the source may run (it runs read-only)");
                ui.add(
                    egui::TextEdit::singleline(&mut d.statement_timeout)
                        .hint_text("10m")
                        .desired_width(120.0),
                );
                ui.end_row();
                ui.label("Enabled");
                ui.checkbox(&mut d.enabled, "warmed by Warm All and schedules");
                ui.end_row();
            });
        ui.add_space(6.0);
        ui.label("Source query (returns measure, practice_uid, provider_uid, frequency, …)");
        egui::ScrollArea::vertical()
            .max_height(160.0)
            .show(ui, |ui| {
                ui.add(
                    egui::TextEdit::multiline(&mut d.sql)
                        .code_editor()
                        .desired_rows(5)
                        .desired_width(f32::INFINITY),
                );
            });
        ui.horizontal(|ui| {
            let pending = matches!(validation, Some(Validation::Pending { sql }) if *sql == d.sql);
            if ui
                .add_enabled(
                    !pending && !d.sql.trim().is_empty(),
                    egui::Button::new("Validate"),
                )
                .clicked()
            {
                outcome = Outcome::Confirmed(ConfigureRequest::Validate {
                    sql: d.sql.clone(),
                    source_url: d.source(),
                    source_password: d.source_password(),
                });
            }
            match validation {
                Some(v) if v.sql() != d.sql => {
                    ui.label(
                        RichText::new("query changed since the last check")
                            .color(theme::muted(dark)),
                    );
                }
                Some(Validation::Pending { .. }) => {
                    ui.spinner();
                    ui.label("checking…");
                }
                Some(Validation::Valid { columns, .. }) => {
                    ui.label(
                        RichText::new(format!("Valid. Columns: {}", columns.join(", ")))
                            .color(theme::good(dark)),
                    );
                }
                Some(Validation::Invalid { message, .. }) => {
                    ui.add(
                        egui::Label::new(
                            RichText::new(format!("Invalid: {message}")).color(theme::bad(dark)),
                        )
                        .wrap(),
                    );
                }
                None => {}
            }
        });
        let input = d.input();
        if let Err(problem) = &input {
            ui.label(RichText::new(problem).color(theme::warn(dark)));
        }
        if let Some(e) = &d.error {
            ui.add(egui::Label::new(RichText::new(e).color(theme::bad(dark))).wrap());
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            let save = ui.add_enabled(
                input.is_ok() && !d.saving,
                egui::Button::new(RichText::new("Save").strong()),
            );
            if save.clicked()
                && let Ok(i) = input
            {
                d.saving = true;
                d.error = None;
                outcome = Outcome::Confirmed(ConfigureRequest::Save(i));
            }
            if d.saving {
                ui.spinner();
            }
            if ui.button("Cancel").clicked() {
                outcome = Outcome::Cancelled;
            }
        });
    });
    if modal.should_close() && outcome == Outcome::Open {
        outcome = Outcome::Cancelled;
    }
    outcome
}
