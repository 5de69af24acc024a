//! The desktop window (feature `gui`). It renders what the backend reports
//! and sends it commands; see `crate::backend` for the other side.
//!
//! - `app`: the eframe app (event draining, frame layout, command sending)
//! - `model`: what the backend has said; `state`: what is persisted
//! - `top_bar`, `tabs/*`: the screens; `dialogs/*`: modal dialogs
//! - `tools/*`: Keys and Redis tabs; `admin/*`: Settings, Audit, Export
//! - `widgets/*`: cards, progress, plots, tiles, status chips, toasts
//! - `clock`, `format`, `theme`: injected time, units, colours

pub mod admin;
pub mod app;
pub mod clock;
pub mod dialogs;
pub mod format;
pub mod model;
pub mod state;
pub mod tabs;
pub mod theme;
pub mod tools;
pub mod top_bar;
pub mod widgets;

pub use app::{AppConfig, BackendLink, CacheDeckApp};
pub use clock::Clock;

use eframe::egui;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::backend::{self, Repaint, Startup};
use crate::config::Overrides;
use crate::demo_env;

/// The window icon (also used by the .desktop file).
pub const ICON_PNG: &[u8] = include_bytes!("../../assets/icon.png");

/// Longest wait on exit for this window's jobs to clean up their shadow keys.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(20);

/// Window options: title, icon, sizes; size and position are persisted.
pub fn native_options() -> eframe::NativeOptions {
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("cachedeck — Analytics Cache V2")
        .with_app_id("cachedeck")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([720.0, 480.0]);
    match eframe::icon_data::from_png_bytes(ICON_PNG) {
        Ok(icon) => viewport = viewport.with_icon(Arc::new(icon)),
        Err(e) => tracing::warn!("the window icon did not load: {e}"),
    }
    eframe::NativeOptions {
        viewport,
        persist_window: true,
        ..Default::default()
    }
}

/// Opens the window; returns the process exit code.
pub fn run(runtime: tokio::runtime::Runtime, cli: crate::cli::Cli, demo: bool) -> i32 {
    if demo && demo_env::find_on_path("redis-server").is_none() {
        // The window says it too; stderr covers a machine without a display.
        eprintln!("error: {}", demo_env::INSTALL_HINT);
    }
    let startup = if demo {
        Startup::Demo
    } else {
        Startup::Profile(Overrides {
            profile: cli.profile.clone(),
            redis_urls: cli.redis_url.clone(),
            database_url: cli.database_url.clone(),
        })
    };
    let egui_ctx: Arc<OnceLock<egui::Context>> = Arc::new(OnceLock::new());
    let wake = egui_ctx.clone();
    let repaint: Repaint = Arc::new(move || {
        if let Some(ctx) = wake.get() {
            ctx.request_repaint();
        }
    });
    let (handle, events) = backend::spawn(runtime.handle(), startup, repaint);
    let link = BackendLink {
        commands: handle.commands.clone(),
        events,
    };
    let result = eframe::run_native(
        "cachedeck",
        native_options(),
        Box::new(move |cc| {
            let _ = egui_ctx.set(cc.egui_ctx.clone());
            Ok(Box::new(CacheDeckApp::new(
                cc,
                link,
                AppConfig {
                    clock: Clock::system(),
                    demo,
                },
            )))
        }),
    );
    // The window is closed: stop the backend (its jobs clean up, a demo
    // redis-server is killed).
    runtime.block_on(handle.shutdown(SHUTDOWN_WAIT));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!(
                "error: cannot open the window: {e} (a desktop session with X11 or Wayland is needed; \
                 the subcommands work without one, see --help)"
            );
            1
        }
    }
}
