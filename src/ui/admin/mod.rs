//! The Settings tab (connection profiles, the window's scheduler), the
//! Audit tab (filters, export) and the report Export dialog, with their own
//! view state.
//!
//! - `settings` + `profile_form`: profiles of the profile file
//! - `audit`: the audit log table
//! - `export`: the report Export dialog
//! - `picker`: native file dialogs off the UI thread

pub mod audit;
pub mod export;
pub mod picker;
pub mod profile_form;
pub mod settings;

use eframe::egui;
use serde::{Deserialize, Serialize};

use crate::backend::{AdminEvent, Command};
use crate::ui::model::Model;
use audit::{AuditFilters, AuditView};
use export::{DialogOutcome, ExportChoices, ExportDialog, export_dialog_ui};
use picker::Picker;
use settings::SettingsView;

/// The administration views' settings kept between runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminPersisted {
    /// The Audit tab's filters and export choices.
    pub audit: AuditFilters,
    /// The report Export dialog's last choices.
    pub export: ExportChoices,
}

/// What the Settings and Audit tabs and the Export dialog show.
#[derive(Default)]
pub struct AdminView {
    /// The Settings tab.
    pub settings: SettingsView,
    /// The Audit tab.
    pub audit: AuditView,
    /// The open Export dialog.
    pub export: Option<ExportDialog>,
    /// Numbers report exports.
    next_export: u64,
    /// The Export dialog's file dialog.
    export_picker: Picker,
}

impl AdminView {
    /// Folds in one answer from the backend.
    pub fn apply(&mut self, ev: AdminEvent, _now_ms: i64) {
        match ev {
            AdminEvent::ProfileFile(_)
            | AdminEvent::ProfileSaved { .. }
            | AdminEvent::ProfileRemoved { .. }
            | AdminEvent::ProfileTested(_)
            | AdminEvent::Scheduler(_) => self.settings.apply(ev),
            AdminEvent::AuditRows { .. }
            | AdminEvent::AuditFailed { .. }
            | AdminEvent::AuditExported { .. } => self.audit.apply(ev),
            AdminEvent::ReportProgress { .. } | AdminEvent::ReportDone { .. } => {
                if let Some(d) = &mut self.export {
                    d.apply(&ev);
                }
            }
        }
    }

    /// Opens the report Export dialog (a running export's dialog is shown
    /// again instead).
    pub fn open_export(&mut self, model: &Model, saved: &AdminPersisted) {
        if let Some(d) = &mut self.export
            && matches!(d.state, export::ExportState::Running { .. })
        {
            d.visible = true;
            return;
        }
        self.export = Some(ExportDialog::new(model, &saved.export));
    }

    /// Draws the Audit tab.
    pub fn audit_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        saved: &mut AdminPersisted,
        now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        self.audit.ui(ui, model, &mut saved.audit, now_ms, cmds);
    }

    /// Draws the Settings tab.
    pub fn settings_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Model,
        now_ms: i64,
        cmds: &mut Vec<Command>,
    ) {
        self.settings.ui(ui, model, now_ms, cmds);
    }

    /// Draws the administration dialogs (Export), whatever tab is open.
    pub fn dialogs_ui(
        &mut self,
        ctx: &egui::Context,
        model: &Model,
        saved: &mut AdminPersisted,
        cmds: &mut Vec<Command>,
    ) {
        let Some(d) = &mut self.export else { return };
        let outcome = export_dialog_ui(
            ctx,
            d,
            model,
            &mut saved.export,
            &mut self.export_picker,
            &mut self.next_export,
            cmds,
        );
        if matches!(outcome, DialogOutcome::Closed) {
            self.export = None;
        }
    }
}
