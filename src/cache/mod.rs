//! Analytics Cache V2 operations: shadow warming with an atomic swap
//! (`swap`: WATCH + MULTI/EXEC on a connection of its own), the
//! warm lock, reads of one generation, invalidation and reader statistics.

pub mod adopt;
mod estimate;
pub mod invalidate;
pub mod lock;
pub mod meta;
pub mod preflight;
pub mod query;
pub mod set_scan;
pub mod shadow;
pub mod stats;
mod swap;
pub mod trend;
pub mod warm;
mod written;

use std::sync::LazyLock;

/// The Lua scripts, loaded once (EVALSHA with EVAL fallback by the driver).
pub(crate) mod scripts {
    use super::LazyLock;
    use redis::Script;

    pub static ACQUIRE: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/acquire.lua")));
    pub static QUERY: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/query.lua")));
    pub static RELEASE: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/release.lua")));
    pub static REPAIR: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/repair.lua")));
    pub static RENEW: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/renew.lua")));
    pub static INVALIDATE_BEGIN: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/invalidate_begin.lua")));
    pub static INVALIDATE_ENTRIES: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/invalidate_entries.lua")));
    pub static UNLINK_FENCED: LazyLock<Script> =
        LazyLock::new(|| Script::new(include_str!("lua/unlink_fenced.lua")));
}

/// A script reply element as text (bulk, status or integer; anything else is empty).
pub(crate) fn value_text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

/// Schema version written into the meta hash by the swap.
pub const SCHEMA_VERSION: u32 = 1;
