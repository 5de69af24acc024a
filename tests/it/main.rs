//! The integration tests: ONE test binary (`cargo test --test it`), one module
//! per area, all sharing the real-server harness in `tests/support`.
//! Add an area with `mod NAME;` below and a file `tests/it/NAME.rs`.
//! Run one area with `cargo test --test it NAME::`.

#[path = "../support/mod.rs"]
mod support;

mod analyze;
mod fencing;
mod foundation;
mod governance;
mod gui;
mod gui_admin;
mod gui_tools;
mod jobs;
mod metrics;
mod observe;
mod read_contract;
mod redis_admin;
mod report;
mod safety;
mod secrets;
mod vectors;
mod warm_cli;
mod warming;
