//! The native file dialog (rfd, through the XDG desktop portal), run on its
//! own thread so the window never waits on it. Where no dialog can open (no
//! portal service, no zenity) it returns nothing, and the path field beside
//! the Browse button stays the way in.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use eframe::egui;

/// What to ask the dialog for.
#[derive(Debug, Clone, PartialEq)]
pub enum PickKind {
    /// An existing file to read (e.g. a CA certificate).
    Open {
        /// Window title.
        title: String,
        /// Filter name and extensions, e.g. ("PEM", ["pem", "crt"]).
        filter: Option<(String, Vec<String>)>,
    },
    /// A file to write (exports).
    Save {
        /// Window title.
        title: String,
        /// Suggested file name.
        file_name: String,
        /// Folder to start in, when known.
        directory: Option<PathBuf>,
        /// Filter name and extensions.
        filter: Option<(String, Vec<String>)>,
    },
}

/// One dialog at a time, answered through a channel the window polls.
#[derive(Default)]
pub struct Picker {
    /// The open dialog's answer, when one is open.
    waiting: Option<Receiver<Option<PathBuf>>>,
    /// The last dialog closed without a path (cancelled, or none could open).
    pub gave_nothing: bool,
}

impl Picker {
    /// True while a dialog is open.
    pub fn is_open(&self) -> bool {
        self.waiting.is_some()
    }

    /// Opens a dialog on a thread of its own; the window is repainted when it
    /// closes.
    pub fn open(&mut self, ctx: &egui::Context, kind: PickKind) {
        if self.waiting.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let path = run_dialog(kind);
                let _ = tx.send(path);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.waiting = Some(rx);
                self.gave_nothing = false;
            }
            Err(e) => {
                tracing::warn!("cannot start the file dialog: {e}");
                self.gave_nothing = true;
            }
        }
    }

    /// The chosen path once the dialog has closed with one.
    pub fn poll(&mut self) -> Option<PathBuf> {
        let rx = self.waiting.as_ref()?;
        match rx.try_recv() {
            Ok(Some(path)) => {
                self.waiting = None;
                Some(path)
            }
            Ok(None) | Err(TryRecvError::Disconnected) => {
                self.waiting = None;
                self.gave_nothing = true;
                None
            }
            Err(TryRecvError::Empty) => None,
        }
    }
}

/// Runs the blocking dialog (on the dialog thread).
fn run_dialog(kind: PickKind) -> Option<PathBuf> {
    match kind {
        PickKind::Open { title, filter } => {
            let mut d = rfd::FileDialog::new().set_title(title);
            if let Some((name, exts)) = filter {
                d = d.add_filter(name, &exts).add_filter("All files", &["*"]);
            }
            d.pick_file()
        }
        PickKind::Save {
            title,
            file_name,
            directory,
            filter,
        } => {
            let mut d = rfd::FileDialog::new()
                .set_title(title)
                .set_file_name(file_name)
                .set_can_create_directories(true);
            if let Some(dir) = directory.filter(|d| d.is_dir()) {
                d = d.set_directory(dir);
            }
            if let Some((name, exts)) = filter {
                d = d.add_filter(name, &exts);
            }
            d.save_file()
        }
    }
}

/// The hint shown under a path field after a dialog gave nothing.
pub const NO_DIALOG_HINT: &str = "No file chosen (if no dialog appeared, this desktop has no file portal): type the path instead.";
