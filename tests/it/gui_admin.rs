//! The Settings, Audit and Export parts of the window (egui_kittest): the
//! window fed recorded events with its commands read back, and the backend
//! end to end against a real redis-server and SQLite store (report export,
//! audit query and export, the window's scheduler firing a due schedule,
//! profile save / test / remove on a temporary profile file).
#![cfg(feature = "gui")]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cachedeck::backend::{
    self, AdminCommand, AdminEvent, AuditFormat, AuditQuery, Command, Event, ProfileEdit,
    ProfileFileView, ProfileTest, SchedulerState, SecretInput, Startup,
};
use cachedeck::config::secrets::KeyringState;
use cachedeck::config::{ConfigFile, Profile, SecretRef};
use cachedeck::governance::audit::{AuditFilter, AuditRow};
use cachedeck::report::{ReportFormat, ReportRange, ReportRequest};
use cachedeck::store::{DatasourceInput, ScheduleInput, Store};
use cachedeck::ui::admin::audit::{EXPORT_LABEL, MORE_LABEL, SEARCH_LABEL};
use cachedeck::ui::admin::export::{OPEN_FOLDER_LABEL, WRITE_LABEL};
use cachedeck::ui::admin::settings::{ADD_LABEL, SAVE_LABEL, TEST_LABEL};
use eframe::egui;
use egui_kittest::kittest::{NodeT, Queryable};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::gui::{NOW_MS, Window, connected, profile, registry, wait_for};
use crate::support::{RedisServer, SqliteFile};

// ------------------------------------------------------------ Settings

fn prod_profile() -> Profile {
    let mut p = Profile {
        production: true,
        ..Profile::default()
    };
    p.redis.urls = vec!["rediss://cache-1:6379".into()];
    p.redis.username = Some("cachedeck".into());
    p.redis.password = Some(SecretRef::Keyring {
        keyring: "prod/redis".into(),
    });
    p.database.url = "postgres://cachedeck@db/analytics".into();
    p
}

fn profile_file(keyring: KeyringState) -> Event {
    let mut file = ConfigFile {
        default_profile: Some("prod".into()),
        ..ConfigFile::default()
    };
    file.profiles.insert("prod".into(), prod_profile());
    Event::Admin(AdminEvent::ProfileFile(Box::new(ProfileFileView {
        path: "/home/me/.config/cachedeck/profiles.toml".into(),
        file: Ok(file),
        keyring,
    })))
}

fn settings_window(keyring: KeyringState) -> Window {
    let mut w = Window::new();
    w.feed(connected(false));
    w.sent();
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num8);
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::Admin(AdminCommand::LoadProfiles)],
        "the Settings tab asks for the profile file"
    );
    w.feed([profile_file(keyring)]);
    w
}

/// Replaces the text of the field labelled `label` (which may be pre-filled).
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
fn adding_a_profile_without_a_keyring_sends_an_env_reference_and_the_production_flag() {
    let mut w = settings_window(KeyringState::Unavailable(
        "the OS keyring is not available here (no Secret Service)".into(),
    ));
    w.harness
        .get_by_label("OS keyring: the OS keyring is not available here (no Secret Service)");
    w.harness.get_by_label(ADD_LABEL).click();
    w.frames();
    w.harness.get_by_label("New profile");
    type_into(&mut w, "Name", "staging");
    w.harness.get_by_label("Production profile").click();
    w.frames();
    // The keyring choice is off; the environment variable is the way.
    let keyring = w
        .harness
        .get_all_by_label("OS keyring")
        .next()
        .expect("radio");
    assert!(keyring.accesskit_node().is_disabled());
    w.harness
        .get_all_by_label("environment variable")
        .next()
        .expect("env radio")
        .click();
    w.frames();
    type_into(
        &mut w,
        "Variable name (the file keeps only the name)",
        "STAGING_REDIS_PW",
    );
    w.harness.get_by_label(SAVE_LABEL).click();
    w.frames();
    let sent = w.sent();
    let [Command::Admin(AdminCommand::SaveProfile(edit))] = sent.as_slice() else {
        panic!("one save: {sent:?}");
    };
    assert_eq!(edit.original, None);
    assert_eq!(edit.name, "staging");
    assert!(edit.profile.production);
    assert_eq!(edit.profile.redis.urls, vec!["redis://127.0.0.1:6379"]);
    assert_eq!(edit.profile.redis.password, None);
    assert_eq!(
        edit.redis_password,
        SecretInput::Env("STAGING_REDIS_PW".into())
    );
    assert_eq!(edit.database_password, SecretInput::Clear);

    // Saved: the reloaded file's profile is the one edited now.
    let mut file = ConfigFile::default();
    let mut p = edit.profile.clone();
    p.redis.password = Some(SecretRef::Env {
        env: "STAGING_REDIS_PW".into(),
    });
    file.profiles.insert("staging".into(), p);
    w.feed([
        Event::Admin(AdminEvent::ProfileSaved {
            name: "staging".into(),
            result: Ok(()),
        }),
        Event::Admin(AdminEvent::ProfileFile(Box::new(ProfileFileView {
            path: "/tmp/profiles.toml".into(),
            file: Ok(file),
            keyring: KeyringState::Unavailable("no keyring".into()),
        }))),
    ]);
    w.harness.get_by_label("Profile staging");
    w.harness
        .get_by_label("keep: environment variable STAGING_REDIS_PW");
}

#[test]
fn editing_a_profile_sends_a_typed_password_to_the_keyring_and_tests_it() {
    let mut w = settings_window(KeyringState::Available);
    w.harness.get_by_label("prod  (in use)  (default)").click();
    w.frames();
    w.harness.get_by_label("Profile prod");
    w.harness.get_by_label("keep: OS keyring (prod/redis)");
    w.harness
        .get_all_by_label("OS keyring")
        .next()
        .expect("keyring radio")
        .click();
    w.frames();
    type_into(
        &mut w,
        "Password (stored in the OS keyring, never in the file)",
        "s3cret-pw",
    );
    w.harness.get_by_label(TEST_LABEL).click();
    w.frames();
    let sent = w.sent();
    let [Command::Admin(AdminCommand::TestProfile(edit))] = sent.as_slice() else {
        panic!("one test: {sent:?}");
    };
    assert_eq!(edit.original.as_deref(), Some("prod"));
    assert!(matches!(&edit.redis_password, SecretInput::Keyring(s) if s.expose() == "s3cret-pw"));
    assert!(
        !format!("{sent:?}").contains("s3cret-pw"),
        "a logged command never shows the password"
    );
    w.feed([Event::Admin(AdminEvent::ProfileTested(ProfileTest {
        name: "prod".into(),
        redis: Ok("Redis 7.2.4, standalone, at rediss://cache-1:6379 (PONG)".into()),
        database: Err("cannot connect to postgres://cachedeck@db/analytics: refused".into()),
    }))]);
    w.harness
        .get_by_label("Redis OK: Redis 7.2.4, standalone, at rediss://cache-1:6379 (PONG)");
    w.harness.get_by_label(
        "Database failed: cannot connect to postgres://cachedeck@db/analytics: refused",
    );

    w.harness.get_by_label(SAVE_LABEL).click();
    w.frames();
    let sent = w.sent();
    let [Command::Admin(AdminCommand::SaveProfile(edit))] = sent.as_slice() else {
        panic!("one save: {sent:?}");
    };
    // Everything else of the profile is kept as the file had it.
    assert_eq!(edit.profile, prod_profile());
    assert!(edit.make_default);
    assert!(matches!(edit.redis_password, SecretInput::Keyring(_)));
    assert_eq!(edit.database_password, SecretInput::Clear);
    // The profile in use cannot be removed from here.
    let remove = w.harness.get_by_label("Remove profile…");
    assert!(remove.accesskit_node().is_disabled());
}

#[test]
fn settings_show_whether_this_window_leads_the_schedules() {
    let mut w = settings_window(KeyringState::Available);
    w.feed([Event::Admin(AdminEvent::Scheduler(
        cachedeck::backend::SchedulerStatus {
            state: SchedulerState::Running {
                instance_id: "gui:me@host:1:abcd".into(),
                leader: true,
            },
            next_runs: vec![cachedeck::backend::NextRun {
                schedule_id: 3,
                target: "DS #1".into(),
                cron: "0 */4 * * *".into(),
                tz: "UTC".into(),
                enabled: true,
                next_ms: Some(NOW_MS + 5 * 60_000),
                next_local: Some("2026-01-15T12:05:00+00:00".into()),
                problem: None,
            }],
        },
    ))]);
    w.harness
        .get_by_label("This window is the schedule leader: it fires the runs.");
    w.harness.get_by_label("0 */4 * * * (UTC)");
    w.harness.get_by_label("in 5 min 0 s");
}

// ------------------------------------------------------------ Audit

fn audit_row(id: i64, at_ms: i64, action: &str) -> AuditRow {
    AuditRow {
        id,
        at: cachedeck::jobs::iso(at_ms),
        at_ms,
        action: action.into(),
        datasource_id: Some(1),
        os_user: "alice@host".into(),
        db_user: "alice".into(),
        redis_user: None,
        profile: "prod".into(),
        origin: "gui".into(),
        params: serde_json::json!({"op": "edit"}),
        result: "ok".into(),
        detail: None,
    }
}

fn audit_query(w: &mut Window) -> AuditQuery {
    let sent = w.sent();
    match sent.as_slice() {
        [Command::Admin(AdminCommand::QueryAudit(q))] => q.clone(),
        other => panic!("one audit query: {other:?}"),
    }
}

#[test]
fn the_audit_tab_queries_pages_and_exports() {
    let mut w = Window::new();
    w.feed(connected(false));
    w.sent();
    w.harness
        .key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Num7);
    w.frames();
    let q = audit_query(&mut w);
    assert_eq!(
        q.filter,
        AuditFilter {
            since_ms: Some(NOW_MS - 7 * 86_400_000),
            until_ms: None,
            action: None,
            user: None,
            datasource_id: None,
            limit: Some(200),
        }
    );
    assert_eq!(q.after, None);
    w.feed([Event::Admin(AdminEvent::AuditRows {
        seq: q.seq,
        rows: vec![
            audit_row(12, NOW_MS - 60_000, "datasource_changed"),
            audit_row(11, NOW_MS - 120_000, "cache_invalidated"),
        ],
        append: false,
        more: true,
    })]);
    w.harness.get_by_label("datasource_changed");
    w.harness.get_by_label("cache_invalidated");
    w.harness.get_by_label("2 rows (more below)");

    w.harness.get_by_label(MORE_LABEL).click();
    w.frames();
    let more = audit_query(&mut w);
    assert_eq!(more.filter, q.filter);
    let cursor = more.after.expect("a cursor");
    assert_eq!(cursor.at_ms, NOW_MS - 120_000);
    assert_eq!(cursor.seen_ids, vec![11]);
    w.feed([Event::Admin(AdminEvent::AuditRows {
        seq: more.seq,
        rows: vec![audit_row(10, NOW_MS - 180_000, "permission_denied")],
        append: true,
        more: false,
    })]);
    w.harness.get_by_label("permission_denied");
    w.harness.get_by_label("3 rows");

    type_into(&mut w, "User", "alice");
    type_into(&mut w, "Text", "edit");
    w.harness.get_by_label(SEARCH_LABEL).click();
    w.frames();
    let q2 = audit_query(&mut w);
    assert_eq!(q2.filter.user.as_deref(), Some("alice"));
    assert_eq!(q2.text, "edit");
    assert!(q2.seq > more.seq);

    w.harness.get_by_label("JSON").click();
    w.frames();
    type_into(&mut w, "to", "/tmp/audit-out.json");
    w.harness.get_by_label(EXPORT_LABEL).click();
    w.frames();
    let sent = w.sent();
    let [
        Command::Admin(AdminCommand::ExportAudit {
            query,
            format,
            path,
        }),
    ] = sent.as_slice()
    else {
        panic!("one export: {sent:?}");
    };
    assert_eq!(query.filter, q2.filter);
    assert_eq!(query.text, "edit");
    assert_eq!(*format, AuditFormat::Json);
    assert_eq!(path, &PathBuf::from("/tmp/audit-out.json"));
    w.feed([Event::Admin(AdminEvent::AuditExported {
        path: path.clone(),
        result: Ok(3),
    })]);
    w.harness
        .get_by_label("Exported 3 rows to /tmp/audit-out.json");
}

// ------------------------------------------------------------ Export dialog

#[test]
fn the_export_dialog_sends_the_choices_and_shows_progress_and_the_file() {
    let mut w = Window::with_two_datasources(false);
    w.feed([Event::Datasources(vec![
        registry(1, "Revenue Analytics"),
        registry(4, "Provider Productivity"),
    ])]);
    w.sent();
    w.harness.get_by_label("Export report…").click();
    w.frames();
    w.harness.get_by_label("Export cache-efficiency report");
    w.harness.get_by_label("30 d").click();
    w.harness.get_by_label("JSON").click();
    w.harness.get_by_label("All datasources").click();
    w.frames();
    w.harness.get_by_label("Provider Productivity (#4)").click();
    w.frames();
    type_into(&mut w, "Save to", "/tmp/cache-report.json");
    w.harness.get_by_label(WRITE_LABEL).click();
    w.frames();
    let sent = w.sent();
    let [
        Command::Admin(AdminCommand::ExportReport {
            id,
            request,
            format,
            path,
        }),
    ] = sent.as_slice()
    else {
        panic!("one export: {sent:?}");
    };
    assert_eq!(
        *request,
        ReportRequest {
            range: ReportRange::last(Duration::from_secs(30 * 86_400)),
            datasources: vec![1],
        }
    );
    assert_eq!(*format, ReportFormat::Json);
    assert_eq!(path, &PathBuf::from("/tmp/cache-report.json"));
    let id = *id;
    w.feed([Event::Admin(AdminEvent::ReportProgress {
        id,
        step: "Reading cache statistics…".into(),
    })]);
    w.harness.get_by_label("Reading cache statistics…");
    w.feed([Event::Admin(AdminEvent::ReportDone {
        id,
        result: Ok(path.clone()),
    })]);
    w.harness.get_by_label("Report written:");
    w.harness.get_by_label("/tmp/cache-report.json");
    w.harness.get_by_label(OPEN_FOLDER_LABEL).click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![Command::Admin(AdminCommand::OpenFolder(path.clone()))]
    );
}

// ------------------------------------------------------------ end to end

/// A backend on a real redis-server and a SQLite store holding demo data.
struct Live {
    _redis: RedisServer,
    db: SqliteFile,
    _data: SqliteFile,
    runtime: tokio::runtime::Runtime,
    handle: Option<backend::BackendHandle>,
    events: UnboundedReceiver<Event>,
    store: Store,
}

impl Live {
    /// Starts the backend on profile `name` and waits for both links.
    fn start(name: &str, setup: impl AsyncFnOnce(&Store, &str, &str)) -> Live {
        let redis = RedisServer::start();
        let db = SqliteFile::create();
        let data = SqliteFile::create();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let store = runtime.block_on(async {
            cachedeck::source::demo::create(&data.url(), "analytics_demo", 2_000, true)
                .await
                .expect("demo data");
            let store = Store::connect(&db.url()).await.expect("store");
            setup(&store, &data.url(), &db.url()).await;
            store
        });
        let (handle, mut events) = backend::spawn(
            runtime.handle(),
            Startup::Resolved(Box::new(profile(name, redis.target(), &db.url()))),
            Arc::new(|| {}),
        );
        wait_for(
            &runtime,
            &mut events,
            30,
            "both connections up",
            |e| matches!(e, Event::Connection(c) if c.redis.is_up() && c.database.is_up()),
        );
        Live {
            _redis: redis,
            db,
            _data: data,
            runtime,
            handle: Some(handle),
            events,
            store,
        }
    }

    fn send(&self, cmd: Command) {
        self.handle
            .as_ref()
            .expect("running")
            .commands
            .send(cmd)
            .expect("the backend runs");
    }

    fn admin(&mut self, secs: u64, what: &str, want: impl Fn(&AdminEvent) -> bool) -> AdminEvent {
        match wait_for(
            &self.runtime,
            &mut self.events,
            secs,
            what,
            |e| matches!(e, Event::Admin(a) if want(a)),
        ) {
            Event::Admin(a) => a,
            _ => unreachable!(),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown(Duration::from_secs(20)));
        }
    }
}

async fn add_demo_ds(store: &Store, data_url: &str) {
    store
        .add_datasource(&DatasourceInput {
            id: 7,
            name: "Revenue Analytics".into(),
            source_url: Some(data_url.to_string()),
            source_password: None,
            sql: cachedeck::source::demo::datasource_sql("analytics_demo", Some(&["Charges"])),
            stale_after_secs: 4 * 3600,
            ttl_secs: 48 * 3600,
            enabled: true,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })
        .await
        .expect("datasource");
}

#[test]
fn end_to_end_audit_rows_of_a_save_are_queried_and_exported_and_a_report_is_written() {
    let mut live = Live::start("gui-admin", async |_, _, _| {});
    let data_url = live._data.url();
    live.send(Command::SaveDatasource(DatasourceInput {
        id: 9,
        name: "Audited".into(),
        source_url: Some(data_url),
        source_password: None,
        sql: cachedeck::source::demo::datasource_sql("analytics_demo", None),
        stale_after_secs: 3600,
        ttl_secs: 7200,
        enabled: true,
        statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
    }));
    wait_for(
        &live.runtime,
        &mut live.events,
        20,
        "the save",
        |e| matches!(e, Event::DatasourceSaved(d) if d.id == 9),
    );

    let query = AuditQuery {
        seq: 5,
        filter: AuditFilter {
            action: Some("datasource_changed".into()),
            limit: Some(50),
            ..AuditFilter::default()
        },
        text: "audited".into(),
        after: None,
    };
    live.send(Command::Admin(AdminCommand::QueryAudit(query.clone())));
    let rows = live.admin(20, "the audit rows", |a| {
        matches!(a, AdminEvent::AuditRows { seq: 5, .. })
    });
    let AdminEvent::AuditRows { rows, more, .. } = rows else {
        unreachable!()
    };
    assert!(!more);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].datasource_id, Some(9));
    assert_eq!(rows[0].origin, "gui");
    assert_eq!(rows[0].profile, "gui-admin");

    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("audit.csv");
    live.send(Command::Admin(AdminCommand::ExportAudit {
        query,
        format: AuditFormat::Csv,
        path: csv.clone(),
    }));
    let done = live.admin(20, "the audit export", |a| {
        matches!(a, AdminEvent::AuditExported { .. })
    });
    assert!(
        matches!(&done, AdminEvent::AuditExported { result: Ok(1), .. }),
        "{done:?}"
    );
    let text = std::fs::read_to_string(&csv).expect("the CSV");
    assert!(text.starts_with("\"id\",\"at\",\"action\""), "{text}");
    assert!(text.contains("datasource_changed"), "{text}");

    let html = dir.path().join("report.html");
    live.send(Command::Admin(AdminCommand::ExportReport {
        id: 1,
        request: ReportRequest {
            range: ReportRange::last(Duration::from_secs(86_400)),
            datasources: Vec::new(),
        },
        format: ReportFormat::Html,
        path: html.clone(),
    }));
    live.admin(30, "report progress", |a| {
        matches!(a, AdminEvent::ReportProgress { id: 1, .. })
    });
    let done = live.admin(60, "the report", |a| {
        matches!(a, AdminEvent::ReportDone { id: 1, .. })
    });
    let AdminEvent::ReportDone { result, .. } = done else {
        unreachable!()
    };
    assert_eq!(result, Ok(html.clone()));
    let page = std::fs::read_to_string(&html).expect("the report file");
    assert!(
        page.contains("<html") && page.contains("Audited"),
        "an HTML report"
    );
}

#[test]
fn end_to_end_the_window_scheduler_fires_a_due_schedule_and_the_warm_runs() {
    let mut live = Live::start("gui-sched", async |store, data_url, db_url| {
        add_demo_ds(store, data_url).await;
        store
            .add_schedule(&ScheduleInput {
                datasource_id: Some(7),
                cron: "* * * * *".into(),
                tz: "UTC".into(),
                warm_before_stale: false,
                created_by: "test".into(),
            })
            .await
            .expect("schedule");
        // Created 90 s ago: this minute's run is due at the first step
        // (within the catch-up window, so it is run, not reported missed).
        let pool = sqlx::SqlitePool::connect(db_url)
            .await
            .expect("the store file");
        sqlx::query("UPDATE schedules SET created_at_ms = created_at_ms - 90000")
            .execute(&pool)
            .await
            .expect("age the schedule");
        pool.close().await;
    });
    // The step's notices come before its status.
    let fired = wait_for(
        &live.runtime,
        &mut live.events,
        30,
        "the fired notice",
        |e| matches!(e, Event::Notice(t) if t.starts_with("Schedule #") && t.contains("warming DS #7")),
    );
    let Event::Notice(text) = fired else {
        unreachable!()
    };
    assert!(text.contains("fired"), "{text}");
    let leading = live.admin(30, "the scheduler leading", |a| {
        matches!(a, AdminEvent::Scheduler(s) if matches!(s.state, SchedulerState::Running { leader: true, .. }))
    });
    let AdminEvent::Scheduler(status) = leading else {
        unreachable!()
    };
    assert!(
        status
            .next_runs
            .iter()
            .any(|r| r.target == "DS #7" && r.next_ms.is_some()),
        "{status:?}"
    );
    // The warm it queued runs in this backend and succeeds.
    let store = live.store.clone();
    live.runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let jobs = store.recent_jobs(Some(7), 10).await.expect("history");
            if let Some(j) = jobs.iter().find(|j| j.state == "succeeded") {
                assert_eq!(j.origin, "schedule", "{j:?}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no scheduled warm succeeded: {jobs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn end_to_end_profiles_are_saved_tested_reconnected_and_removed_on_a_temp_file() {
    let mut live = Live::start("gui-profiles", async |_, _, _| {});
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("profiles.toml");
    live.send(Command::Admin(AdminCommand::UseProfileFile(path.clone())));

    let mut p = Profile::default();
    p.redis.urls = vec![live._redis.url()];
    p.database.url = live.db.url();
    let edit = ProfileEdit {
        original: None,
        name: "saved".into(),
        profile: p.clone(),
        redis_password: SecretInput::Clear,
        database_password: SecretInput::Env("CACHEDECK_GUI_ADMIN_DB_PW".into()),
        make_default: true,
    };
    live.send(Command::Admin(AdminCommand::SaveProfile(Box::new(
        edit.clone(),
    ))));
    let saved = live.admin(20, "the save", |a| {
        matches!(a, AdminEvent::ProfileSaved { .. })
    });
    assert!(
        matches!(&saved, AdminEvent::ProfileSaved { result: Ok(()), .. }),
        "{saved:?}"
    );
    let view = live.admin(20, "the reloaded file", |a| {
        matches!(a, AdminEvent::ProfileFile(_))
    });
    let AdminEvent::ProfileFile(view) = view else {
        unreachable!()
    };
    let file = view.file.clone().expect("a readable file");
    assert_eq!(file.default_profile.as_deref(), Some("saved"));
    assert_eq!(
        file.profiles["saved"].database.password,
        Some(SecretRef::Env {
            env: "CACHEDECK_GUI_ADMIN_DB_PW".into()
        })
    );
    let names = wait_for(
        &live.runtime,
        &mut live.events,
        20,
        "the new names",
        |e| matches!(e, Event::Profiles(p) if p.names.contains(&"saved".to_string())),
    );
    let Event::Profiles(info) = names else {
        unreachable!()
    };
    assert_eq!(
        info.current, "gui-profiles",
        "no reconnect for another profile"
    );

    // Test with the saved values: both servers answer.
    let mut test = edit.clone();
    test.original = Some("saved".into());
    test.database_password = SecretInput::Clear;
    live.send(Command::Admin(AdminCommand::TestProfile(Box::new(test))));
    let tested = live.admin(30, "the test", |a| {
        matches!(a, AdminEvent::ProfileTested(_))
    });
    let AdminEvent::ProfileTested(t) = tested else {
        unreachable!()
    };
    let redis_line = t.redis.expect("Redis answers");
    assert!(
        redis_line.contains("standalone") && redis_line.contains("PONG"),
        "{redis_line}"
    );
    assert!(t.database.is_ok(), "{:?}", t.database);

    // Editing the profile in use reconnects with it.
    let mut in_use = edit.clone();
    in_use.name = "gui-profiles".into();
    in_use.database_password = SecretInput::Clear;
    in_use.make_default = false;
    live.send(Command::Admin(AdminCommand::SaveProfile(Box::new(in_use))));
    wait_for(
        &live.runtime,
        &mut live.events,
        20,
        "the reconnection",
        |e| matches!(e, Event::Connection(c) if !c.redis.is_up()),
    );
    wait_for(
        &live.runtime,
        &mut live.events,
        30,
        "connected again",
        |e| matches!(e, Event::Connection(c) if c.redis.is_up() && c.database.is_up()),
    );
    // … and it cannot be removed while in use.
    live.send(Command::Admin(AdminCommand::RemoveProfile(
        "gui-profiles".into(),
    )));
    let refused = live.admin(20, "the refusal", |a| {
        matches!(a, AdminEvent::ProfileRemoved { .. })
    });
    assert!(
        matches!(&refused, AdminEvent::ProfileRemoved { result: Err(e), .. } if e.contains("in use")),
        "{refused:?}"
    );

    live.send(Command::Admin(AdminCommand::RemoveProfile("saved".into())));
    let removed = live.admin(20, "the removal", |a| {
        matches!(a, AdminEvent::ProfileRemoved { .. })
    });
    assert!(
        matches!(&removed, AdminEvent::ProfileRemoved { result: Ok(()), .. }),
        "{removed:?}"
    );
    let file = ConfigFile::load(&path).expect("the file");
    assert_eq!(
        file.profiles.keys().collect::<Vec<_>>(),
        vec!["gui-profiles"]
    );
    assert_eq!(file.default_profile, None);

    // A malformed file is reported and left as it is.
    let broken = "[profiles.x]\nredis.urls = [\"redis://x\"\n";
    std::fs::write(&path, broken).expect("write");
    live.send(Command::Admin(AdminCommand::SaveProfile(Box::new(edit))));
    let failed = live.admin(20, "the refused save", |a| {
        matches!(a, AdminEvent::ProfileSaved { .. })
    });
    assert!(
        matches!(&failed, AdminEvent::ProfileSaved { result: Err(e), .. } if e.contains("line")),
        "{failed:?}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), broken);
}

/// "Load more" pages through rows that share a millisecond without losing
/// or repeating one, with and without a text filter.
#[test]
fn end_to_end_audit_pages_cover_every_row_once() {
    let mut live = Live::start("gui-pages", async |store, _, _| {
        let base = cachedeck::store::now_ms() - 60_000;
        for i in 0..12i64 {
            // Seven rows in one millisecond, then five older ones.
            let at_ms = if i < 7 { base } else { base - i * 1000 };
            store
                .append_audit(&cachedeck::store::AuditInsert {
                    at_ms,
                    action: "ttl_changed".into(),
                    datasource_id: Some(i),
                    os_user: "me@host".into(),
                    db_user: "me@host".into(),
                    redis_user: None,
                    profile: "gui-pages".into(),
                    origin: "cli".into(),
                    params: serde_json::json!({ "n": i, "tag": if i % 2 == 0 { "even" } else { "odd" } })
                        .to_string(),
                    result: "ok".into(),
                    detail: None,
                })
                .await
                .expect("audit row");
        }
    });
    for (text, expected) in [("", 12usize), ("even", 6)] {
        let mut seen: Vec<AuditRow> = Vec::new();
        let mut after = None;
        for page in 0..20u64 {
            let seq = 100 + page;
            live.send(Command::Admin(AdminCommand::QueryAudit(AuditQuery {
                seq,
                filter: AuditFilter {
                    action: Some("ttl_changed".into()),
                    limit: Some(3),
                    ..AuditFilter::default()
                },
                text: text.into(),
                after: after.clone(),
            })));
            let got = live.admin(
                20,
                "a page",
                |a| matches!(a, AdminEvent::AuditRows { seq: s, .. } if *s == seq),
            );
            let AdminEvent::AuditRows { rows, more, .. } = got else {
                unreachable!()
            };
            assert!(rows.len() <= 3);
            seen.extend(rows);
            let last = seen.last().expect("rows").clone();
            after = Some(cachedeck::backend::AuditCursor {
                at_ms: last.at_ms,
                seen_ids: seen
                    .iter()
                    .filter(|r| r.at_ms == last.at_ms)
                    .map(|r| r.id)
                    .collect(),
            });
            if !more {
                break;
            }
        }
        let mut ids: Vec<i64> = seen.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), expected, "text {text:?}: {ids:?}");
        assert!(
            seen.windows(2)
                .all(|w| (w[0].at_ms, w[0].id) > (w[1].at_ms, w[1].id)),
            "newest first: {ids:?}"
        );
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), expected, "no row twice");
    }
}
