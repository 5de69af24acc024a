//! Reusable pieces of the window: datasource cards, progress, plots,
//! summary tiles, status chips, the job history table, notifications and
//! the sampled read usage.

pub mod cards;
pub mod history;
pub mod plots;
pub mod progress;
pub mod status;
pub mod tiles;
pub mod toasts;
pub mod usage;
