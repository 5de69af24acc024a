//! Keeps the window's backend answerable: the backend runs in a task of its
//! own behind a forwarder that owns the window's command queue. When the
//! backend stops on its own (a panic), the window is told at once
//! ([`Event::BackendStopped`], with the reason) and the forwarder waits for
//! [`Command::Restart`], which starts a fresh backend on the same queues.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc::{self, UnboundedReceiver};

use super::{Command, Emitter, Event, Startup};
use crate::config::Overrides;

/// Runs one backend until it returns; built for each (re)start.
pub(super) type Run = dyn Fn(Startup, Emitter, UnboundedReceiver<Command>) -> Pin<Box<dyn Future<Output = ()> + Send>>
    + Send
    + Sync;

/// The one line that says why a backend task ended.
fn reason(outcome: Result<(), tokio::task::JoinError>) -> String {
    match outcome {
        Ok(()) => "the backend ended unexpectedly".into(),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "an unknown panic".into());
            format!("the backend crashed: {}", crate::redact::redact(&what))
        }
        Err(e) => format!("the backend stopped: {e}"),
    }
}

/// Forwards the window's commands to the running backend; on its own stop,
/// reports it and waits for Restart (or Shutdown).
pub(super) async fn supervise(
    mut startup: Startup,
    emit: Emitter,
    mut commands: UnboundedReceiver<Command>,
    run: Box<Run>,
) {
    loop {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut backend = tokio::spawn(run(startup.clone(), emit.clone(), rx));
        let outcome = loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => {
                        let _ = tx.send(Command::Shutdown);
                        let _ = backend.await;
                        return;
                    }
                    Some(Command::Restart) => {}
                    Some(cmd) => {
                        // A restart comes back on the profile switched to.
                        if let (Command::SwitchProfile(name), Startup::Profile(_)) = (&cmd, &startup) {
                            startup = Startup::Profile(Overrides {
                                profile: Some(name.clone()),
                                ..Overrides::default()
                            });
                        }
                        let _ = tx.send(cmd);
                    }
                },
                ended = &mut backend => break ended,
            }
        };
        let why = reason(outcome);
        tracing::error!("{why}");
        emit.send(Event::BackendStopped(why));
        loop {
            match commands.recv().await {
                None | Some(Command::Shutdown) => return,
                Some(Command::Restart) => break,
                // Nothing runs them now; the window already shows why.
                Some(_) => {}
            }
        }
        emit.send(Event::BackendRestarted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_crashed_backend_is_reported_at_once_and_restarts() {
        let (ev_tx, mut events) = mpsc::unbounded_channel();
        let emit = Emitter::new(ev_tx, Arc::new(|| {}));
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let run: Box<Run> = Box::new(move |_, emit: Emitter, mut rx| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if n == 0 {
                    panic!("Cannot start a runtime from within a runtime");
                }
                while let Some(cmd) = rx.recv().await {
                    match cmd {
                        Command::Shutdown => return,
                        _ => emit.notice("alive"),
                    }
                }
            })
        });
        let task = tokio::spawn(supervise(
            Startup::Profile(Overrides::default()),
            emit,
            cmd_rx,
            run,
        ));
        // Reported without any command sent.
        match events.recv().await {
            Some(Event::BackendStopped(why)) => {
                assert!(why.contains("Cannot start a runtime"), "{why}")
            }
            other => panic!("expected BackendStopped, got {other:?}"),
        }
        cmd_tx.send(Command::Refresh).unwrap();
        cmd_tx.send(Command::Restart).unwrap();
        assert!(matches!(events.recv().await, Some(Event::BackendRestarted)));
        cmd_tx.send(Command::Refresh).unwrap();
        assert!(matches!(events.recv().await, Some(Event::Notice(t)) if t == "alive"));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        cmd_tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }
}
