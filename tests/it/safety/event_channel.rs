//! The window's event channel does not grow while the window does not draw
//! (minimised: egui stops calling `update`, so nothing drains it): periodic
//! snapshots wait one per kind, the newest, and one-time events still
//! arrive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cachedeck::backend::{self, Event, SnapshotKind, Startup};
use cachedeck::config::{Defaults, Resolved};
use cachedeck::store::{DatasourceInput, Store};

use crate::support::{RedisServer, SqliteFile};

/// Reads events until `want` accepts one (snapshots out of their slots).
async fn wait_for(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                if e.resolved().is_some_and(|e| want(&e)) {
                    return;
                }
            }
            Ok(None) => panic!("the backend stopped while waiting for {what}"),
            Err(_) => panic!("no {what} within 30 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undrained_window_holds_one_snapshot_per_kind_the_newest() {
    let redis = RedisServer::start();
    let db = SqliteFile::create();
    let store = Store::connect(&db.url()).await.expect("store");
    let (handle, mut events) = backend::spawn(
        &tokio::runtime::Handle::current(),
        Startup::Resolved(Box::new(Resolved {
            name: "minimised".into(),
            production: false,
            redis: redis.target(),
            database_url: db.url(),
            defaults: Defaults {
                refresh_interval_secs: 1,
                ..Defaults::default()
            },
        })),
        Arc::new(|| {}),
    );
    wait_for(
        &mut events,
        "both connections up",
        |e| matches!(e, Event::Connection(c) if c.redis.is_up() && c.database.is_up()),
    )
    .await;
    wait_for(&mut events, "the first stats", |e| {
        matches!(e, Event::Stats(_))
    })
    .await;

    // The window stops drawing for several refreshes; meanwhile a
    // datasource is added, which only the newer registry snapshots hold.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    store
        .add_datasource(&DatasourceInput {
            id: 42,
            name: "Added while minimised".into(),
            source_url: Some(db.url()),
            source_password: None,
            sql: "SELECT 'm' AS measure, 1 AS practice_uid, NULL AS provider_uid, 'Monthly' AS frequency".into(),
            stale_after_secs: 3600,
            ttl_secs: 7200,
            enabled: true,
            statement_timeout_secs: cachedeck::store::DEFAULT_STATEMENT_TIMEOUT_SECS,
        })
        .await
        .expect("a datasource");
    tokio::time::sleep(Duration::from_millis(4500)).await;

    let queued = events.len();
    let mut per_kind: HashMap<SnapshotKind, usize> = HashMap::new();
    let mut others = Vec::new();
    let mut registry = None;
    while let Ok(e) = events.try_recv() {
        let Some(e) = e.resolved() else { continue };
        match SnapshotKind::of(&e) {
            Some(kind) => *per_kind.entry(kind).or_default() += 1,
            None => others.push(format!("{e:?}").chars().take(120).collect::<String>()),
        }
        if let Event::Datasources(list) = e {
            registry = Some(list);
        }
    }
    for (kind, n) in &per_kind {
        assert_eq!(*n, 1, "{n} {kind:?} snapshots waited");
    }
    assert!(per_kind.contains_key(&SnapshotKind::Stats), "{per_kind:?}");
    // Six kinds of snapshot at most, and nothing else happened meanwhile.
    assert!(queued <= 6 + others.len(), "{queued} events queued");
    assert!(others.len() <= 2, "other events queued: {others:?}");
    let registry = registry.expect("a registry snapshot waited");
    assert!(
        registry.iter().any(|d| d.name == "Added while minimised"),
        "the registry that waited is not the newest: {:?}",
        registry.iter().map(|d| &d.name).collect::<Vec<_>>()
    );

    // One-time events are never coalesced away: a command's answer and an
    // error still arrive after the snapshots.
    handle
        .commands
        .send(backend::Command::Warm {
            ids: vec![999],
            force: false,
        })
        .expect("backend alive");
    wait_for(&mut events, "an answer to the warm", |e| {
        matches!(e, Event::Error(_) | Event::Notice(_) | Event::Job(_))
    })
    .await;
    handle.shutdown(Duration::from_secs(10)).await;
}
