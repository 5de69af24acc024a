//! The integration tests: ONE test binary (`cargo test --test it`), one module
//! per area, all sharing the real-server harness in `tests/support`.
//! Add an area with `mod NAME;` below and a file `tests/it/NAME.rs`.
//! Run one area with `cargo test --test it NAME::`.

#[path = "../support/mod.rs"]
#[macro_use]
mod support;

mod adopt;
mod analyze;
mod fencing;
mod foundation;
mod governance;
mod gui;
mod gui_admin;
mod gui_tools;
mod jobs;
mod jobs_limits;
mod jobs_workers;
mod metrics;
mod observe;
mod read_contract;
mod read_usage;
mod redis_admin;
mod report;
mod safety;
mod secrets;
mod slowlog;
mod vectors;
mod warm_cli;
mod warming;
