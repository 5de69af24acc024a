//! The window's administration requests: connection profiles (Settings),
//! the audit log, report export, and the schedules this window runs.
//!
//! - `profiles`: read, save, remove and test profiles (file I/O and the
//!   keyring run on blocking threads; the file is re-read before each change
//!   and a malformed one is never overwritten).
//! - `audit`: bounded pages of the audit log and its export.
//! - `export`: the cache-efficiency report export and "Open folder".
//! - `schedules`: the window's scheduler, running while both links are up.

mod audit;
mod export;
mod profiles;
pub(super) mod protocol;
mod schedules;

pub use protocol::{AdminCommand, AdminEvent};

use std::collections::HashMap;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{Backend, Event, Internal, ProfileInfo, Startup};
use crate::config::{Overrides, Resolved};
use crate::error::Error;

/// What the backend keeps for administration between commands.
#[derive(Default)]
pub(super) struct AdminState {
    /// The profile file to use instead of the OS config dir's (tests).
    profile_file: Option<PathBuf>,
    /// The scheduler running for the current links, if any.
    scheduler: Option<RunningScheduler>,
    /// Why the scheduler is stopped, as last told to the window (sent once).
    stopped_reason: Option<String>,
    /// Report exports under way, so they can be cancelled.
    reports: HashMap<u64, CancellationToken>,
}

/// The scheduler task of one set of links.
struct RunningScheduler {
    /// The profile generation it runs for.
    generation: u64,
    /// Stops it: it cancels the warms it fired, waits for them, resigns.
    stop: CancellationToken,
}

/// What administration tasks report back to the backend loop.
pub(super) enum AdminInternal {
    /// The profile file changed.
    ProfilesChanged {
        /// Its profile names now.
        names: Vec<String>,
        /// The profile in use was edited: connect with its new values.
        reconnect: Option<Box<Result<Resolved, Error>>>,
    },
    /// A report export ended (its cancel token can go).
    ReportEnded(u64),
}

impl Backend {
    /// Runs one administration request.
    pub(super) fn run_admin(&mut self, cmd: AdminCommand) {
        match cmd {
            AdminCommand::LoadProfiles => {
                let path = self.profile_file();
                let emit = self.emit.clone();
                self.tasks.spawn(profiles::send_file(emit, path));
            }
            AdminCommand::SaveProfile(edit) => {
                let path = self.profile_file();
                let in_use = self.in_use_name();
                self.tasks.spawn(profiles::save(
                    self.emit.clone(),
                    self.internal_tx.clone(),
                    path,
                    *edit,
                    in_use,
                ));
            }
            AdminCommand::RemoveProfile(name) => {
                if self.in_use_name().as_deref() == Some(name.as_str()) {
                    let reason = format!(
                        "cannot remove profile {name}: it is in use; switch to another profile first"
                    );
                    self.emit.error(reason.clone());
                    self.emit.send(Event::Admin(AdminEvent::ProfileRemoved {
                        name,
                        result: Err(reason),
                    }));
                    return;
                }
                let path = self.profile_file();
                self.tasks.spawn(profiles::remove(
                    self.emit.clone(),
                    self.internal_tx.clone(),
                    path,
                    name,
                ));
            }
            AdminCommand::TestProfile(edit) => {
                self.tasks.spawn(profiles::test(self.emit.clone(), *edit));
            }
            AdminCommand::QueryAudit(q) => match self.store.conn.clone() {
                Some(store) => {
                    self.tasks.spawn(audit::query(self.emit.clone(), store, q));
                }
                None => {
                    let message = "cannot read the audit log: the database is not connected (see the status bar)".to_string();
                    self.emit.send(Event::Admin(AdminEvent::AuditFailed {
                        seq: q.seq,
                        message: message.clone(),
                    }));
                    self.emit.error(message);
                }
            },
            AdminCommand::ExportAudit {
                query,
                format,
                path,
            } => match self.store.conn.clone() {
                Some(store) => {
                    self.tasks
                        .spawn(audit::export(self.emit.clone(), store, query, format, path));
                }
                None => {
                    let message = "cannot export the audit log: the database is not connected (see the status bar)".to_string();
                    self.emit.send(Event::Admin(AdminEvent::AuditExported {
                        path,
                        result: Err(message.clone()),
                    }));
                    self.emit.error(message);
                }
            },
            AdminCommand::ExportReport {
                id,
                request,
                format,
                path,
            } => {
                let (redis, store) = match (self.redis.conn.clone(), self.store.conn.clone()) {
                    (Some(r), Some(s)) => (r, s),
                    _ => {
                        let message = "cannot export the report: Redis and the database must both be connected (see the status bar)".to_string();
                        self.emit.send(Event::Admin(AdminEvent::ReportDone {
                            id,
                            result: Err(message.clone()),
                        }));
                        self.emit.error(message);
                        return;
                    }
                };
                let cancel = self.shutdown.child_token();
                self.admin.reports.insert(id, cancel.clone());
                self.tasks.spawn(export::report(
                    export::ReportJob {
                        id,
                        request,
                        format,
                        path,
                    },
                    redis,
                    store,
                    self.emit.clone(),
                    self.internal_tx.clone(),
                    cancel,
                ));
            }
            AdminCommand::CancelReport(id) => {
                if let Some(token) = self.admin.reports.remove(&id) {
                    token.cancel();
                }
            }
            AdminCommand::OpenFolder(path) => {
                self.tasks
                    .spawn(export::open_folder(self.emit.clone(), path));
            }
            AdminCommand::UseProfileFile(path) => self.admin.profile_file = Some(path),
        }
    }

    /// Called whenever a connection comes up or goes down and on every
    /// profile switch (so the window's scheduler follows the links): starts
    /// the scheduler when both links are up, stops it when one drops or the
    /// profile changes.
    pub(super) fn on_links_changed(&mut self) {
        let up = self.resolved.is_some() && self.redis.conn.is_some() && self.store.conn.is_some();
        if up
            && self
                .admin
                .scheduler
                .as_ref()
                .is_some_and(|s| s.generation == self.generation)
        {
            return;
        }
        if let Some(old) = self.admin.scheduler.take() {
            old.stop.cancel();
        }
        if !up {
            let reason = if self.resolved.is_none() {
                "no profile is in use".to_string()
            } else {
                "waiting for Redis and the database to be connected".to_string()
            };
            if self.admin.stopped_reason.as_ref() != Some(&reason) {
                self.admin.stopped_reason = Some(reason.clone());
                schedules::send_stopped(&self.emit, reason);
            }
            return;
        }
        let ctx = match self.context("run schedules") {
            Ok(c) => c,
            Err(reason) => {
                schedules::send_stopped(&self.emit, reason);
                return;
            }
        };
        self.admin.stopped_reason = None;
        let stop = self.shutdown.child_token();
        self.admin.scheduler = Some(RunningScheduler {
            generation: self.generation,
            stop: stop.clone(),
        });
        self.tasks.spawn(schedules::run(ctx, stop));
    }

    /// Folds in what an administration task reported.
    pub(super) fn on_admin_internal(&mut self, msg: AdminInternal) {
        match msg {
            AdminInternal::ProfilesChanged { names, reconnect } => {
                if self.demo.is_none() {
                    self.profile_names = names;
                }
                match reconnect {
                    Some(resolved) if self.demo.is_none() => {
                        if let Ok(r) = resolved.as_ref() {
                            self.startup = Startup::Profile(Overrides {
                                profile: Some(r.name.clone()),
                                ..Overrides::default()
                            });
                        }
                        self.use_profile(*resolved);
                    }
                    _ => self.send_profiles(),
                }
            }
            AdminInternal::ReportEnded(id) => {
                self.admin.reports.remove(&id);
            }
        }
    }

    /// The profile file in use.
    fn profile_file(&self) -> Result<PathBuf, String> {
        match &self.admin.profile_file {
            Some(p) => Ok(p.clone()),
            None => crate::config::config_path().map_err(|e| e.to_string()),
        }
    }

    /// The name of the profile in use, when it came from the profile file
    /// (the demo's profile is not in it).
    fn in_use_name(&self) -> Option<String> {
        if self.demo.is_some() {
            return None;
        }
        self.resolved.as_ref().map(|r| r.name.clone())
    }

    /// Tells the window the profile names (after a change of the file that
    /// needs no reconnection).
    fn send_profiles(&self) {
        let d = crate::config::Defaults::default();
        let info = match &self.resolved {
            Some(r) => ProfileInfo {
                names: self.profile_names.clone(),
                current: r.name.clone(),
                production: r.production,
                refresh_interval_secs: r.defaults.refresh_interval_secs.max(1),
                warnings: crate::redis_conn::security_warnings(&r.redis),
            },
            None => ProfileInfo {
                names: self.profile_names.clone(),
                current: String::new(),
                production: false,
                refresh_interval_secs: d.refresh_interval_secs,
                warnings: Vec::new(),
            },
        };
        self.emit.send(Event::Profiles(info));
    }
}

/// Sends an administration event.
fn send(emit: &super::Emitter, ev: AdminEvent) {
    emit.send(Event::Admin(ev));
}

/// Reports a lost server to the backend loop (it reconnects with backoff).
fn note_lost(internal: &tokio::sync::mpsc::UnboundedSender<Internal>, generation: u64, e: &Error) {
    if let Some(which) = super::links::broken(e) {
        let _ = internal.send(Internal::LinkLost {
            generation,
            which,
            reason: e.to_string(),
        });
    }
}
