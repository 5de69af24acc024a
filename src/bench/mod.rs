//! Benchmarks behind BENCHMARKS.md, runnable as `cachedeck bench …` against
//! the configured Redis and database. Big data lives here, not in CI.

pub mod browse;
pub mod groups;
mod probe;
pub mod read;
pub mod warm;
