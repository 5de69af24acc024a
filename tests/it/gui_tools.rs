//! The Keys and Redis tabs of the window (egui_kittest): the purge and TTL
//! confirmation flows and the browser fed with backend events, and one run
//! end to end against a real redis-server (browse a pattern with a binary
//! key name, inspect it, purge it, see the count).
#![cfg(feature = "gui")]

use std::time::{Duration, Instant};

use cachedeck::backend::{
    BrowsedKey, Command, Event, KeysPage, PatternWrite, ToolsCommand, ToolsEvent, WriteProgress,
};
use cachedeck::redis_admin::{
    Blob, Inspection, KeyInfo, PurgeOutcome, PurgePreview, TtlChange, ValuePage,
};
use cachedeck::ui::CacheDeckApp;
use cachedeck::ui::tools::purge::{CANCEL_LABEL, CLOSE_LABEL, EVERYTHING_WORD, PURGE_LABEL};
use cachedeck::ui::tools::ttl::{CONFIRM_TTL_LABEL, CONFIRM_WORD, SET_TTL_LABEL};
use cachedeck::ui::tools::{BROWSE_LABEL, PURGE_MATCHING_LABEL};
use eframe::egui;
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::gui::{Window, connected, live_window, profile, pump_until};
use crate::support::{AnyRedis, SqliteFile};

/// Opens the Keys tab (Ctrl+5).
fn keys_tab(w: &mut Window) {
    w.harness.key_press_modifiers(Modifiers::COMMAND, Key::Num5);
    w.frames();
}

/// Replaces the text of the field labelled `label` with `text`.
fn retype(h: &mut Harness<'static, CacheDeckApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run_steps(2);
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.get_by_label(label).type_text(text);
    h.run_steps(3);
}

fn preview(pattern: &str, count: u64, everything: bool) -> Event {
    Event::Tools(ToolsEvent::Preview {
        pattern: pattern.as_bytes().to_vec(),
        write: PatternWrite::Purge,
        preview: Box::new(PurgePreview {
            pattern: pattern.into(),
            count,
            sample: (0..count.min(3))
                .map(|i| KeyInfo::new(format!("app:{i}").into_bytes()))
                .collect(),
            protected: 0,
            matches_everything: everything,
            keyspace_size: 6_000,
        }),
    })
}

fn tools(c: ToolsCommand) -> Command {
    Command::Tools(c)
}

/// Types `text` into the purge dialog's confirmation field labelled
/// `prompt`, presses Purge and returns what the window sent.
fn confirm_purge(w: &mut Window, prompt: &str, text: &str) -> Vec<Command> {
    retype(&mut w.harness, prompt, text);
    w.harness.get_by_label(PURGE_LABEL).click();
    w.frames();
    w.sent()
}

/// What the window sends for a confirmed purge of `pattern`.
fn purge_of(pattern: &str, confirmed_all: bool) -> Vec<Command> {
    vec![tools(ToolsCommand::RunPattern {
        pattern: pattern.as_bytes().to_vec(),
        write: PatternWrite::Purge,
        confirmed_all,
    })]
}

/// A window on the Keys tab with `pattern` typed, the purge dialog open
/// and its dry run asked for.
fn purge_dialog(production: bool, pattern: &str) -> Window {
    let mut w = Window::new();
    w.feed(connected(production));
    keys_tab(&mut w);
    retype(&mut w.harness, "Pattern:", pattern);
    w.sent();
    w.harness.get_by_label(PURGE_MATCHING_LABEL).click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![tools(ToolsCommand::Preview {
            pattern: pattern.as_bytes().to_vec(),
            write: PatternWrite::Purge,
        })],
        "a dry run comes first"
    );
    w.harness
        .get_by_label_contains("Dry run: counting the matching keys");
    w
}

#[test]
fn a_large_purge_needs_the_typed_pattern_then_shows_progress_and_the_count() {
    let mut w = purge_dialog(false, "app:*");
    w.feed([preview("app:*", 5_000, false)]);
    w.harness
        .get_by_label("5,000 keys would be deleted (of 6,000 in the keyspace).");
    w.harness.get_by_label("app:0");
    w.harness.get_by_label(PURGE_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "disabled until the pattern is typed");

    assert_eq!(
        confirm_purge(&mut w, "Type app:* to confirm:", "app:*"),
        purge_of("app:*", false)
    );
    w.feed([Event::Tools(ToolsEvent::Progress(WriteProgress {
        matched: 2_500,
        done: 2_000,
        node: (0, 1),
    }))]);
    w.harness
        .get_by_label("2,000 deleted of 2,500 matching so far (node 1 of 1)");
    w.feed([Event::Tools(ToolsEvent::Purged(PurgeOutcome {
        pattern: "app:*".into(),
        matched: 5_000,
        deleted: 5_000,
        protected_skipped: 0,
        cancelled: false,
        duration_ms: 1_200,
    }))]);
    w.harness
        .get_by_label("Deleted 5,000 of 5,000 matching keys in 1.2 s.");
    w.harness.get_by_label(CLOSE_LABEL).click();
    w.frames();
    assert!(
        w.harness
            .query_by_label_contains("matching keys in")
            .is_none()
    );
}

#[test]
fn cancelling_the_purge_dialog_sends_nothing() {
    let mut w = purge_dialog(false, "app:*");
    w.feed([preview("app:*", 3, false)]);
    w.harness
        .get_by_label("3 keys would be deleted (of 6,000 in the keyspace).");
    assert!(
        w.harness.query_by_label_contains("to confirm").is_none(),
        "a small purge outside production needs no typing"
    );
    w.harness.get_by_label(CANCEL_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "Cancel sends nothing");
    assert!(w.harness.query_by_label(PURGE_LABEL).is_none());

    // Cancel while counting stops the dry run and deletes nothing.
    w.harness.get_by_label(PURGE_MATCHING_LABEL).click();
    w.frames();
    w.sent();
    w.harness.get_by_label(CANCEL_LABEL).click();
    w.frames();
    assert_eq!(w.sent(), vec![tools(ToolsCommand::CancelWrite)]);
}

#[test]
fn a_production_profile_always_needs_the_typed_pattern() {
    let mut w = purge_dialog(true, "app:*");
    w.feed([preview("app:*", 3, false)]);
    w.harness.get_by_label("This is a production profile.");
    w.harness.get_by_label(PURGE_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "disabled until the pattern is typed");
    assert_eq!(
        confirm_purge(&mut w, "Type app:* to confirm:", "app:*"),
        purge_of("app:*", false)
    );
}

#[test]
fn a_pattern_matching_everything_needs_the_word() {
    let mut w = purge_dialog(false, "*");
    w.feed([preview("*", 3, true)]);
    w.harness.get_by_label("This pattern matches every key.");
    let prompt = format!("Type {EVERYTHING_WORD} to confirm:");
    assert!(
        confirm_purge(&mut w, &prompt, "*").is_empty(),
        "typing the pattern is not enough"
    );
    assert_eq!(
        confirm_purge(&mut w, &prompt, EVERYTHING_WORD),
        purge_of("*", true)
    );
}

/// Browses, then feeds `n` keys `k:<i % 50>:<i>` plus one binary name.
fn browse_keys(w: &mut Window, n: usize) {
    keys_tab(w);
    // The first visit lists the first page by itself.
    match w.sent().as_slice() {
        [Command::Tools(ToolsCommand::Browse(req))] => {
            assert_eq!((req.session, req.pattern.as_slice()), (1, b"*".as_slice()))
        }
        other => panic!("expected the first page's Browse, got {other:?}"),
    }
    w.harness.get_by_label(BROWSE_LABEL).click();
    w.frames();
    let sent = w.sent();
    let session = match sent.as_slice() {
        [Command::Tools(ToolsCommand::Browse(req))] => {
            assert_eq!(req.pattern, b"*".to_vec());
            req.session
        }
        other => panic!("expected one Browse, got {other:?}"),
    };
    let mut keys: Vec<BrowsedKey> = (0..n)
        .map(|i| BrowsedKey::new(format!("k:{}:{i}", i % 50).into_bytes()))
        .collect();
    // A binary name, far enough down the list to need a visible row.
    keys.insert(n.min(22), BrowsedKey::new(b"bin:\xff\x00x".to_vec()));
    let total = keys.len() as u64;
    let mut sent_so_far = 0u64;
    let mut pages = Vec::new();
    while !keys.is_empty() {
        let rest = keys.split_off(keys.len().min(100_000));
        let batch = std::mem::replace(&mut keys, rest);
        sent_so_far += batch.len() as u64;
        pages.push(Event::Tools(ToolsEvent::Keys(KeysPage {
            session,
            keys: batch,
            scanned: sent_so_far,
            keyspace: total,
            done: sent_so_far == total,
            loading: sent_so_far < total,
            node: (0, 1),
            dedupe_complete: true,
        })));
    }
    let count = pages.len();
    w.feed(pages);
    // One event per frame at most when they are big (the 4 ms budget).
    for _ in 0..count {
        w.frames();
    }
}

#[test]
fn a_million_keys_are_held_and_only_visible_rows_are_laid_out() {
    let mut w = Window::new();
    w.feed(connected(false));
    browse_keys(&mut w, 1_000_000);
    w.harness.get_by_label(
        "1,000,000 keys loaded of 1,000,001 in the keyspace • scan complete • window limit reached (1,000,000 keys / 128 MB)",
    );
    let rows = w.harness.query_all_by_label_contains("k:").count();
    assert!(
        rows < 200,
        "only the visible rows (and the namespaces) are laid out, not {rows}"
    );
    let started = Instant::now();
    w.harness.run_steps(5);
    let per_frame = started.elapsed() / 5;
    eprintln!("a frame with 1,000,000 keys held: {per_frame:?} (debug build)");
    // The namespace tree counts per prefix; clicking narrows the browse.
    w.harness.get_by_label("k:").click();
    w.frames();
    match w.sent().as_slice() {
        [Command::Tools(ToolsCommand::Browse(req))] => assert_eq!(req.pattern, b"k:*".to_vec()),
        other => panic!("expected a narrowed Browse, got {other:?}"),
    }
}

#[test]
fn a_binary_key_is_shown_escaped_and_acted_on_by_its_bytes() {
    let mut w = Window::new();
    w.feed(connected(true));
    browse_keys(&mut w, 30);
    w.harness.get_by_label("bin:\\xff\\x00x").click();
    w.frames();
    let key = b"bin:\xff\x00x".to_vec();
    assert_eq!(
        w.sent(),
        vec![tools(ToolsCommand::Inspect {
            key: key.clone(),
            cursor: None,
            count: cachedeck::ui::tools::inspector::PAGE_COUNT,
        })]
    );
    w.feed([Event::Tools(ToolsEvent::Inspected {
        cursor: None,
        inspection: Box::new(Inspection {
            key: KeyInfo::new(key.clone()),
            exists: true,
            key_type: "string".into(),
            ttl_ms: None,
            encoding: Some("embstr".into()),
            memory_bytes: Some(56),
            length: Some(12),
            value: Some(ValuePage::String {
                offset: 0,
                value: Blob::new(b"binary value"),
                truncated: false,
                pretty_json: None,
                json_rows: None,
            }),
            next_cursor: None,
            parsed: None,
        }),
    })]);
    w.harness.get_by_label("embstr");
    w.harness.get_by_label("no expiry");
    w.harness.get_by_label("binary value");
    // Production: a TTL change is confirmed by typing the word.
    retype(&mut w.harness, "New TTL:", "90");
    w.harness.get_by_label(SET_TTL_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "production asks first");
    w.harness.get_by_label(CONFIRM_TTL_LABEL).click();
    w.frames();
    assert!(w.sent().is_empty(), "disabled until the word is typed");
    retype(
        &mut w.harness,
        &format!("Type {CONFIRM_WORD} to confirm:"),
        CONFIRM_WORD,
    );
    w.harness.get_by_label(CONFIRM_TTL_LABEL).click();
    w.frames();
    assert_eq!(
        w.sent(),
        vec![tools(ToolsCommand::SetKeyTtl {
            key,
            change: TtlChange::Expire(Duration::from_secs(90)),
        })]
    );
}

// ------------------------------------------------------------ end to end

/// A real backend on a real redis-server (and a SQLite store for the
/// admin's identity): browse `e2e:*` with a binary key name among the keys,
/// inspect it, purge the pattern, see the count; the Redis tab reads INFO.
fn browse_inspect_purge_end_to_end(redis: &AnyRedis) {
    let db = SqliteFile::create();
    // Few enough that every row is on screen (the list lays out only those).
    for i in 0..20 {
        redis.query::<()>(redis::cmd("SET").arg(format!("e2e:{i}")).arg(i));
    }
    redis.query::<()>(
        redis::cmd("SET")
            .arg(b"e2e:\xffbin\x00")
            .arg("binary value"),
    );
    redis.query::<()>(redis::cmd("HSET").arg("e2e:h").arg("f").arg("v"));
    for i in 0..5 {
        redis.query::<()>(redis::cmd("SET").arg(format!("other:{i}")).arg(i));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut resolved = profile("e2e-tools", redis.target(), &db.url());
    resolved.defaults.refresh_interval_secs = 2;
    let (mut h, handle) = live_window(&runtime, resolved);
    pump_until(&mut h, "both connections", &|h| {
        let c = &h.state().model().connection;
        c.redis.is_up() && c.database.is_up()
    });
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num5);
    h.run_steps(2);
    retype(&mut h, "Pattern:", "e2e:*");
    h.get_by_label(BROWSE_LABEL).click();
    pump_until(&mut h, "the browse to end", &|h| {
        h.query_all_by_label_contains("22 keys loaded of ")
            .any(|n| {
                n.accesskit_node()
                    .value()
                    .is_some_and(|v| v.ends_with("scan complete"))
            })
    });
    h.get_by_label("e2e:\\xffbin\\x00").click();
    pump_until(&mut h, "the binary key's value", &|h| {
        h.query_by_label("binary value").is_some()
    });
    h.get_by_label("string");
    h.get_by_label("no expiry");

    h.get_by_label(PURGE_MATCHING_LABEL).click();
    pump_until(&mut h, "the dry run", &|h| {
        h.query_by_label_contains("22 keys would be deleted (of ")
            .is_some()
    });
    h.get_by_label(PURGE_LABEL).click();
    pump_until(&mut h, "the purge's result", &|h| {
        h.query_by_label_contains("Deleted 22 of 22 matching keys")
            .is_some()
    });
    // One key per EXISTS: on a cluster the keys live on different masters.
    let exists = |key: Vec<u8>| redis.query::<i64>(redis::cmd("EXISTS").arg(key));
    let mut gone = vec![b"e2e:\xffbin\x00".to_vec(), b"e2e:h".to_vec()];
    gone.extend((0..20).map(|i| format!("e2e:{i}").into_bytes()));
    assert_eq!(
        gone.into_iter().map(exists).sum::<i64>(),
        0,
        "every e2e:* key is gone"
    );
    let kept: i64 = (0..5)
        .map(|i| exists(format!("other:{i}").into_bytes()))
        .sum();
    assert_eq!(kept, 5, "other keys are untouched");
    h.get_by_label(CLOSE_LABEL).click();
    // The browse reloads by itself and finds nothing left.
    pump_until(&mut h, "the reloaded browse", &|h| {
        h.query_all_by_label_contains("0 keys loaded of ").any(|n| {
            n.accesskit_node()
                .value()
                .is_some_and(|v| v.ends_with("scan complete"))
        })
    });
    // The Redis tab reads INFO from the server.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Num6);
    pump_until(&mut h, "the Redis statistics", &|h| {
        h.query_by_label("Keys by pattern").is_some()
    });
    h.get_by_label("Operations / s");
    drop(h);
    runtime.block_on(handle.shutdown(Duration::from_secs(10)));
}

/// The window's Keys tab on a standalone server and across the masters of a
/// cluster: browse a pattern (with a binary name), inspect, purge, Redis tab.
#[test]
fn end_to_end_browse_inspect_purge_standalone() {
    browse_inspect_purge_end_to_end(&AnyRedis::standalone());
}

#[test]
fn end_to_end_browse_inspect_purge_cluster() {
    browse_inspect_purge_end_to_end(&AnyRedis::cluster());
}
