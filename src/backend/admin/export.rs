//! The Export dialog's work: build and write a cache-efficiency report with
//! progress (`report::export`), cancellable; and "Open folder", which hands
//! the folder to the desktop's file manager without waiting for it.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::{AdminEvent, AdminInternal, send};
use crate::backend::{Emitter, Internal};
use crate::redis_conn::Redis;
use crate::report::{self, ReportFormat, ReportRequest};
use crate::store::Store;

/// One export the window asked for.
pub(super) struct ReportJob {
    /// The window's id for it.
    pub id: u64,
    /// Range and datasources.
    pub request: ReportRequest,
    /// HTML, CSV or JSON.
    pub format: ReportFormat,
    /// Where to write.
    pub path: PathBuf,
}

/// Builds and writes the report; progress steps go to the window.
pub(super) async fn report(
    job: ReportJob,
    redis: Redis,
    store: Store,
    emit: Emitter,
    internal: UnboundedSender<Internal>,
    cancel: CancellationToken,
) {
    let ReportJob {
        id,
        request,
        format,
        path,
    } = job;
    let progress = {
        let emit = emit.clone();
        move |step: &str| {
            send(
                &emit,
                AdminEvent::ReportProgress {
                    id,
                    step: step.to_string(),
                },
            )
        }
    };
    let result = tokio::select! {
        r = report::export(&redis, &store, &request, format, &path, progress) => Some(r),
        _ = cancel.cancelled() => None,
    };
    let result = match result {
        Some(Ok(written)) => {
            emit.notice(format!(
                "Wrote the {} report to {}",
                format.as_str().to_uppercase(),
                written.display()
            ));
            Ok(written)
        }
        Some(Err(e)) => {
            let message = format!("cannot export the report to {}: {e}", path.display());
            emit.error(message.clone());
            Err(message)
        }
        None => Err("export cancelled; nothing was written".to_string()),
    };
    send(&emit, AdminEvent::ReportDone { id, result });
    let _ = internal.send(Internal::Admin(AdminInternal::ReportEnded(id)));
}

/// The folder to show for `path`: itself when it is a folder, else its parent.
pub fn folder_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The desktop's "open this" program.
fn opener() -> &'static str {
    if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    }
}

/// Opens the folder of `path` in the file manager. The opener is spawned
/// and reaped in the background; only a failure to start it is reported.
pub(super) async fn open_folder(emit: Emitter, path: PathBuf) {
    let folder = folder_of(&path);
    let program = opener();
    match tokio::process::Command::new(program)
        .arg(&folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            // Reap it when it ends soon (xdg-open does); tokio reaps a slower one.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await;
        }
        Err(e) => emit.error(format!(
            "cannot open {}: {program} did not start ({e}); open the folder yourself",
            folder.display()
        )),
    }
}
