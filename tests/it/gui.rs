//! The window, driven with egui_kittest: the real app type, fed backend
//! events directly (no servers) with its commands read from the channel, and
//! one end-to-end run against a real redis-server and SQLite.
#![cfg(feature = "gui")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cachedeck::backend::{self, Command, ConnectionStatus, Event, LinkState, ProfileInfo, Startup};
use cachedeck::config::{Defaults, Resolved};
use cachedeck::jobs::{JobSnapshot, JobState};
use cachedeck::metrics::types::{
    DatasourceCacheMetrics, Health, HealthReport, HealthScore, Overall, StatsReport, StatsSummary,
};
use cachedeck::redis_conn::RedisTarget;
use cachedeck::store::{Datasource, DatasourceInput, Store};
use cachedeck::ui::app::RESTART_LABEL;
use cachedeck::ui::dialogs::configure::SOURCE_PASSWORD_LABEL;
use cachedeck::ui::dialogs::invalidate::CONFIRM_LABEL;
use cachedeck::ui::state::{Persisted, ThemeChoice};
use cachedeck::ui::tabs::Tab;
use cachedeck::ui::top_bar::REFRESH_LABEL;
use cachedeck::ui::{AppConfig, BackendLink, CacheDeckApp, Clock};
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable, by};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::support::{RedisServer, SqliteFile};

/// 2026-01-15 12:00:00 UTC: a fixed "now" for stable relative times.
pub(crate) const NOW_MS: i64 = 1_768_478_400_000;

/// The app in a harness, with the test's ends of its channels.
pub(crate) struct Window {
    pub(crate) harness: Harness<'static, CacheDeckApp>,
    events: UnboundedSender<Event>,
    commands: UnboundedReceiver<Command>,
    clock: Clock,
}

impl Window {
    pub(crate) fn new() -> Window {
        let (cmd_tx, cmd_rx) = unbounded_channel();
        let (ev_tx, ev_rx) = unbounded_channel();
        let clock = Clock::manual(NOW_MS);
        let app_clock = clock.clone();
        let harness = Harness::builder()
            .with_size(egui::vec2(1280.0, 800.0))
            .build_eframe(move |cc| {
                CacheDeckApp::new(
                    cc,
                    BackendLink {
                        commands: cmd_tx,
                        events: ev_rx,
                    },
                    AppConfig {
                        clock: app_clock,
                        demo: false,
                    },
                )
            });
        Window {
            harness,
            events: ev_tx,
            commands: cmd_rx,
            clock,
        }
    }

    /// Sends events and draws a few frames (spinners never settle, so no `run`).
    pub(crate) fn feed(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            self.events.send(e).expect("the app holds the receiver");
        }
        self.frames();
    }

    /// Drops the backend's end of the event queue, as a backend that is gone.
    pub(crate) fn close_events(&mut self) {
        let (tx, _) = unbounded_channel();
        self.events = tx;
    }

    pub(crate) fn frames(&mut self) {
        self.harness.run_steps(4);
    }

    /// Every command sent so far that is not a periodic one.
    pub(crate) fn sent(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        while let Ok(c) = self.commands.try_recv() {
            out.push(c);
        }
        out
    }

    /// A window showing two datasources, connected.
    pub(crate) fn with_two_datasources(production: bool) -> Window {
        let mut w = Window::new();
        w.feed(connected(production));
        w.feed([Event::Stats(report(vec![revenue(), cold_one()]))]);
        w
    }
}

pub(crate) fn connected(production: bool) -> Vec<Event> {
    vec![
        Event::Profiles(ProfileInfo {
            names: vec!["prod".into(), "staging".into()],
            current: "prod".into(),
            production,
            refresh_interval_secs: 5,
            warnings: Vec::new(),
        }),
        Event::Connection(ConnectionStatus {
            redis: LinkState::Connected {
                label: "redis://127.0.0.1:6379".into(),
            },
            database: LinkState::Connected {
                label: "sqlite:///tmp/x.db".into(),
            },
        }),
        Event::Health(HealthReport {
            overall: Overall::Degraded,
            issues: Vec::new(),
            recommendations: Vec::new(),
        }),
    ]
}

fn score(health: Health, score: f64) -> HealthScore {
    HealthScore {
        health,
        score,
        age_score: Some(35.0),
        hit_rate_score: Some(40.0),
        coverage_score: Some(20.0),
    }
}

/// A warm, excellent datasource warmed two hours ago.
fn revenue() -> DatasourceCacheMetrics {
    DatasourceCacheMetrics {
        datasource_id: 1,
        datasource_name: "Revenue Analytics".into(),
        enabled: true,
        is_warm: true,
        last_warmed: Some("2026-01-15T10:00:00.000Z".into()),
        age_minutes: Some(120.0),
        stale_after_minutes: 240.0,
        total_entries: 12_345,
        index_count: 678,
        estimated_memory_mb: 23.4,
        memory_sample_size: 64,
        unique_measures: 5,
        unique_practices: 20,
        unique_providers: 80,
        unique_frequencies: vec!["Monthly".into(), "Weekly".into()],
        avg_query_time_ms: Some(1.3),
        cache_hit_rate: Some(97.5),
        total_queries: 4_000,
        health: Health::Excellent,
        health_score: score(Health::Excellent, 95.0),
        warnings: Vec::new(),
        warming_job: None,
        written_elsewhere: false,
        sources: Default::default(),
        read_usage: None,
    }
}

/// A never-warmed datasource.
fn cold_one() -> DatasourceCacheMetrics {
    DatasourceCacheMetrics {
        datasource_id: 4,
        datasource_name: "Provider Productivity".into(),
        enabled: true,
        is_warm: false,
        last_warmed: None,
        age_minutes: None,
        stale_after_minutes: 240.0,
        total_entries: 0,
        index_count: 0,
        estimated_memory_mb: 0.0,
        memory_sample_size: 0,
        unique_measures: 0,
        unique_practices: 0,
        unique_providers: 0,
        unique_frequencies: Vec::new(),
        avg_query_time_ms: None,
        cache_hit_rate: None,
        total_queries: 0,
        health: Health::Cold,
        health_score: score(Health::Cold, 0.0),
        warnings: vec!["never warmed".into()],
        warming_job: None,
        written_elsewhere: false,
        sources: Default::default(),
        read_usage: None,
    }
}

fn report(datasources: Vec<DatasourceCacheMetrics>) -> StatsReport {
    StatsReport {
        summary: StatsSummary::over(&datasources, Some(97.5)),
        datasources,
    }
}

fn running_job(progress: f64, rows: u64) -> JobSnapshot {
    JobSnapshot {
        job_id: "job-1".into(),
        datasource_id: 1,
        datasource_name: "Revenue Analytics".into(),
        state: JobState::Running,
        queued_at: "2026-01-15T11:58:00.000Z".into(),
        started_at: Some("2026-01-15T11:58:00.000Z".into()),
        progress,
        rows_processed: rows,
        rows_total: Some(60_000),
        rows_per_second: 8_500.0,
        eta_ms: Some(4_000),
        owner: "admin@host".into(),
        origin: "gui".into(),
        ..Default::default()
    }
}

/// Clicks the one enabled widget labelled `label` (a cold card's
/// Invalidate is there too, disabled).
pub(crate) fn click_enabled(h: &Harness<'static, CacheDeckApp>, label: &str) {
    let mut enabled = h
        .get_all_by_label(label)
        .filter(|n| !n.accesskit_node().is_disabled())
        .collect::<Vec<_>>();
    assert_eq!(enabled.len(), 1, "one enabled `{label}`");
    enabled.remove(0).click();
}

/// The progress bars' values (percent), in tree order.
fn progress_values(h: &Harness<'static, CacheDeckApp>) -> Vec<f64> {
    h.query_all_by_role(Role::ProgressIndicator)
        .filter_map(|n| n.accesskit_node().numeric_value())
        .collect()
}

#[test]
fn cards_render_from_backend_events() {
    let w = Window::with_two_datasources(false);
    let h = &w.harness;
    h.get_by_label("Revenue Analytics");
    h.get_by_label("#1");
    h.get_by_label("Excellent");
    h.get_by_label("Last warmed: 2 hours ago");
    h.get_by_label("12,345 entries • 23.4 MB • 5 measures • 20 practices");
    h.get_by_label("Hit rate 97.5% • avg query 1.30 ms • 4,000 queries");
    h.get_by_label("Provider Productivity");
    h.get_by_label("Cold");
    h.get_by_label("Never warmed");
    h.get_by_label("Hit rate: no queries yet");
    h.get_by_label("Warm Now");
    // Summary tiles.
    h.get_by_label("1 / 2");
    h.get_by_label("12,345");
    // Connection status.
    h.get_by_label("Redis: connected");
    h.get_by_label("Database: connected");
}

#[test]
fn stale_cards_say_when_they_went_stale() {
    let mut w = Window::new();
    w.feed(connected(false));
    let mut old = revenue();
    old.age_minutes = Some(300.0);
    old.health = Health::Stale;
    w.feed([Event::Stats(report(vec![old]))]);
    w.harness
        .get_by_label("Last warmed: 5 hours ago (stale after 4 h)");
    w.harness.get_by_label("Stale");
    // Ages move on with the clock, without a new refresh.
    w.clock.advance(Duration::from_secs(3600));
    w.frames();
    w.harness
        .get_by_label("Last warmed: 6 hours ago (stale after 4 h)");
}

#[test]
fn clicking_refresh_sends_a_forced_warm_of_that_datasource() {
    let mut w = Window::with_two_datasources(false);
    w.sent();
    w.harness.get_by_label("Refresh").click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::Warm {
            ids: vec![1],
            force: true
        }]
    );

    w.harness.get_by_label("Warm Now").click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::Warm {
            ids: vec![4],
            force: false
        }]
    );

    w.harness.get_by_label(REFRESH_LABEL).click();
    w.frames();
    assert_eq!(w.sent(), vec![Command::Refresh]);
}

#[test]
fn refresh_is_disabled_while_the_datasource_warms() {
    let mut w = Window::with_two_datasources(false);
    w.feed([Event::Job(Box::new(running_job(25.0, 15_000)))]);
    w.sent();
    w.harness.get_by_label("Refresh").click();
    w.frames();
    assert!(
        w.sent().is_empty(),
        "a warming datasource cannot be refreshed again"
    );
}

#[test]
fn progress_bars_follow_progress_events() {
    let mut w = Window::with_two_datasources(false);
    w.feed([Event::Job(Box::new(running_job(25.0, 15_000)))]);
    assert_eq!(
        progress_values(&w.harness),
        vec![25.0],
        "the card shows the job"
    );
    w.harness.get_by_label("15,000 / 60,000 rows");

    w.feed([Event::Job(Box::new(running_job(60.0, 36_000)))]);
    assert_eq!(progress_values(&w.harness), vec![60.0]);
    w.harness.get_by_label("36,000 / 60,000 rows");

    // The Warming tab shows the same job with speed, ETA and age.
    w.harness.get_by_label("Warming (1)").click();
    w.frames();
    assert_eq!(progress_values(&w.harness), vec![60.0]);
    w.harness.get_by_label(
        "36,000 / 60,000 rows • 8,500 rows/s • ETA 4.0 s • started 2 min ago by admin@host (gui)",
    );
    w.harness.get_by_label("Pause").click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::Pause {
            job_id: "job-1".into()
        }]
    );

    let mut done = running_job(100.0, 60_000);
    done.state = JobState::Succeeded;
    done.entries_cached = 12_345;
    done.duration_ms = Some(7_000);
    done.completed_at = Some("2026-01-15T11:59:00.000Z".into());
    w.feed([Event::Job(Box::new(done))]);
    assert!(
        progress_values(&w.harness).is_empty(),
        "an ended job has no bar"
    );
    w.harness.get_by_label("succeeded");
    w.harness.get_by_label("7.0 s");
}

#[test]
fn a_stale_job_shows_its_last_heartbeat_and_offers_no_controls() {
    let mut w = Window::with_two_datasources(false);
    let mut stale = running_job(55.0, 33_000);
    stale.state = JobState::Stale;
    stale.last_heartbeat = Some("2026-01-15T11:59:00.000Z".into());
    stale.heartbeat_age_ms = Some(60_000);
    w.feed([Event::Jobs(cachedeck::jobs::WarmingStatus {
        active_jobs: vec![stale],
        recent_jobs: Vec::new(),
        workers: Vec::new(),
    })]);
    w.harness.get_by_label("Warming (1)").click();
    w.frames();
    assert!(
        w.harness
            .query_by_label_contains("Stale: last heartbeat")
            .is_some(),
        "{}",
        screen(&w.harness)
    );
    assert_eq!(progress_values(&w.harness), vec![55.0]);
    // Nobody would obey a control: none is offered.
    for label in ["Pause", "Resume", "Cancel"] {
        assert!(w.harness.query_by_label(label).is_none(), "{label} offered");
    }
}

#[test]
fn the_warming_tab_lists_the_workers_and_queued_estimates() {
    let mut w = Window::with_two_datasources(false);
    let mut queued = running_job(0.0, 0);
    queued.state = JobState::Queued;
    queued.started_at = None;
    queued.detached = true;
    queued.estimated_duration_ms = Some(125_000);
    let worker = |name: &str, leader: bool, running: Vec<String>| cachedeck::jobs::WorkerInfo {
        instance: name.into(),
        host: "ops@box-1".into(),
        version: "9.9.9".into(),
        running_jobs: running,
        leader,
        started_at: "2026-01-15T11:00:00.000Z".into(),
        last_heartbeat: "2026-01-15T11:59:58.000Z".into(),
    };
    w.feed([Event::Jobs(cachedeck::jobs::WarmingStatus {
        active_jobs: vec![queued],
        recent_jobs: Vec::new(),
        workers: vec![
            worker("agent-a", true, vec!["job-9".into()]),
            worker("agent-b", false, Vec::new()),
        ],
    })]);
    w.harness.get_by_label("Warming (1)").click();
    w.frames();
    w.harness.get_by_label("Workers (2)");
    w.harness.get_by_label("agent-a");
    w.harness.get_by_label("agent-b");
    w.harness.get_by_label("leader");
    w.harness.get_by_label("running job-9");
    w.harness.get_by_label("idle");
    assert!(
        w.harness
            .query_by_label_contains("estimated 2m 5s")
            .is_some(),
        "{}",
        screen(&w.harness)
    );

    // No worker: the tab says warms run in the window.
    w.feed([Event::Jobs(cachedeck::jobs::WarmingStatus {
        active_jobs: Vec::new(),
        recent_jobs: Vec::new(),
        workers: Vec::new(),
    })]);
    w.frames();
    w.harness.get_by_label("Workers (0)");
    assert!(
        w.harness
            .query_by_label_contains("No worker is alive")
            .is_some(),
        "{}",
        screen(&w.harness)
    );
}

#[test]
fn invalidate_asks_for_confirmation_before_sending() {
    let mut w = Window::with_two_datasources(false);
    w.sent();
    click_enabled(&w.harness, "Invalidate");
    w.frames();
    assert!(w.sent().is_empty(), "nothing is deleted before confirming");
    w.harness.get_by_label("Invalidate Revenue Analytics?");
    w.harness.get_by_label("• 12,345 entries");
    w.harness.get_by_label("• 678 indexes");
    w.harness.get_by_label("• about 23.4 MB of memory");

    w.harness.get_by_label("Cancel").click();
    w.frames();
    assert!(w.sent().is_empty());
    assert!(
        w.harness
            .query_by_label("Invalidate Revenue Analytics?")
            .is_none()
    );

    click_enabled(&w.harness, "Invalidate");
    w.frames();
    w.harness.get_by_label(CONFIRM_LABEL).click();
    w.frames();
    assert_eq!(w.sent(), vec![Command::Invalidate { ds: 1 }]);
}

#[test]
fn a_production_profile_needs_the_name_typed_to_invalidate() {
    let mut w = Window::with_two_datasources(true);
    w.harness.get_by_label("PRODUCTION");
    w.sent();
    click_enabled(&w.harness, "Invalidate");
    w.frames();
    w.harness.get_by_label(CONFIRM_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "disabled until the name is typed");

    let field = w.harness.get_by_label("Type Revenue Analytics to confirm:");
    field.focus();
    field.type_text("Revenue Analytics");
    w.frames();
    w.harness.get_by_label(CONFIRM_LABEL).click();
    w.frames();
    assert_eq!(w.sent(), vec![Command::Invalidate { ds: 1 }]);
}

#[test]
fn an_error_event_shows_a_message_once_that_fades() {
    let mut w = Window::with_two_datasources(false);
    w.feed([Event::Error(
        "cannot warm: Redis is not connected (retrying in 4 s)".into(),
    )]);
    w.harness
        .get_by_label_contains("cannot warm: Redis is not connected");
    // The same message again is counted, not stacked.
    w.feed([Event::Error(
        "cannot warm: Redis is not connected (retrying in 4 s)".into(),
    )]);
    assert_eq!(w.harness.state().toasts().items().len(), 1);
    w.harness.get_by_label_contains("(×2)");
    // Gone after its time.
    w.clock.advance(Duration::from_secs(30));
    w.frames();
    assert!(w.harness.query_by_label_contains("cannot warm").is_none());
}

#[test]
fn connection_problems_show_in_the_status_bar() {
    let mut w = Window::with_two_datasources(false);
    w.feed([Event::Connection(ConnectionStatus {
        redis: LinkState::Reconnecting {
            next_retry_in: Duration::from_secs(8),
            reason: "Connection refused".into(),
        },
        database: LinkState::Failed("no such file".into()),
    })]);
    w.harness.get_by_label("Redis: reconnecting in 8 s");
    w.harness.get_by_label("Database: failed: no such file");
    w.clock.advance(Duration::from_secs(3));
    w.frames();
    w.harness.get_by_label("Redis: reconnecting in 5 s");
    w.sent();
    w.harness.get_by_label("Reconnect").click();
    w.frames();
    assert_eq!(w.sent(), vec![Command::Reconnect]);
}

#[test]
fn a_backend_that_stops_is_shown_at_once_with_its_reason_and_restart() {
    let mut w = Window::with_two_datasources(false);
    w.sent();
    // No click needed: the event alone replaces the tab with the reason.
    w.feed([Event::BackendStopped(
        "the backend crashed: Cannot start a runtime from within a runtime".into(),
    )]);
    w.harness.get_by_label("cachedeck's backend has stopped");
    w.harness
        .get_by_label("the backend crashed: Cannot start a runtime from within a runtime");
    assert!(w.harness.query_by_label("Revenue Analytics").is_none());
    w.harness.get_by_label(RESTART_LABEL).click();
    w.frames();
    assert_eq!(w.sent(), vec![Command::Restart]);
    w.feed([Event::BackendRestarted]);
    assert!(
        w.harness
            .query_by_label("cachedeck's backend has stopped")
            .is_none()
    );
    w.harness.get_by_label("Revenue Analytics");
}

#[test]
fn a_backend_whose_queue_is_gone_is_shown_at_once() {
    let mut w = Window::with_two_datasources(false);
    w.close_events();
    w.frames();
    w.harness.get_by_label("cachedeck's backend has stopped");
    w.harness.get_by_label_contains("restart cachedeck");
}

#[test]
fn keyboard_shortcuts_refresh_and_switch_tabs() {
    let mut w = Window::with_two_datasources(false);
    w.sent();
    w.harness.key_press(egui::Key::F5);
    w.frames();
    assert_eq!(w.sent(), vec![Command::Refresh]);
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::R);
    w.frames();
    assert_eq!(w.sent(), vec![Command::Refresh]);
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num2);
    w.frames();
    w.harness.get_by_label("Active jobs (0)");
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num1);
    w.frames();
    w.harness.get_by_label("Revenue Analytics");
}

/// Ctrl+5…8 reach the Redis tools, Audit and Settings; the forced theme is
/// part of the view state the window saves.
#[test]
fn every_tab_has_a_shortcut_and_the_theme_choice_is_kept() {
    let mut w = Window::with_two_datasources(false);
    for (key, tab) in [
        (egui::Key::Num5, Tab::Keys),
        (egui::Key::Num6, Tab::Server),
        (egui::Key::Num7, Tab::Audit),
        (egui::Key::Num8, Tab::Settings),
        (egui::Key::Num4, Tab::Health),
    ] {
        w.harness.key_press_modifiers(egui::Modifiers::COMMAND, key);
        w.frames();
        assert_eq!(w.harness.state().view().tab, tab);
    }
    assert_eq!(w.harness.state().view().theme, ThemeChoice::System);
    w.harness
        .get(by().role(Role::ComboBox).value("System"))
        .click();
    w.frames();
    w.harness.get_by_label("Dark").click();
    w.frames();
    assert_eq!(w.harness.state().view().theme, ThemeChoice::Dark);
    assert_eq!(w.harness.ctx.theme(), egui::Theme::Dark);
    let saved = serde_json::to_string(w.harness.state().view()).expect("view serializes");
    let back: Persisted = serde_json::from_str(&saved).expect("view deserializes");
    assert_eq!(back.theme, ThemeChoice::Dark);
}

#[test]
fn filter_and_sort_keep_many_cards_usable() {
    let mut w = Window::new();
    w.feed(connected(false));
    let many: Vec<DatasourceCacheMetrics> = (1..=60)
        .map(|i| {
            let mut m = revenue();
            m.datasource_id = i;
            m.datasource_name = format!("Datasource {i:02}");
            m
        })
        .collect();
    w.feed([Event::Stats(report(many))]);
    w.harness.get_by_label("showing 60 of 60");
    let field = w.harness.get_by_label("Filter");
    field.focus();
    field.type_text("#42");
    w.frames();
    w.harness.get_by_label("showing 1 of 60");
    w.harness.get_by_label("Datasource 42");
    assert!(w.harness.query_by_label("Datasource 01").is_none());
}

/// A registered datasource as the backend reports it.
pub(crate) fn registry(id: i64, name: &str) -> Datasource {
    Datasource {
        id,
        name: name.into(),
        source_url: None,
        source_password: None,
        sql: "SELECT measure, practice_uid, provider_uid, frequency, amount FROM revenue".into(),
        stale_after_secs: 4 * 3600,
        ttl_secs: 48 * 3600,
        enabled: true,
        statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        created_at_ms: NOW_MS,
        updated_at_ms: NOW_MS,
    }
}

fn registry_entry() -> Datasource {
    registry(1, "Revenue Analytics")
}

#[test]
fn configure_validates_the_query_in_the_backend_and_saves() {
    let mut w = Window::new();
    w.feed(connected(false));
    w.feed([
        Event::Stats(report(vec![revenue()])),
        Event::Datasources(vec![registry_entry()]),
    ]);
    w.sent();
    w.harness.get_by_label("Configure").click();
    w.frames();
    w.harness.get_by_label("Configure Revenue Analytics (#1)");
    w.harness.get_by_label("Validate").click();
    w.frames();
    let sql = registry_entry().sql;
    assert_eq!(
        w.sent(),
        vec![Command::ValidateSql {
            ds: 1,
            sql: sql.clone(),
            source_url: None,
            source_password: None,
        }]
    );
    w.harness.get_by_label("checking…");
    w.feed([Event::SqlValidated {
        ds: 1,
        sql: sql.clone(),
        result: Ok(vec![
            "measure".into(),
            "practice_uid".into(),
            "provider_uid".into(),
            "frequency".into(),
        ]),
    }]);
    w.harness
        .get_by_label("Valid. Columns: measure, practice_uid, provider_uid, frequency");

    w.harness.get_by_label("Save").click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::SaveDatasource(DatasourceInput {
            id: 1,
            name: "Revenue Analytics".into(),
            source_url: None,
            source_password: None,
            sql,
            stale_after_secs: 4 * 3600,
            ttl_secs: 48 * 3600,
            enabled: true,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })]
    );
    // The dialog closes when the backend confirms.
    w.feed([Event::DatasourceSaved(registry_entry())]);
    assert!(
        w.harness
            .query_by_label("Configure Revenue Analytics (#1)")
            .is_none()
    );
}

/// Replaces the text of the field labelled `label`.
fn type_into(w: &mut Window, label: &str, text: &str) {
    w.harness.get_by_label(label).focus();
    w.frames();
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    w.frames();
    w.harness.get_by_label(label).type_text(text);
    w.frames();
}

#[test]
fn configure_refuses_a_source_url_with_a_password_and_saves_a_reference() {
    let mut w = Window::new();
    w.feed(connected(false));
    w.feed([
        Event::Stats(report(vec![revenue()])),
        Event::Datasources(vec![registry_entry()]),
    ]);
    w.sent();
    w.harness.get_by_label("Configure").click();
    w.frames();
    type_into(&mut w, "Source database", "postgres://u:hunter2@db/x");
    w.harness
        .get_by_label_contains("the source URL carries a password");
    w.harness.get_by_label("Save").click();
    w.frames();
    assert!(
        w.sent().is_empty(),
        "nothing is sent with a password in the URL"
    );
    type_into(&mut w, "Source database", "postgres://u@db/x");
    type_into(&mut w, SOURCE_PASSWORD_LABEL, "env:SRC_PW");
    w.harness.get_by_label("Save").click();
    w.frames();
    let sent = w.sent();
    let [Command::SaveDatasource(input)] = sent.as_slice() else {
        panic!("expected one save, got {sent:?}");
    };
    assert_eq!(input.source_url.as_deref(), Some("postgres://u@db/x"));
    assert_eq!(input.source_password.as_deref(), Some("env:SRC_PW"));
}

// ------------------------------------------------------------ end to end

/// A real backend on a real redis-server and a SQLite store with one demo
/// datasource: Warm Now, then the card turns excellent.
#[test]
fn end_to_end_warm_now_turns_the_card_excellent() {
    let redis = RedisServer::start();
    let db = SqliteFile::create();
    let data = SqliteFile::create();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        cachedeck::source::demo::create(&data.url(), "analytics_demo", 3_000, true)
            .await
            .expect("demo data");
        let store = Store::connect(&db.url()).await.expect("store");
        store
            .add_datasource(&DatasourceInput {
                id: 7,
                name: "Revenue Analytics".into(),
                source_url: Some(data.url()),
                source_password: None,
                sql: cachedeck::source::demo::datasource_sql(
                    "analytics_demo",
                    Some(&["Charges", "Payments"]),
                ),
                stale_after_secs: 4 * 3600,
                ttl_secs: 48 * 3600,
                enabled: true,
                statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
            })
            .await
            .expect("datasource");
    });
    let (mut harness, handle) = live_window(&runtime, profile("e2e", redis.target(), &db.url()));
    pump_until(&mut harness, "the cold card", &|h| {
        h.query_by_label("Warm Now").is_some()
    });
    harness.get_by_label("Never warmed");
    harness.get_by_label("Warm Now").click();
    pump_until(&mut harness, "the card to turn excellent or good", &|h| {
        h.state()
            .model()
            .metrics(7)
            .is_some_and(|m| matches!(m.health, Health::Excellent | Health::Good))
            && h.query_by_label("Warm Now").is_none()
    });
    let m = harness
        .state()
        .model()
        .metrics(7)
        .cloned()
        .expect("metrics of ds 7");
    assert!(m.is_warm && m.total_entries > 0, "{m:?}");
    let label = match m.health {
        Health::Excellent => "Excellent",
        _ => "Good",
    };
    assert!(
        harness.query_all_by_label(label).count() >= 1,
        "the card shows {label}"
    );
    harness.get_by_label("Last warmed: just now");
    harness.get_by_label("Hit rate: no queries yet");
    // The finished job is in the history with its outcome.
    let job = harness
        .state()
        .model()
        .recent
        .first()
        .cloned()
        .expect("a finished job");
    assert_eq!(job.state, "succeeded", "{job:?}");
    assert_eq!(job.datasource_id, 7);
    drop(harness);
    runtime.block_on(handle.shutdown(Duration::from_secs(10)));
}

/// A profile on `redis` and the store at `database_url`, refreshed every second.
pub(crate) fn profile(name: &str, redis: RedisTarget, database_url: &str) -> Resolved {
    Resolved {
        name: name.into(),
        production: false,
        redis,
        database_url: database_url.into(),
        defaults: Defaults {
            refresh_interval_secs: 1,
            ..Defaults::default()
        },
    }
}

/// The real window on a real backend (on `runtime`) using `resolved`.
pub(crate) fn live_window(
    runtime: &tokio::runtime::Runtime,
    resolved: Resolved,
) -> (Harness<'static, CacheDeckApp>, backend::BackendHandle) {
    let (handle, events) = backend::spawn(
        runtime.handle(),
        Startup::Resolved(Box::new(resolved)),
        Arc::new(|| {}),
    );
    let link = BackendLink {
        commands: handle.commands.clone(),
        events,
    };
    let harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| {
            CacheDeckApp::new(
                cc,
                link,
                AppConfig {
                    clock: Clock::system(),
                    demo: false,
                },
            )
        });
    (harness, handle)
}

/// Draws frames until `done` holds; fails after 60 s naming `what` and
/// what is on screen.
pub(crate) fn pump_until(
    harness: &mut Harness<'static, CacheDeckApp>,
    what: &str,
    done: &dyn Fn(&Harness<'static, CacheDeckApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(harness) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; on screen: {}",
            screen(harness)
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Every label and value on screen, for failure messages.
pub(crate) fn screen(h: &Harness<'static, CacheDeckApp>) -> String {
    h.query_all_by(|_| true)
        .filter_map(|n| {
            let a = n.accesskit_node();
            a.label().or_else(|| a.value())
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Waits up to `secs` for an event that `want` accepts, skipping others.
pub(crate) fn wait_for(
    runtime: &tokio::runtime::Runtime,
    events: &mut UnboundedReceiver<Event>,
    secs: u64,
    what: &str,
    want: impl Fn(&Event) -> bool,
) -> Event {
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            // A coalesced snapshot is read out of its slot.
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(e)) => {
                    if let Some(e) = e.resolved()
                        && want(&e)
                    {
                        return e;
                    }
                }
                Ok(None) => panic!("the backend stopped while waiting for {what}"),
                Err(_) => panic!("no {what} within {secs} s"),
            }
        }
    })
}

/// The backend keeps answering while Redis is down, says when it retries,
/// and reconnects by itself once Redis is back.
#[test]
fn backend_reports_a_lost_redis_and_reconnects_with_backoff() {
    let mut redis = RedisServer::start();
    let db = SqliteFile::create();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (handle, mut events) = backend::spawn(
        runtime.handle(),
        Startup::Resolved(Box::new(profile("outage", redis.target(), &db.url()))),
        Arc::new(|| {}),
    );
    let up = |e: &Event| matches!(e, Event::Connection(c) if c.redis.is_up() && c.database.is_up());
    wait_for(&runtime, &mut events, 20, "both connections up", up);
    wait_for(&runtime, &mut events, 20, "the first stats", |e| {
        matches!(e, Event::Stats(_))
    });

    redis.stop();
    let down = wait_for(
        &runtime,
        &mut events,
        20,
        "Redis reported down",
        |e| matches!(e, Event::Connection(c) if matches!(c.redis, LinkState::Reconnecting { .. })),
    );
    let Event::Connection(c) = down else {
        unreachable!()
    };
    let LinkState::Reconnecting { next_retry_in, .. } = c.redis else {
        unreachable!()
    };
    assert!(next_retry_in <= backend::BACKOFF_MAX, "{next_retry_in:?}");
    assert!(
        c.database.is_up(),
        "the database is still up: {:?}",
        c.database
    );

    // Commands are still answered, with why they cannot run now.
    handle
        .commands
        .send(Command::Warm {
            ids: vec![1],
            force: false,
        })
        .expect("backend alive");
    wait_for(
        &runtime,
        &mut events,
        10,
        "an error for the warm",
        |e| matches!(e, Event::Error(m) if m.contains("Redis is not connected")),
    );

    redis.restart();
    wait_for(&runtime, &mut events, 40, "Redis reconnected", up);
    wait_for(&runtime, &mut events, 20, "stats after reconnecting", |e| {
        matches!(e, Event::Stats(_))
    });
    runtime.block_on(handle.shutdown(Duration::from_secs(10)));
}

/// A cache found in Redis whose datasource is not registered: the dashboard
/// lists it as "found in Redis, not registered", and Register opens the
/// datasource editor with its id filled in. Once registered, it leaves
/// the list.
#[test]
fn a_found_cache_is_listed_and_register_opens_the_editor_with_its_id() {
    use cachedeck::metrics::discover::Discovered;
    use cachedeck::metrics::types::Source;

    let mut w = Window::new();
    w.feed(connected(false));
    w.feed([
        Event::Stats(report(vec![revenue()])),
        Event::Datasources(vec![registry_entry()]),
        Event::Discovered(vec![
            Discovered {
                datasource_id: 7,
                total_entries: 240,
                estimated_memory_mb: 0.12,
                memory_sample_size: 200,
                last_warmed: None,
                source: Source::Observed,
            },
            // Registered meanwhile: not listed.
            Discovered {
                datasource_id: 1,
                total_entries: 10,
                estimated_memory_mb: 0.01,
                memory_sample_size: 10,
                last_warmed: None,
                source: Source::Observed,
            },
        ]),
    ]);
    w.harness.get_by_label("Found in Redis, not registered");
    w.harness.get_by_label("DS #7");
    w.harness.get_by_label("240 entries");
    assert!(w.harness.query_by_label("DS #1").is_none());
    w.sent();
    w.harness.get_by_label("Register").click();
    w.frames();
    w.harness.get_by_label("Add datasource");
    let id = w.harness.get_by_label("Id");
    assert_eq!(id.accesskit_node().value().as_deref(), Some("7"));
    assert!(w.sent().is_empty(), "opening the editor sends nothing");
}
