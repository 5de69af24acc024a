//! Sending events to the window: every send wakes the window through the
//! repaint callback; job progress is throttled so a fast warm does not
//! repaint hundreds of times a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::protocol::Event;
use crate::jobs::{JobSnapshot, JobState};

/// Wakes the window (egui's `request_repaint`, passed in so the backend does
/// not depend on egui).
pub type Repaint = Arc<dyn Fn() + Send + Sync>;

/// Least time between two progress events of one job.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// A cloneable sender of events to the window.
#[derive(Clone)]
pub struct Emitter {
    /// The window's event queue.
    tx: UnboundedSender<Event>,
    /// Wakes the window after each send.
    repaint: Repaint,
    /// Per job: when progress was last sent and in which state, for throttling.
    last_progress: Arc<Mutex<HashMap<String, (Instant, JobState)>>>,
}

impl Emitter {
    /// An emitter over the window's queue.
    pub fn new(tx: UnboundedSender<Event>, repaint: Repaint) -> Emitter {
        Emitter {
            tx,
            repaint,
            last_progress: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Sends one event and wakes the window. A closed window is not an error:
    /// the backend is about to be shut down.
    pub fn send(&self, event: Event) {
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
    /// than [`PROGRESS_INTERVAL`] ago in the same state. State changes and
    /// the final snapshot always go through.
    pub fn job(&self, snap: &JobSnapshot) {
        let now = Instant::now();
        let send = match self.last_progress.lock() {
            Ok(mut map) => {
                let due = match map.get(&snap.job_id) {
                    Some((at, state)) => {
                        *state != snap.state || now.duration_since(*at) >= PROGRESS_INTERVAL
                    }
                    None => true,
                };
                if snap.state.is_final() {
                    map.remove(&snap.job_id);
                    true
                } else {
                    if due {
                        map.insert(snap.job_id.clone(), (now, snap.state));
                    }
                    due
                }
            }
            Err(_) => true,
        };
        if send {
            self.send(Event::Job(Box::new(snap.clone())));
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
        while let Ok(Event::Job(s)) = rx.try_recv() {
            got.push(s.state);
        }
        assert_eq!(
            got,
            vec![JobState::Running, JobState::Swapping, JobState::Succeeded]
        );
        assert_eq!(wakes.load(Ordering::SeqCst), 3);
    }
}
