//! Reusable pieces of the window: datasource cards, progress, plots,
//! summary tiles, status chips, the job history table and notifications.

pub mod cards;
pub mod history;
pub mod plots;
pub mod progress;
pub mod status;
pub mod tiles;
pub mod toasts;
