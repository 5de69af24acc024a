//! The eframe app: drains backend events at the top of each frame (within a
//! time budget), draws the top bar, the open tab, dialogs and notifications,
//! and sends the frame's commands at its end. It never waits on the network.

use eframe::egui;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, RichText};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::admin::AdminView;
use super::clock::Clock;
use super::dialogs::Outcome;
use super::dialogs::configure::{ConfigureDialog, ConfigureRequest, configure_dialog_ui};
use super::dialogs::invalidate::{InvalidateDialog, invalidate_dialog_ui};
use super::model::{Model, Validation};
use super::state::{Persisted, STORAGE_KEY};
use super::tabs::{self, Intent, Tab};
use super::tools::ToolsView;
use super::widgets::toasts::{ToastKind, Toasts};
use super::{theme, top_bar};
use crate::backend::{Command, Event};

/// Longest time a frame spends folding in events; the rest waits for the
/// next frame so the window stays responsive under a flood of progress.
pub const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// The button that starts a stopped backend again.
pub const RESTART_LABEL: &str = "Restart";

/// What the window says when the backend's queue itself is gone (no
/// Restart can reach it).
const GONE: &str = "the backend has stopped and cannot be restarted from here; restart cachedeck";

/// The two ends of the channel pair to the backend.
pub struct BackendLink {
    /// Commands to the backend.
    pub commands: UnboundedSender<Command>,
    /// Events from the backend.
    pub events: UnboundedReceiver<Event>,
}

/// How the app is set up.
pub struct AppConfig {
    /// The clock relative times are computed from (manual in tests).
    pub clock: Clock,
    /// Running `cachedeck demo` (shows a DEMO chip, no profile switching).
    pub demo: bool,
}

/// The window.
pub struct CacheDeckApp {
    /// Channel pair to the backend.
    link: BackendLink,
    /// "Now" for relative times, countdowns and fading.
    clock: Clock,
    /// Running the demo.
    demo: bool,
    /// What the backend has told us.
    model: Model,
    /// View settings, persisted.
    view: Persisted,
    /// Notifications on screen.
    toasts: Toasts,
    /// The open invalidation confirmation.
    invalidate: Option<InvalidateDialog>,
    /// The open datasource editor.
    configure: Option<ConfigureDialog>,
    /// The Keys and Redis tabs.
    tools: ToolsView,
    /// The Settings and Audit tabs and the Export dialog.
    admin: AdminView,
    /// `stats_at_ms` of the stats that last triggered a details reload, so
    /// the open Details tab follows the periodic refresh.
    details_refreshed_at: i64,
}

impl CacheDeckApp {
    /// Builds the app: restores the view, installs the theme.
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        link: BackendLink,
        config: AppConfig,
    ) -> CacheDeckApp {
        theme::install(&cc.egui_ctx);
        let view = cc
            .storage
            .and_then(|s| eframe::get_value::<Persisted>(s, STORAGE_KEY))
            .unwrap_or_default();
        cc.egui_ctx.set_theme(view.theme.preference());
        CacheDeckApp {
            link,
            clock: config.clock,
            demo: config.demo,
            model: Model::default(),
            view,
            toasts: Toasts::default(),
            invalidate: None,
            configure: None,
            tools: ToolsView::default(),
            admin: AdminView::default(),
            details_refreshed_at: 0,
        }
    }

    /// What the backend has told the window (tests read it).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The view settings (tests read them).
    pub fn view(&self) -> &Persisted {
        &self.view
    }

    /// The notifications on screen (tests read them).
    pub fn toasts(&self) -> &Toasts {
        &self.toasts
    }

    /// Folds in waiting events until none is left or the budget is spent.
    fn drain_events(&mut self, ctx: &egui::Context) {
        let started = Instant::now();
        while started.elapsed() < EVENT_BUDGET {
            match self.link.events.try_recv() {
                Ok(ev) => self.on_event(ev),
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => {
                    self.model.stopped.get_or_insert_with(|| GONE.to_string());
                    return;
                }
            }
        }
        // Budget spent with events left: come back next frame.
        ctx.request_repaint();
    }

    fn on_event(&mut self, ev: Event) {
        let now = self.clock.now_ms();
        match ev {
            Event::Latest(slot) => {
                if let Some(snapshot) = slot.take() {
                    self.on_event(snapshot);
                }
            }
            Event::Notice(text) => self.toasts.push(ToastKind::Notice, text, now),
            Event::Error(text) => {
                if let Some(d) = &mut self.configure
                    && d.saving
                {
                    d.saving = false;
                    d.error = Some(text.clone());
                }
                self.toasts.push(ToastKind::Error, text, now);
            }
            Event::Tools(e) => self.tools.apply(e, now),
            Event::Admin(e) => self.admin.apply(e, now),
            other => self.model.apply(other, now),
        }
        if let (Some(saved), Some(d)) = (self.model.saved.take(), &self.configure)
            && d.saving
            && d.ds_id() == Some(saved)
        {
            self.configure = None;
        }
    }

    /// F5 / Ctrl+R refresh; Ctrl+1…8 switch tabs.
    fn shortcuts(&mut self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        let keys = [
            Key::Num1,
            Key::Num2,
            Key::Num3,
            Key::Num4,
            Key::Num5,
            Key::Num6,
            Key::Num7,
            Key::Num8,
        ];
        ctx.input_mut(|i| {
            if i.consume_key(Modifiers::NONE, Key::F5) || i.consume_key(Modifiers::COMMAND, Key::R)
            {
                cmds.push(Command::Refresh);
            }
            for (key, tab) in keys.iter().zip(Tab::ALL) {
                if i.consume_key(Modifiers::COMMAND, *key) {
                    self.view.tab = tab;
                }
            }
        });
    }

    fn central_ui(
        &mut self,
        ui: &mut egui::Ui,
        now: i64,
        cmds: &mut Vec<Command>,
        intents: &mut Vec<Intent>,
    ) {
        let dark = theme::is_dark(ui.ctx());
        if let Some(why) = &self.model.stopped {
            stopped_ui(ui, why, dark, cmds);
            return;
        }
        if let Some(step) = &self.model.setup {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new(step).strong());
            });
            ui.add_space(6.0);
        }
        let needs_cache_data = matches!(
            self.view.tab,
            Tab::Cache | Tab::Warming | Tab::Details | Tab::Health
        );
        if needs_cache_data
            && self.model.stats.is_none()
            && let Some(problem) = self.model.blocking_problem()
        {
            ui.add_space(24.0);
            ui.vertical_centered(|ui| {
                ui.heading("cachedeck cannot reach its servers");
                ui.add_space(6.0);
                ui.add(egui::Label::new(RichText::new(&problem).color(theme::bad(dark))).wrap());
                ui.add_space(6.0);
                ui.label(
                    RichText::new(
                        "Configure a profile (see README: Profiles), pass --redis-url / --database-url, or try `cachedeck demo`.",
                    )
                    .color(theme::muted(dark)),
                );
                ui.add_space(6.0);
                ui.horizontal(|ui| {
                    if ui.button("Reconnect").clicked() {
                        cmds.push(Command::Reconnect);
                    }
                    if ui.button("Open Settings").clicked() {
                        self.view.tab = Tab::Settings;
                    }
                });
            });
            return;
        }
        match self.view.tab {
            Tab::Cache => {
                tabs::dashboard::dashboard_ui(ui, &self.model, &mut self.view, now, cmds, intents)
            }
            Tab::Warming => tabs::warming::warming_ui(ui, &self.model, now, cmds),
            Tab::Details => {
                tabs::details::details_ui(ui, &self.model, &mut self.view, now, cmds, intents)
            }
            Tab::Health => tabs::health::health_ui(ui, &self.model, intents),
            Tab::Keys => self
                .tools
                .keys_ui(ui, &self.model, &mut self.view.tools, now, cmds),
            Tab::Server => self.tools.server_ui(ui, &self.model, now, cmds),
            Tab::Audit => self
                .admin
                .audit_ui(ui, &self.model, &mut self.view.admin, now, cmds),
            Tab::Settings => self.admin.settings_ui(ui, &self.model, now, cmds),
        }
    }

    fn on_intents(&mut self, intents: Vec<Intent>) {
        for intent in intents {
            match intent {
                Intent::ConfirmInvalidate(ds) => {
                    if let Some(m) = self.model.metrics(ds) {
                        self.invalidate =
                            Some(InvalidateDialog::new(m, self.model.profiles.production));
                    }
                }
                Intent::Configure(ds) => {
                    if let Some(d) = self.model.datasources.get(&ds) {
                        self.configure = Some(ConfigureDialog::edit(d));
                    } else {
                        self.toasts.push(
                            ToastKind::Error,
                            format!("datasource {ds} is not in the registry any more"),
                            self.clock.now_ms(),
                        );
                    }
                }
                Intent::AddDatasource => {
                    let next = self.model.datasources.keys().max().copied().unwrap_or(0) + 1;
                    let d = crate::config::Defaults::default();
                    self.configure = Some(ConfigureDialog::new_datasource(
                        next,
                        &d.stale_after,
                        &d.ttl,
                    ));
                }
                Intent::Register(ds) => {
                    let d = crate::config::Defaults::default();
                    self.configure =
                        Some(ConfigureDialog::new_datasource(ds, &d.stale_after, &d.ttl));
                }
                Intent::ShowDetails(ds) => {
                    self.view.details_ds = Some(ds);
                    self.view.tab = Tab::Details;
                }
                Intent::ExportReport => self.admin.open_export(&self.model, &self.view.admin),
            }
        }
    }

    fn dialogs_ui(&mut self, ctx: &egui::Context, now: i64, cmds: &mut Vec<Command>) {
        self.tools.dialogs_ui(ctx, &self.model, now, cmds);
        self.admin
            .dialogs_ui(ctx, &self.model, &mut self.view.admin, cmds);
        if let Some(d) = &mut self.invalidate {
            match invalidate_dialog_ui(ctx, d) {
                Outcome::Open => {}
                Outcome::Cancelled => self.invalidate = None,
                Outcome::Confirmed(ds) => {
                    cmds.push(Command::Invalidate { ds });
                    self.invalidate = None;
                }
            }
        }
        if let Some(d) = &mut self.configure {
            let ds = d.ds_id().unwrap_or(0);
            match configure_dialog_ui(ctx, d, self.model.validations.get(&ds)) {
                Outcome::Open => {}
                Outcome::Cancelled => self.configure = None,
                Outcome::Confirmed(ConfigureRequest::Validate {
                    sql,
                    source_url,
                    source_password,
                }) => {
                    self.model
                        .validations
                        .insert(ds, Validation::Pending { sql: sql.clone() });
                    cmds.push(Command::ValidateSql {
                        ds,
                        sql,
                        source_url,
                        source_password,
                    });
                }
                Outcome::Confirmed(ConfigureRequest::Save(input)) => {
                    cmds.push(Command::SaveDatasource(input))
                }
            }
        }
    }

    /// Keeps the Details tab loaded: asks when the shown datasource or range
    /// changes, and again after each stats refresh.
    fn keep_details_loaded(&mut self, cmds: &mut Vec<Command>) {
        if self.view.tab != Tab::Details
            || !self.model.connected()
            || self.model.details_pending.is_some()
        {
            return;
        }
        let Some(ds) = tabs::details::current_ds(&self.model, &self.view) else {
            return;
        };
        let range = self.view.range;
        let have = self
            .model
            .details
            .as_ref()
            .is_some_and(|d| d.ds == ds && d.range == range);
        let stale = self.model.stats_at_ms > self.details_refreshed_at;
        let invalidated = self.model.invalidated.take() == Some(ds);
        if !have || stale || invalidated {
            self.details_refreshed_at = self.model.stats_at_ms;
            cmds.push(Command::LoadDetails { ds, range });
        }
    }

    /// Sends the frame's commands, noting the ones the model tracks.
    fn send(&mut self, cmds: Vec<Command>) {
        for cmd in cmds {
            if let Command::LoadDetails { ds, range } = &cmd {
                self.model.details_pending = Some((*ds, *range));
            }
            if self.link.commands.send(cmd).is_err() {
                self.model.stopped.get_or_insert_with(|| GONE.to_string());
            }
        }
    }
}

/// The whole central panel while the backend is stopped: why, and Restart.
fn stopped_ui(ui: &mut egui::Ui, why: &str, dark: bool, cmds: &mut Vec<Command>) {
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading("cachedeck's backend has stopped");
        ui.add_space(6.0);
        ui.add(egui::Label::new(RichText::new(why).color(theme::bad(dark))).wrap());
        ui.add_space(6.0);
        ui.label(
            RichText::new("Nothing is refreshed or run until it starts again.")
                .color(theme::muted(dark)),
        );
        ui.add_space(6.0);
        if ui.button(RESTART_LABEL).clicked() {
            cmds.push(Command::Restart);
        }
    });
}

impl eframe::App for CacheDeckApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.drain_events(&ctx);
        let now = self.clock.now_ms();
        let mut cmds: Vec<Command> = Vec::new();
        let mut intents: Vec<Intent> = Vec::new();
        self.shortcuts(&ctx, &mut cmds);
        egui::Panel::top("top-bar").show(ui, |ui| {
            top_bar::top_bar_ui(ui, &self.model, &mut self.view, now, self.demo, &mut cmds);
        });
        egui::CentralPanel::default().show(ui, |ui| {
            self.central_ui(ui, now, &mut cmds, &mut intents);
        });
        self.on_intents(intents);
        self.dialogs_ui(&ctx, now, &mut cmds);
        self.keep_details_loaded(&mut cmds);
        self.toasts.toasts_ui(&ctx, now);
        self.send(cmds);
        // Relative times and countdowns move on even without events.
        ctx.request_repaint_after(Duration::from_secs(1));
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.view);
    }
}
