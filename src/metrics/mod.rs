//! Analytics Cache V2 metrics: per-datasource statistics (the seed's
//! `DatasourceCacheMetrics` with its summary), the health scoring, the health
//! check with actionable recommendations, index integrity, and trends for
//! plots and reports.
//!
//! Everything reads bounded data: the meta hash each swap writes, one SCARD,
//! the reader counters, samples (SRANDMEMBER) and INFO; one pipeline per
//! datasource in its `{ds:N}` slot, many in flight. Nothing sends KEYS or
//! asks for an unbounded reply, so stats and health stay fast with thousands
//! of datasources and millions of keys, on a standalone server or a cluster.

mod collect;
pub mod discover;
pub mod health;
pub mod integrity;
pub mod observe;
pub mod score;
mod stats;
pub mod trends;
pub mod types;

pub use health::{IntegrityReport, check, check_with, verify};
pub use observe::Observations;
pub use observe::usage::{GroupUsage, ReadUsage, UsageClock};
pub use score::{ScoreInput, score};
pub use stats::{stats, stats_with};
pub use trends::{MemoryPoint, TrendPoint, TrendTotals, Trends, WarmEvent, trend_sampler, trends};
pub use types::{
    DatasourceCacheMetrics, FigureSources, Health, HealthIssue, HealthReport, HealthScore, Overall,
    READS_NOT_REPORTED, Severity, Source, StatsReport, StatsSummary,
};
