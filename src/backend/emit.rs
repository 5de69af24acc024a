//! Sending events to the window: every send wakes the window through the
//! repaint callback; job progress is throttled so a fast warm does not
//! repaint hundreds of times a second, and coalesced per job so a window
//! that does not draw (minimised) does not pile progress up: each job has
//! one [`JobSlot`] holding its latest undelivered snapshot, and the queue
//! holds at most one progress event per job. State changes and the end of
//! a job are sent as they happen ([`Event::Job`]).
//!
//! Periodic snapshots (the registry, stats, health, the jobs list, the
//! server clock, Redis INFO) are coalesced the same way, per kind: each
//! kind has one [`LatestSlot`] holding its newest undelivered snapshot and
//! the queue holds at most one [`Event::Latest`] per kind, so a minimised
//! window finds at most one of each, the newest. Everything else (notices,
//! errors, command answers, state changes) is queued as sent, never dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::protocol::Event;
use super::tools::ToolsEvent;
use crate::jobs::{JobSnapshot, JobState};

/// Wakes the window (egui's `request_repaint`, passed in so the backend does
/// not depend on egui).
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// Least time between two progress events of one job.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// The latest progress of one job that the window has not read yet. The
/// queue carries the slot, not the snapshot: a newer snapshot replaces the
/// one waiting, so a window that reads late gets the latest, once.
#[derive(Clone, Debug, Default)]
pub struct JobSlot(Arc<Mutex<Option<Box<JobSnapshot>>>>);

impl JobSlot {
    /// The waiting snapshot, if the window has not taken it yet.
    pub fn take(&self) -> Option<Box<JobSnapshot>> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }

    /// Puts `snap` in; true when the slot was empty (nothing queued for it).
    fn put(&self, snap: &JobSnapshot) -> bool {
        match self.0.lock() {
            Ok(mut s) => {
                let was_empty = s.is_none();
                *s = Some(Box::new(snap.clone()));
                was_empty
            }
            Err(_) => false,
        }
    }
}

/// The kinds of periodic snapshot that only matter at their newest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// [`Event::Datasources`].
    Datasources,
    /// [`Event::Stats`].
    Stats,
    /// [`Event::Health`].
    Health,
    /// [`Event::Jobs`].
    Jobs,
    /// [`Event::ServerClock`].
    ServerClock,
    /// Redis INFO for the Redis tab ([`ToolsEvent::Server`]).
    RedisInfo,
}

impl SnapshotKind {
    /// The kind of `event` when it is a snapshot a newer one replaces.
    pub fn of(event: &Event) -> Option<SnapshotKind> {
        Some(match event {
            Event::Datasources(_) => SnapshotKind::Datasources,
            Event::Stats(_) => SnapshotKind::Stats,
            Event::Health(_) => SnapshotKind::Health,
            Event::Jobs(_) => SnapshotKind::Jobs,
            Event::ServerClock { .. } => SnapshotKind::ServerClock,
            Event::Tools(ToolsEvent::Server(_)) => SnapshotKind::RedisInfo,
            _ => return None,
        })
    }
}

/// The newest snapshot of one kind that the window has not read yet; the
/// queue carries the slot, and a newer snapshot replaces the one waiting.
#[derive(Clone, Debug, Default)]
pub struct LatestSlot(Arc<Mutex<Option<Event>>>);

impl LatestSlot {
    /// The waiting snapshot, if the window has not taken it yet.
    pub fn take(&self) -> Option<Event> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }

    /// Puts `event` in; true when the slot was empty (nothing queued for
    /// it). A poisoned slot gives the event back to be queued as it is.
    fn put(&self, event: Event) -> std::result::Result<bool, Box<Event>> {
        match self.0.lock() {
            Ok(mut s) => Ok(s.replace(event).is_none()),
            Err(_) => Err(Box::new(event)),
        }
    }
}

/// Per job: when progress was last sent, in which state, and its slot.
struct Tracked {
    /// When the last progress went out (for throttling).
    at: Instant,
    /// The state of the last snapshot sent (a change always goes out).
    state: JobState,
    /// Where its undelivered progress waits.
    slot: JobSlot,
}

/// A cloneable sender of events to the window.
#[derive(Clone)]
pub struct Emitter {
    /// The window's event queue.
    tx: UnboundedSender<Event>,
    /// Wakes the window after each send.
    repaint: Repaint,
    /// Per running job: throttling and coalescing of its progress.
    jobs: Arc<Mutex<HashMap<String, Tracked>>>,
    /// Least time between two progress events of one job.
    interval: Duration,
    /// Per snapshot kind: where its newest undelivered snapshot waits.
    latest: Arc<Mutex<HashMap<SnapshotKind, LatestSlot>>>,
}

impl Emitter {
    /// An emitter over the window's queue.
    pub fn new(tx: UnboundedSender<Event>, repaint: Repaint) -> Emitter {
        Emitter {
            tx,
            repaint,
            jobs: Arc::new(Mutex::new(HashMap::new())),
            interval: PROGRESS_INTERVAL,
            latest: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same emitter with another throttling interval (tests: zero).
    pub fn with_progress_interval(mut self, interval: Duration) -> Emitter {
        self.interval = interval;
        self
    }

    /// Sends one event and wakes the window. A periodic snapshot
    /// ([`SnapshotKind`]) replaces the one of its kind still waiting, and is
    /// queued only when none was. A closed window is not an error: the
    /// backend is about to be shut down.
    pub fn send(&self, event: Event) {
        let event = match SnapshotKind::of(&event) {
            Some(kind) => {
                let slot = match self.latest.lock() {
                    Ok(mut slots) => slots.entry(kind).or_default().clone(),
                    Err(_) => return self.queue(event),
                };
                match slot.put(event) {
                    Ok(true) => Event::Latest(slot),
                    Ok(false) => return,
                    Err(event) => *event,
                }
            }
            None => event,
        };
        self.queue(event);
    }

    /// Queues `event` as it is and wakes the window.
    fn queue(&self, event: Event) {
        if self.tx.send(event).is_ok() {
            (self.repaint)();
        }
    }

    /// Shows a short notification (passwords redacted).
    pub fn notice(&self, text: impl Into<String>) {
        self.send(Event::Notice(crate::redact::redact(&text.into())));
    }

    /// Shows an error, once (passwords redacted).
    pub fn error(&self, text: impl Into<String>) {
        self.send(Event::Error(crate::redact::redact(&text.into())));
    }

    /// Sends a job's snapshot unless the same job's progress was sent less
    /// than the progress interval ago in the same state. State changes and
    /// the final snapshot always go through as [`Event::Job`]; progress
    /// goes through the job's [`JobSlot`], queued only when the window has
    /// taken the previous one.
    pub fn job(&self, snap: &JobSnapshot) {
        let now = Instant::now();
        let Ok(mut jobs) = self.jobs.lock() else {
            return self.send(Event::Job(Box::new(snap.clone())));
        };
        let changed = jobs.get(&snap.job_id).is_none_or(|t| t.state != snap.state);
        if snap.state.is_final() || changed {
            // Progress still waiting belongs to the old state: retire it,
            // so a late read cannot put it after this snapshot.
            let old = if snap.state.is_final() {
                jobs.remove(&snap.job_id)
            } else {
                jobs.insert(
                    snap.job_id.clone(),
                    Tracked {
                        at: now,
                        state: snap.state,
                        slot: JobSlot::default(),
                    },
                )
            };
            if let Some(old) = old {
                old.slot.take();
            }
            drop(jobs);
            return self.send(Event::Job(Box::new(snap.clone())));
        }
        let Some(t) = jobs.get_mut(&snap.job_id) else {
            return;
        };
        if now.duration_since(t.at) < self.interval {
            return;
        }
        t.at = now;
        let slot = t.slot.clone();
        drop(jobs);
        if slot.put(snap) {
            self.queue(Event::JobProgress(slot));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn progress_is_throttled_but_state_changes_and_the_end_go_through() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        let emit = Emitter::new(
            tx,
            Arc::new(move || {
                w.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let mut snap = JobSnapshot {
            job_id: "j1".into(),
            state: JobState::Running,
            ..Default::default()
        };
        for i in 0..100 {
            snap.rows_processed = i;
            emit.job(&snap);
        }
        snap.state = JobState::Swapping;
        emit.job(&snap);
        snap.state = JobState::Succeeded;
        emit.job(&snap);
        let mut got = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            match ev {
                Event::Job(s) => got.push(s.state),
                Event::JobProgress(slot) => got.extend(slot.take().map(|s| s.state)),
                _ => {}
            }
        }
        assert_eq!(
            got,
            vec![JobState::Running, JobState::Swapping, JobState::Succeeded]
        );
        assert_eq!(wakes.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn an_undrained_queue_holds_one_progress_event_per_job_with_its_latest_state() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // No throttling: every snapshot reaches the coalescing.
        let emit = Emitter::new(tx, Arc::new(|| {})).with_progress_interval(Duration::ZERO);
        let mut snaps: Vec<JobSnapshot> = (0..3)
            .map(|j| JobSnapshot {
                job_id: format!("j{j}"),
                state: JobState::Running,
                ..Default::default()
            })
            .collect();
        // A window that does not draw: nothing is read while 30,000
        // progress events are sent.
        for i in 0..10_000u64 {
            for s in &mut snaps {
                s.rows_processed = i;
                emit.job(s);
            }
        }
        // One state change per job, then 30,000 more.
        for s in &mut snaps {
            s.state = JobState::Swapping;
            emit.job(s);
        }
        for i in 10_000..20_000u64 {
            for s in &mut snaps {
                s.rows_processed = i;
                emit.job(s);
            }
        }
        // Per job: its first Running, one progress slot (retired by the
        // change), Swapping, one progress slot.
        assert!(rx.len() <= 3 * 4, "{} events queued", rx.len());
        let mut last: HashMap<String, (JobState, u64)> = HashMap::new();
        while let Ok(ev) = rx.try_recv() {
            let snap = match ev {
                Event::Job(s) => Some(s),
                Event::JobProgress(slot) => slot.take(),
                _ => None,
            };
            if let Some(s) = snap {
                last.insert(s.job_id.clone(), (s.state, s.rows_processed));
            }
        }
        for s in &snaps {
            assert_eq!(
                last[&s.job_id],
                (JobState::Swapping, 19_999),
                "{}",
                s.job_id
            );
        }
        // The end of a job always goes through, after its last progress.
        snaps[0].state = JobState::Succeeded;
        emit.job(&snaps[0]);
        match rx.try_recv() {
            Ok(Event::Job(s)) => assert_eq!(s.state, JobState::Succeeded),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn snapshots_wait_one_per_kind_the_newest_and_notices_all_go_through() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let emit = Emitter::new(tx, Arc::new(|| {}));
        for i in 0..1000 {
            emit.send(Event::ServerClock { offset_ms: i });
            emit.send(Event::Datasources(Vec::new()));
            if i % 100 == 0 {
                emit.notice(format!("n{i}"));
            }
        }
        assert_eq!(rx.len(), 2 + 10, "one per snapshot kind, every notice");
        let mut clocks = Vec::new();
        let mut notices = 0;
        while let Ok(ev) = rx.try_recv() {
            match ev.resolved() {
                Some(Event::ServerClock { offset_ms }) => clocks.push(offset_ms),
                Some(Event::Notice(_)) => notices += 1,
                _ => {}
            }
        }
        assert_eq!((clocks, notices), (vec![999], 10));
        // Read: the next snapshot is queued again.
        emit.send(Event::ServerClock { offset_ms: 5 });
        assert!(matches!(
            rx.try_recv().ok().and_then(Event::resolved),
            Some(Event::ServerClock { offset_ms: 5 })
        ));
    }
}
