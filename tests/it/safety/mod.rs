//! Issue 14, "safe to open, safe to run": exports a spreadsheet cannot run,
//! datasource SQL that cannot write, an audit log that fails closed, TLS,
//! read-only Redis users, a bounded inspector and a bounded event channel.

mod audit_log;
mod csv_injection;
mod event_channel;
mod inspector;
mod readonly_redis;
mod source_readonly;
mod tls;
