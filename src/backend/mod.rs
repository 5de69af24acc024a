//! The window's backend: one tokio task that owns the Redis and store
//! connections, takes [`Command`]s from the window and sends [`Event`]s back.
//!
//! - Nothing here depends on egui: the window passes a repaint callback.
//! - Stats, health, jobs and the registry are refreshed every
//!   `defaults.refresh_interval_secs` (a refresh never overlaps itself).
//! - A lost Redis or database shows as `Reconnecting { next_retry_in }` and is
//!   retried with exponential backoff; commands keep being answered meanwhile.
//! - Warm jobs started from the window run here (`jobs::submit` +
//!   `jobs::run_job`, origin `gui`); jobs of other instances appear through
//!   `jobs::active` and can be paused or cancelled through their control field.

mod admin;
mod details;
mod emit;
mod links;
mod ops;
mod protocol;
mod supervise;
mod tools;

pub use admin::protocol::{
    AdminCommand, AdminEvent, AuditCursor, AuditFormat, AuditQuery, NextRun, ProfileEdit,
    ProfileFileView, ProfileTest, SchedulerState, SchedulerStatus, Secret, SecretInput,
};
pub use details::{BREAKDOWN_MAX_KEYS, breakdown};
pub use emit::{Emitter, JobSlot, LatestSlot, PROGRESS_INTERVAL, Repaint, SnapshotKind};
pub use links::{BACKOFF_MAX, BACKOFF_START, backoff};
pub use protocol::{
    Breakdown, Command, ConnectionStatus, DatasourceDetails, Event, LinkState, ProfileInfo,
    TrendRange,
};
pub use tools::{
    BROWSE_PACE, BrowseRequest, BrowsedKey, KeysPage, PatternWrite, ToolsCommand, ToolsEvent,
    WriteProgress,
};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::actor::{Actor, Origin};
use crate::config::{ConfigFile, Overrides, Resolved, config_path, secrets};
use crate::demo_env::DemoEnv;
use crate::error::Error;
use crate::redis_conn::Redis;
use crate::store::Store;
use links::{Broken, Link};

/// Where the backend gets its profile from.
#[derive(Debug, Clone)]
pub enum Startup {
    /// The profile file, with command-line and environment overrides.
    Profile(Overrides),
    /// A ready profile (tests, embedding).
    Resolved(Box<Resolved>),
    /// Start the local demo first (own redis-server, SQLite data), then use it.
    Demo,
}

/// The window's handle on a running backend.
pub struct BackendHandle {
    /// Where the window sends commands.
    pub commands: UnboundedSender<Command>,
    /// The backend task, awaited on shutdown.
    task: tokio::task::JoinHandle<()>,
}

impl BackendHandle {
    /// Asks the backend to stop and waits for it (its jobs clean up their
    /// shadow keys first), at most `within`.
    pub async fn shutdown(self, within: Duration) {
        let _ = self.commands.send(Command::Shutdown);
        if tokio::time::timeout(within, self.task).await.is_err() {
            tracing::warn!("the backend did not stop within {within:?}");
        }
    }
}

/// Starts the backend on `runtime`. Returns its handle and the queue of
/// events the window drains each frame.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    startup: Startup,
    repaint: Repaint,
) -> (BackendHandle, UnboundedReceiver<Event>) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let emit = Emitter::new(ev_tx, repaint);
    let run: Box<supervise::Run> = Box::new(|startup, emit, commands| {
        Box::pin(async move { Backend::new(startup, emit).run(commands).await })
    });
    let task = runtime.spawn(supervise::supervise(startup, emit, cmd_rx, run));
    (
        BackendHandle {
            commands: cmd_tx,
            task,
        },
        ev_rx,
    )
}

/// What spawned tasks report back to the backend loop.
enum Internal {
    /// A connection attempt ended (ignored when `generation` is old).
    RedisConnected {
        /// The profile generation the attempt was made for.
        generation: u64,
        /// The handle, or why not.
        result: Result<Box<Redis>, Error>,
    },
    /// A store connection attempt ended.
    StoreConnected {
        /// The profile generation the attempt was made for.
        generation: u64,
        /// The handle, or why not.
        result: Result<Store, Error>,
    },
    /// The demo environment is ready (or could not be made).
    DemoReady(Result<Box<DemoEnv>, Error>),
    /// A refresh ended; `broken` names a server that stopped answering.
    RefreshDone {
        /// The profile generation the refresh ran for.
        generation: u64,
        /// Servers found unreachable during the refresh.
        broken: Vec<(Broken, String)>,
        /// The first other failure, reported once (not every interval).
        error: Option<String>,
    },
    /// A task found a server unreachable.
    LinkLost {
        /// The profile generation the task ran for.
        generation: u64,
        /// Which server.
        which: Broken,
        /// The error.
        reason: String,
    },
    /// The profile file was read and the profile's passwords resolved (off
    /// the runtime: the keyring blocks).
    ProfileResolved {
        /// The profile generation the resolution was started for.
        generation: u64,
        /// Profile names of the file (empty when it could not be read).
        names: Vec<String>,
        /// The profile that was tried (empty when the file could not be read).
        wanted: String,
        /// The profile ready to connect, or why not.
        result: Result<Box<Resolved>, Error>,
    },
    /// Something changed: refresh soon.
    RefreshSoon,
    /// Caches in Redis whose datasource is not registered, found for the
    /// profile generation `generation` (an older profile's are dropped).
    Discovered {
        /// The profile generation the discover ran for.
        generation: u64,
        /// What it found.
        found: Vec<crate::metrics::discover::Discovered>,
    },
    /// An administration task's report (profile file changed, export ended).
    Admin(admin::AdminInternal),
}

/// The backend's state, owned by its one task.
struct Backend {
    /// Where the profile comes from.
    startup: Startup,
    /// The profile in use, once resolved.
    resolved: Option<Resolved>,
    /// Profile names of the profile file.
    profile_names: Vec<String>,
    /// The profile the last resolution tried (the selector shows it even
    /// when its passwords could not be read, so the admin sees which one).
    wanted_profile: String,
    /// Bumped on every profile switch or reconnect, so results of older
    /// attempts are ignored.
    generation: u64,
    /// The Redis connection.
    redis: Link<Redis>,
    /// The app database connection.
    store: Link<Store>,
    /// Sends events to the window.
    emit: Emitter,
    /// Spawned tasks report here.
    internal_tx: UnboundedSender<Internal>,
    /// … and the loop reads here.
    internal_rx: UnboundedReceiver<Internal>,
    /// A refresh task is running (never two at once).
    refreshing: bool,
    /// A refresh was asked for while one ran: run another right after.
    refresh_again: bool,
    /// When the next periodic refresh is due.
    next_refresh: Instant,
    /// The last refresh error shown, so a persisting failure is shown once.
    last_refresh_error: Option<String>,
    /// Cancels this backend's jobs and demo traffic on shutdown.
    shutdown: CancellationToken,
    /// Warm jobs (and other long tasks) run by this backend.
    tasks: JoinSet<()>,
    /// The local demo environment, when running the demo.
    demo: Option<Box<DemoEnv>>,
    /// The demo's first warm was requested (done once both links are up).
    demo_warm_sent: bool,
    /// When the next memory/entries trend sample is due.
    next_sample: Instant,
    /// State of the Redis tools (Keys and Redis tabs).
    tools: tools::ToolsState,
    /// State of the administration requests and the window's scheduler.
    admin: admin::AdminState,
    /// Observations of caches another tool wrote, renewed in background
    /// tasks so a refresh never waits for a walk of their entry names.
    observations: crate::metrics::Observations,
    /// When the next discover of unregistered caches is due (a SCAN of the
    /// whole keyspace: at most every [`DISCOVER_INTERVAL`]).
    next_discover: Instant,
    /// A discover task is running (never two at once).
    discovering: Arc<std::sync::atomic::AtomicBool>,
}

/// Time between discovers of unregistered caches.
const DISCOVER_INTERVAL: Duration = Duration::from_secs(60);

/// Time between memory/entries trend samples written by the window.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// When the first sample is taken after start.
const FIRST_SAMPLE: Duration = Duration::from_secs(60);

impl Backend {
    fn new(startup: Startup, emit: Emitter) -> Backend {
        let (internal_tx, internal_rx) = mpsc::unbounded_channel();
        Backend {
            startup,
            resolved: None,
            profile_names: Vec::new(),
            wanted_profile: String::new(),
            generation: 0,
            redis: Link::default(),
            store: Link::default(),
            emit,
            internal_tx,
            internal_rx,
            refreshing: false,
            refresh_again: false,
            next_refresh: Instant::now(),
            last_refresh_error: None,
            shutdown: CancellationToken::new(),
            tasks: JoinSet::new(),
            demo: None,
            demo_warm_sent: false,
            // The first sample soon after start, then every interval.
            next_sample: Instant::now() + FIRST_SAMPLE,
            tools: tools::ToolsState::default(),
            admin: admin::AdminState::default(),
            observations: crate::metrics::Observations::background(),
            next_discover: Instant::now(),
            discovering: Arc::default(),
        }
    }

    async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        self.start();
        loop {
            let wake = self.next_wake();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.handle(cmd),
                },
                Some(msg) = self.internal_rx.recv() => self.on_internal(msg),
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.tick();
        }
        self.stop().await;
    }

    /// Resolves the profile (or starts the demo) and schedules connections.
    fn start(&mut self) {
        match self.startup.clone() {
            Startup::Demo => {
                self.emit
                    .send(Event::Setup(Some("Starting the demo environment…".into())));
                self.redis.failed_quietly();
                self.store.failed_quietly();
                let tx = self.internal_tx.clone();
                let emit = self.emit.clone();
                self.tasks.spawn(async move {
                    let progress =
                        move |step: &str| emit.send(Event::Setup(Some(step.to_string())));
                    let result = DemoEnv::start(progress).await.map(Box::new);
                    let _ = tx.send(Internal::DemoReady(result));
                });
            }
            Startup::Resolved(r) => self.use_profile(Ok(*r)),
            Startup::Profile(ov) => self.resolve_profile(ov),
        }
    }

    /// Reads the profile file and the profile's passwords in a task (the
    /// keyring is asked on a blocking thread), then uses the profile.
    fn resolve_profile(&mut self, ov: Overrides) {
        self.generation += 1;
        let generation = self.generation;
        self.resolved = None;
        self.redis.reset();
        self.store.reset();
        self.redis.failed_quietly();
        self.store.failed_quietly();
        self.send_status();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let read = secrets::off_runtime("reading the profile", move || {
                let file = ConfigFile::load(&config_path()?)?;
                let names = file.profiles.keys().cloned().collect::<Vec<_>>();
                let wanted = file.wanted_profile(&ov).unwrap_or_default();
                Ok((names, wanted, Resolved::resolve_blocking(&file, &ov)))
            })
            .await;
            let (names, wanted, result) = match read {
                Ok((names, wanted, r)) => (names, wanted, r.map(Box::new)),
                Err(e) => (Vec::new(), String::new(), Err(e)),
            };
            let _ = tx.send(Internal::ProfileResolved {
                generation,
                names,
                wanted,
                result,
            });
        });
    }

    /// Switches to a resolved profile (or shows why there is none).
    fn use_profile(&mut self, resolved: Result<Resolved, Error>) {
        self.generation += 1;
        // Another deployment: its own unregistered caches, looked for at once.
        self.next_discover = Instant::now();
        self.emit.send(Event::Discovered(Vec::new()));
        self.redis.reset();
        self.store.reset();
        self.last_refresh_error = None;
        match resolved {
            Ok(r) => {
                if !self.profile_names.contains(&r.name) && self.profile_names.is_empty() {
                    self.profile_names.push(r.name.clone());
                }
                self.emit.send(Event::Profiles(ProfileInfo {
                    names: self.profile_names.clone(),
                    current: r.name.clone(),
                    production: r.production,
                    refresh_interval_secs: r.defaults.refresh_interval_secs.max(1),
                    warnings: crate::redis_conn::security_warnings(&r.redis),
                }));
                self.resolved = Some(r);
            }
            Err(e) => {
                self.emit.send(Event::Profiles(ProfileInfo {
                    names: self.profile_names.clone(),
                    current: self.wanted_profile.clone(),
                    production: false,
                    refresh_interval_secs: crate::config::Defaults::default().refresh_interval_secs,
                    warnings: Vec::new(),
                }));
                self.resolved = None;
                let reason = e.to_string();
                self.redis.failed(reason.clone());
                self.store.failed(reason.clone());
                self.emit.error(reason);
            }
        }
        self.send_status();
        self.on_links_changed();
    }

    fn send_status(&self) {
        self.emit.send(Event::Connection(ConnectionStatus {
            redis: self.redis.state.clone(),
            database: self.store.state.clone(),
        }));
    }

    /// The earliest moment the loop has something to do.
    fn next_wake(&self) -> Instant {
        let mut wake = self.next_refresh;
        for t in [self.redis.next_attempt, self.store.next_attempt]
            .into_iter()
            .flatten()
        {
            wake = wake.min(t);
        }
        wake.max(Instant::now() + Duration::from_millis(20))
    }

    /// Starts due connection attempts and the due refresh.
    fn tick(&mut self) {
        let now = Instant::now();
        let Some(resolved) = self.resolved.clone() else {
            return;
        };
        let generation = self.generation;
        if self.redis.due(now) {
            self.redis.connecting = true;
            let tx = self.internal_tx.clone();
            let target = resolved.redis.clone();
            tokio::spawn(async move {
                let result = Redis::connect(&target).await.map(Box::new);
                let _ = tx.send(Internal::RedisConnected { generation, result });
            });
        }
        if self.store.due(now) {
            self.store.connecting = true;
            let tx = self.internal_tx.clone();
            let url = resolved.database_url.clone();
            tokio::spawn(async move {
                let result = Store::connect(&url).await;
                let _ = tx.send(Internal::StoreConnected { generation, result });
            });
        }
        if now >= self.next_refresh && !self.refreshing {
            self.start_refresh();
        }
    }

    fn interval(&self) -> Duration {
        let secs = self
            .resolved
            .as_ref()
            .map(|r| r.defaults.refresh_interval_secs)
            .unwrap_or(5)
            .max(1);
        Duration::from_secs(secs)
    }

    /// Runs one refresh in a task (never two at once).
    fn start_refresh(&mut self) {
        if self.refreshing {
            self.refresh_again = true;
            return;
        }
        self.next_refresh = Instant::now() + self.interval();
        let redis = self.redis.conn.clone();
        let store = self.store.conn.clone();
        if redis.is_none() && store.is_none() {
            return;
        }
        self.refreshing = true;
        let tx = self.internal_tx.clone();
        let emit = self.emit.clone();
        let generation = self.generation;
        let observations = self.observations.clone();
        let sampler = match (&store, &self.resolved) {
            (Some(s), Some(r)) if Instant::now() >= self.next_sample => {
                self.next_sample = Instant::now() + SAMPLE_INTERVAL;
                Some(Actor::new(s.identity(), r.name.clone(), Origin::Gui))
            }
            _ => None,
        };
        let admin = match (&store, &self.resolved) {
            (Some(s), Some(r)) => {
                let mut a = Actor::new(s.identity(), r.name.clone(), Origin::Gui);
                a.redis_user = crate::governance::permissions::redis_user_of(&r.redis);
                Some(a)
            }
            _ => None,
        };
        if let (Some(r), Some(s)) = (&redis, &store) {
            self.start_discover(r.clone(), s.clone());
        }
        tokio::spawn(async move {
            let (broken, error) = ops::refresh(
                &emit,
                redis.as_ref(),
                store.as_ref(),
                sampler,
                admin,
                &observations,
            )
            .await;
            let _ = tx.send(Internal::RefreshDone {
                generation,
                broken,
                error,
            });
        });
    }

    /// Lists unregistered caches in a task of its own when due: the SCAN
    /// never delays a refresh, and the window only receives the answer.
    fn start_discover(&mut self, redis: crate::redis_conn::Redis, store: crate::store::Store) {
        use std::sync::atomic::Ordering;
        if Instant::now() < self.next_discover || self.discovering.swap(true, Ordering::SeqCst) {
            return;
        }
        self.next_discover = Instant::now() + DISCOVER_INTERVAL;
        let (tx, running) = (self.internal_tx.clone(), self.discovering.clone());
        let generation = self.generation;
        tokio::spawn(async move {
            match crate::metrics::discover::discover(&redis, &store).await {
                Ok(found) => {
                    let _ = tx.send(Internal::Discovered { generation, found });
                }
                Err(e) => tracing::warn!("looking for unregistered caches: {e}"),
            }
            running.store(false, Ordering::SeqCst);
        });
    }

    fn on_internal(&mut self, msg: Internal) {
        match msg {
            Internal::RedisConnected { generation, result } if generation == self.generation => {
                match result {
                    Ok(r) => {
                        let label = r.label().to_string();
                        self.redis.up(*r, label);
                        self.next_refresh = Instant::now();
                    }
                    Err(e) if links::is_permanent(&e) => self.redis.failed(e.to_string()),
                    Err(e) => self.redis.down(e.to_string()),
                }
                self.send_status();
                self.on_links_changed();
            }
            Internal::StoreConnected { generation, result } if generation == self.generation => {
                match result {
                    Ok(s) => {
                        let label = s.label().to_string();
                        self.store.up(s, label);
                        self.next_refresh = Instant::now();
                    }
                    Err(e) if links::is_permanent(&e) => self.store.failed(e.to_string()),
                    Err(e) => self.store.down(e.to_string()),
                }
                self.send_status();
                self.on_links_changed();
            }
            Internal::RedisConnected { .. } | Internal::StoreConnected { .. } => {}
            Internal::DemoReady(result) => {
                self.emit.send(Event::Setup(None));
                match result {
                    Ok(env) => {
                        #[cfg(unix)]
                        {
                            let handle = env.server_handle();
                            let done = self.shutdown.clone();
                            self.tasks.spawn(async move {
                                tokio::select! {
                                    _ = done.cancelled() => {}
                                    _ = crate::demo_env::stop_on_signal(handle) => {}
                                }
                            });
                        }
                        let resolved = env.resolved.clone();
                        self.demo = Some(env);
                        self.profile_names = vec![resolved.name.clone()];
                        self.use_profile(Ok(resolved));
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        self.redis.failed(reason.clone());
                        self.store.failed(reason.clone());
                        self.emit.error(reason);
                        self.send_status();
                    }
                }
            }
            Internal::RefreshDone {
                generation,
                broken,
                error,
            } => {
                self.refreshing = false;
                if generation != self.generation {
                    return;
                }
                for (which, reason) in broken {
                    self.lose(which, reason);
                }
                match error {
                    Some(e) if self.last_refresh_error.as_ref() != Some(&e) => {
                        self.emit.error(e.clone());
                        self.last_refresh_error = Some(e);
                    }
                    Some(_) => {}
                    None => self.last_refresh_error = None,
                }
                if std::mem::take(&mut self.refresh_again) {
                    self.start_refresh();
                }
                self.maybe_start_demo();
            }
            Internal::LinkLost {
                generation,
                which,
                reason,
            } => {
                if generation == self.generation {
                    self.lose(which, reason);
                }
            }
            Internal::ProfileResolved {
                generation,
                names,
                wanted,
                result,
            } => {
                if generation == self.generation {
                    self.profile_names = names;
                    self.wanted_profile = wanted;
                    self.use_profile(result.map(|r| *r));
                }
            }
            Internal::RefreshSoon => self.start_refresh(),
            Internal::Discovered { generation, found } => {
                if generation == self.generation {
                    self.emit.send(Event::Discovered(found));
                }
            }
            Internal::Admin(msg) => self.on_admin_internal(msg),
        }
    }

    /// Marks a connection lost (once) and schedules its reconnection.
    fn lose(&mut self, which: Broken, reason: String) {
        let link_up = match which {
            Broken::Redis => self.redis.conn.is_some(),
            Broken::Database => self.store.conn.is_some(),
        };
        if !link_up {
            return;
        }
        match which {
            Broken::Redis => self.redis.down(reason),
            Broken::Database => self.store.down(reason),
        }
        self.send_status();
        self.on_links_changed();
    }

    /// In the demo, warms the datasources meant to be warm once both links
    /// are up (the window shows the jobs running).
    fn maybe_start_demo(&mut self) {
        if self.demo_warm_sent || self.redis.conn.is_none() || self.store.conn.is_none() {
            return;
        }
        let Some(demo) = &self.demo else { return };
        self.demo_warm_sent = true;
        let ids = demo.warm_at_start.clone();
        let all = demo.datasource_ids.clone();
        if let Some(redis) = self.redis.conn.clone() {
            let cancel = self.shutdown.child_token();
            self.tasks.spawn(async move {
                crate::demo_env::simulate_traffic(redis, all, cancel).await;
            });
        }
        self.handle(Command::Warm { ids, force: false });
    }

    /// Everything an operation needs, or the reason it cannot run now.
    fn context(&self, what: &str) -> Result<ops::Ctx, String> {
        let resolved = self
            .resolved
            .clone()
            .ok_or_else(|| format!("cannot {what}: no profile is in use"))?;
        let redis = self.redis.conn.clone().ok_or_else(|| {
            format!(
                "cannot {what}: Redis is not connected ({})",
                describe(&self.redis.state)
            )
        })?;
        let store = self.store.conn.clone().ok_or_else(|| {
            format!(
                "cannot {what}: the database is not connected ({})",
                describe(&self.store.state)
            )
        })?;
        let actor = Actor::new(store.identity(), resolved.name.clone(), Origin::Gui);
        Ok(ops::Ctx {
            redis,
            store,
            actor,
            resolved,
            emit: self.emit.clone(),
            internal: self.internal_tx.clone(),
            generation: self.generation,
            shutdown: self.shutdown.clone(),
        })
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Refresh => {
                // Asked for: observe caches written elsewhere afresh too.
                self.observations.forget_all();
                self.next_discover = Instant::now();
                self.start_refresh()
            }
            Command::Reconnect => {
                let resolved = self.resolved.clone();
                match resolved {
                    Some(r) => self.use_profile(Ok(r)),
                    None => self.start(),
                }
            }
            Command::SwitchProfile(name) => {
                if self.demo.is_some() {
                    self.emit.error(
                        "the demo has one profile; restart without `demo` to use your profiles",
                    );
                    return;
                }
                // A profile switch means the profile's own servers, not the
                // command line's overrides.
                let ov = Overrides {
                    profile: Some(name),
                    ..Overrides::default()
                };
                self.startup = Startup::Profile(ov.clone());
                self.resolve_profile(ov);
            }
            Command::Shutdown | Command::Restart => {}
            Command::Tools(c) => self.run_tools(c),
            Command::Admin(c) => self.run_admin(c),
            other => self.run_op(other),
        }
    }

    /// Runs a command that needs both connections, in its own task.
    fn run_op(&mut self, cmd: Command) {
        let what = match &cmd {
            Command::Warm { .. } | Command::WarmAll { .. } => "warm",
            Command::Pause { .. } => "pause the job",
            Command::Resume { .. } => "resume the job",
            Command::Cancel { .. } => "cancel the job",
            Command::Invalidate { .. } => "invalidate",
            Command::LoadDetails { .. } => "load details",
            Command::SaveDatasource(_) => "save the datasource",
            Command::ValidateSql { .. } => "validate the query",
            _ => "do that",
        };
        let ctx = match self.context(what) {
            Ok(c) => c,
            Err(reason) => {
                if let Command::ValidateSql { ds, sql, .. } = cmd {
                    self.emit.send(Event::SqlValidated {
                        ds,
                        sql,
                        result: Err(reason),
                    });
                } else {
                    self.emit.error(reason);
                }
                return;
            }
        };
        self.tasks.spawn(ops::run(ctx, cmd));
    }

    /// Cancels this backend's jobs, waits for them to clean up, stops the demo.
    async fn stop(&mut self) {
        self.shutdown.cancel();
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(15), drain)
            .await
            .is_err()
        {
            tracing::warn!("some backend tasks did not stop in time");
            self.tasks.abort_all();
        }
        if let Some(mut demo) = self.demo.take() {
            demo.stop();
        }
    }
}

impl<T> Link<T> {
    /// Not connecting yet, and nothing to show as an error (demo setup runs).
    fn failed_quietly(&mut self) {
        self.conn = None;
        self.next_attempt = None;
        self.connecting = false;
        self.state = LinkState::Connecting;
    }
}

/// One-line state of a link for messages.
fn describe(state: &LinkState) -> String {
    match state {
        LinkState::Connecting => "connecting".into(),
        LinkState::Connected { label } => format!("connected to {label}"),
        LinkState::Reconnecting {
            next_retry_in,
            reason,
        } => {
            format!(
                "retrying in {} s after: {reason}",
                next_retry_in.as_secs().max(1)
            )
        }
        LinkState::Failed(reason) => reason.clone(),
    }
}
