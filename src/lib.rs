//! cachedeck's core: key schema, connections, sources, warming, metrics,
//! jobs, store and reports. No UI code lives here (the `gui` feature adds
//! `ui`, which depends on this, never the other way round).

pub mod actor;
pub mod backend;
pub mod bench;
pub mod cache;
mod cluster_tls;
pub mod config;
pub mod csv_safe;
pub mod demo_env;
pub mod error;
pub mod governance;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod redact;
pub mod redis_admin;
pub mod redis_conn;
pub mod report;
pub mod source;
pub mod store;
pub mod text;

pub use error::{Error, Result};
pub mod cli;
#[cfg(feature = "gui")]
pub mod ui;
