//! The command line: argument parsing here, the work in one file per
//! subcommand. Output is human text, or JSON with `--json`; errors are one
//! line on stderr and the exit codes of DESIGN.md.

mod agent;
mod analyze;
mod audit;
mod bench;
mod cache_ops;
mod ctx;
mod datasource;
mod demo_data;
mod grant;
mod inspect;
mod jobs_cmd;
mod keys;
mod metrics_cmd;
mod migrate;
mod profile;
mod purge;
mod redis_info;
mod report;
mod schedule;
mod slowlog;
mod ttl;
mod warm;
mod warm_follow;

use clap::{Args, Parser, Subcommand};

pub use agent::AgentArgs;
pub use audit::AuditArgs;
pub use ctx::Ctx;
pub use grant::GrantCmd;
pub use profile::ProfileCmd;
pub use schedule::{ScheduleAddArgs, ScheduleCmd};

/// cachedeck: Analytics Cache V2 command center.
///
/// `Debug` is written by hand: the URLs may carry passwords. The values of
/// the environment variables behind them are never shown by `--help`.
#[derive(Parser)]
#[command(name = "cachedeck", version, about, long_about = None)]
pub struct Cli {
    /// Connection profile to use.
    #[arg(long, global = true, env = "CACHEDECK_PROFILE")]
    pub profile: Option<String>,
    /// Redis URL, or several cluster seed nodes separated by commas.
    #[arg(
        long,
        global = true,
        env = "CACHEDECK_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// App database URL (postgres://… or sqlite://…).
    #[arg(
        long,
        global = true,
        env = "CACHEDECK_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hide = |u: &Option<String>| u.as_deref().map(crate::redact::redact);
        f.debug_struct("Cli")
            .field("profile", &self.profile)
            .field("redis_url", &hide(&self.redis_url))
            .field("database_url", &hide(&self.database_url))
            .field("json", &self.json)
            .field("command", &self.command)
            .finish()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the window on a ready local demo (own redis-server, SQLite data).
    Demo,
    /// Create or upgrade the store schema.
    Migrate,
    /// Manage the datasource registry.
    #[command(subcommand)]
    Datasource(DatasourceCmd),
    /// Create a realistic demo analytics table and register a datasource for it.
    DemoData(DemoDataArgs),
    /// Warm datasources (shadow warm + atomic swap); waits until the jobs end.
    Warm(WarmArgs),
    /// Active and recent warm jobs.
    Status,
    /// Cache statistics: summary and one line per datasource (health, age, size, hit rate).
    Stats,
    /// Cache health check: overall verdict, issues and recommendations.
    Health {
        /// Exit with code 7 when any error-level issue exists.
        #[arg(long)]
        strict: bool,
    },
    /// Pause a running warm job (it keeps its lock and stops reading).
    Pause { job_id: String },
    /// Resume a paused warm job.
    Resume { job_id: String },
    /// Cancel a warm job (its shadow keys are removed; the live cache is untouched).
    Cancel { job_id: String },
    /// Read cached rows the way the application does (one generation per query).
    Query(QueryArgs),
    /// Delete a datasource's cache, or the entries matching a selection.
    Invalidate(InvalidateArgs),
    /// The benchmarks behind BENCHMARKS.md.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Browse keys with SCAN (every master; never KEYS).
    Keys(KeysArgs),
    /// Show a key's type, TTL, encoding, memory, meaning and a page of its value.
    Inspect(InspectArgs),
    /// Delete every key matching a pattern (UNLINK in batches).
    Purge(PurgeArgs),
    /// Set, change or remove the expiry of a key or of every key matching a pattern.
    Ttl(TtlArgs),
    /// Generic Redis statistics: hit rate, memory, keys, ops/sec, key distribution.
    RedisInfo(RedisInfoArgs),
    /// Memory and big-key analysis: top keys, namespaces, types, TTLs, advice (paced SCAN).
    Analyze(AnalyzeArgs),
    /// The audit log: every write action and every refused attempt.
    Audit(AuditArgs),
    /// Warm schedules (cron in an IANA zone): add, list with next runs, remove, preview.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Permission grants (settings:write:all): add, list, remove.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// Headless: run schedules, clean up after stopped jobs, send health alerts.
    Agent(AgentArgs),
    /// Profiles: list them with their password references; store a password
    /// in the OS keyring (`profile set-secret --profile NAME --redis`).
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Cache efficiency report (HTML with charts, CSV tables or JSON) for a range.
    Report(report::ReportArgs),
    /// Slow commands and latency events of every master; `--reset --yes` clears the slow log.
    Slowlog(slowlog::SlowlogArgs),
}

#[derive(Debug, Subcommand)]
pub enum DatasourceCmd {
    /// Register a datasource.
    Add(DatasourceArgs),
    /// Change a datasource (unset flags keep their value).
    Edit(DatasourceEditArgs),
    /// List datasources.
    List,
    /// Remove a datasource from the registry (its cache stays until invalidated).
    Remove {
        #[arg(long)]
        id: i64,
    },
    /// List datasource ids that have a cache in Redis but are not registered,
    /// with their size (SCAN of every master; reads only).
    Discover,
    /// Store the source database's password of a datasource in the OS
    /// keyring (entry `datasource/ID`) and point the datasource at it.
    /// Reads one line from standard input (without echo on a terminal).
    SetSecret {
        #[arg(long)]
        id: i64,
    },
}

/// Where a datasource's source password comes from. A source URL never
/// carries it (such a URL is refused).
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct SourcePasswordArgs {
    /// The source's password is in this environment variable (of the
    /// process that warms: CLI, agent or window).
    #[arg(long, value_name = "VAR")]
    pub source_password_env: Option<String>,
    /// The source's password is in the OS keyring under this entry
    /// (service `cachedeck`; `datasource set-secret` stores one).
    #[arg(long, value_name = "NAME")]
    pub source_password_keyring: Option<String>,
    /// The source takes the profile's database password.
    #[arg(long)]
    pub source_password_profile: bool,
    /// The source needs no password (edit: forget the reference).
    #[arg(long)]
    pub no_source_password: bool,
}

impl SourcePasswordArgs {
    /// The reference to store: `None` when no flag was given (keep it),
    /// `Some(None)` to clear it.
    pub fn reference(&self) -> Option<Option<String>> {
        if let Some(var) = &self.source_password_env {
            Some(Some(format!("env:{var}")))
        } else if let Some(name) = &self.source_password_keyring {
            Some(Some(format!("keyring:{name}")))
        } else if self.source_password_profile {
            Some(Some("profile".into()))
        } else if self.no_source_password {
            Some(None)
        } else {
            None
        }
    }
}

#[derive(Debug, Args)]
pub struct DatasourceArgs {
    #[arg(long)]
    pub id: i64,
    #[arg(long)]
    pub name: String,
    /// Query returning measure, practice_uid, provider_uid, frequency and any other columns.
    #[arg(long)]
    pub sql: String,
    /// Where the rows come from (default: the profile's database), without
    /// a password (see the --source-password-* flags).
    #[arg(long)]
    pub source_url: Option<String>,
    #[command(flatten)]
    pub source_password: SourcePasswordArgs,
    /// Age after which the cache is stale, e.g. 4h.
    #[arg(long)]
    pub stale_after: Option<String>,
    /// Lifetime of cached entries, e.g. 48h.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Register it disabled (not warmed by Warm All or schedules).
    #[arg(long)]
    pub disabled: bool,
    /// How long one query on the source may run, e.g. 30s or 10m (queries
    /// always run read-only).
    #[arg(long, default_value = "10m")]
    pub statement_timeout: String,
}

#[derive(Debug, Args)]
pub struct DatasourceEditArgs {
    #[arg(long)]
    pub id: i64,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub sql: Option<String>,
    /// Without a password (see the --source-password-* flags).
    #[arg(long)]
    pub source_url: Option<String>,
    #[command(flatten)]
    pub source_password: SourcePasswordArgs,
    #[arg(long)]
    pub stale_after: Option<String>,
    #[arg(long)]
    pub ttl: Option<String>,
    #[arg(long)]
    pub enabled: Option<bool>,
    /// How long one query on the source may run, e.g. 30s or 10m.
    #[arg(long)]
    pub statement_timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoDataArgs {
    /// Number of rows to generate.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,
    /// Table to create.
    #[arg(long, default_value = "analytics_demo")]
    pub table: String,
    /// Datasource id to register for the table.
    #[arg(long, default_value_t = 1)]
    pub datasource_id: i64,
    /// Database to write to (default: the profile's database).
    #[arg(long)]
    pub source_url: Option<String>,
    /// Drop and recreate the table if it exists.
    #[arg(long)]
    pub replace: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// COPY rate vs warm rate, peak RSS, swap impact on other clients, reader latency.
    Warm {
        /// Demo rows to generate and warm.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
    },
    /// Latency another client sees while one query reads every entry of a
    /// measure and frequency (bounded reader vs one script).
    Read {
        /// Entries of the one measure and frequency read.
        #[arg(long, default_value_t = 60_000)]
        entries: u64,
    },
    /// A datasource of many distinct groups: cold warm and refresh times, worst PING latency during each.
    Groups {
        /// Distinct groups (one or two rows each).
        #[arg(long, default_value_t = 1_200_000)]
        groups: u64,
    },
    /// Latency another client sees while the key browser loads every key.
    Browse {
        /// Keys to write and browse.
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
    },
}

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Datasource ids to warm.
    #[arg(long, num_args = 1.., required_unless_present = "all", conflicts_with = "all")]
    pub datasource: Vec<i64>,
    /// Warm every enabled datasource.
    #[arg(long)]
    pub all: bool,
    /// Warm even when the cache was warmed recently, and write every index
    /// set anew (repairs index sets damaged by hand; an unforced refresh
    /// changes only the members that differ).
    #[arg(long)]
    pub force: bool,
    /// Queue the jobs for the workers (`cachedeck agent`) and return at once
    /// with their ids; follow them with `cachedeck status`.
    #[arg(long)]
    pub detach: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[arg(long)]
    pub datasource: i64,
    #[arg(long)]
    pub measure: String,
    #[arg(long)]
    pub frequency: String,
    /// Any of these practices (repeat the flag).
    #[arg(long)]
    pub practice: Vec<String>,
    /// Any of these providers (repeat the flag).
    #[arg(long)]
    pub provider: Vec<String>,
    /// Include rows whose provider is NULL.
    #[arg(long)]
    pub null_provider: bool,
}

#[derive(Debug, Args)]
pub struct InvalidateArgs {
    #[arg(long)]
    pub datasource: i64,
    #[arg(long)]
    pub measure: Option<String>,
    #[arg(long)]
    pub practice: Vec<String>,
    #[arg(long)]
    pub provider: Vec<String>,
    /// Select entries whose provider is NULL.
    #[arg(long)]
    pub null_provider: bool,
    #[arg(long)]
    pub frequency: Option<String>,
}

/// `cachedeck keys PATTERN [--type T] [--limit N]`
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// SCAN MATCH glob, e.g. `cache:{ds:1}:*`.
    pub pattern: String,
    /// Only keys of this type (string, hash, list, set, zset, stream).
    #[arg(long = "type")]
    pub key_type: Option<String>,
    /// Most keys to list.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `cachedeck inspect KEY | --key-hex HEX`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The key name.
    #[arg(required_unless_present = "key_hex", conflicts_with = "key_hex")]
    pub key: Option<String>,
    /// The key's exact bytes in hex (for names that are not text).
    #[arg(long)]
    pub key_hex: Option<String>,
    /// Elements per page of a collection.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Page cursor printed by the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `cachedeck purge PATTERN (--dry-run | --yes)`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("purge_mode").required(true).args(["dry_run", "yes"])))]
pub struct PurgeArgs {
    /// SCAN MATCH glob of the keys to delete.
    pub pattern: String,
    /// Count and sample the matching keys; delete nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Delete them (also confirms a pattern that matches every key).
    #[arg(long)]
    pub yes: bool,
}

/// `cachedeck ttl (KEY | --pattern P) (SECONDS | persist)`
#[derive(Debug, Args)]
pub struct TtlArgs {
    /// KEY and SECONDS|persist, or only SECONDS|persist with --pattern / --key-hex.
    #[arg(num_args = 1..=2, value_names = ["KEY", "SECONDS|persist"], required = true)]
    pub args: Vec<String>,
    /// Change every key matching this SCAN MATCH glob.
    #[arg(long, conflicts_with = "key_hex")]
    pub pattern: Option<String>,
    /// The key's exact bytes in hex.
    #[arg(long)]
    pub key_hex: Option<String>,
    /// Confirm a pattern that matches every key.
    #[arg(long)]
    pub yes: bool,
}

/// `cachedeck redis-info`
#[derive(Debug, Args)]
pub struct RedisInfoArgs {
    /// Keys sampled (over all masters) for the key distribution.
    #[arg(long, default_value_t = 10_000)]
    pub sample: usize,
}

/// `cachedeck analyze [--pattern P] [--type T] [--sample N | --full] [--top K] [--depth D]`
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// SCAN MATCH glob of the keys to analyse.
    #[arg(long, default_value = "*")]
    pub pattern: String,
    /// Only keys of this type (string, hash, list, set, zset, stream).
    #[arg(long = "type")]
    pub key_type: Option<String>,
    /// Analyse about this many keys and scale the figures to the keyspace
    /// (estimates). Without it (or with --full) every key is analysed.
    #[arg(long, conflicts_with = "full")]
    pub sample: Option<u64>,
    /// Analyse every key (the default).
    #[arg(long)]
    pub full: bool,
    /// Keys in each top list.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// `:` segments that make a namespace (a `{…}` hash tag is never split).
    #[arg(long, default_value_t = 2)]
    pub depth: usize,
}

/// Runs a parsed command line (not the GUI ones) and returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let ctx = Ctx::new(&cli);
    let command = audit::command_name(&cli.command);
    let result = match cli.command {
        Some(Command::Migrate) => migrate::run(&ctx).await,
        Some(Command::Datasource(cmd)) => datasource::run(&ctx, cmd).await,
        Some(Command::DemoData(args)) => demo_data::run(&ctx, args).await,
        Some(Command::Warm(args)) => warm::run(&ctx, args).await,
        Some(Command::Status) => jobs_cmd::status(&ctx).await,
        Some(Command::Stats) => metrics_cmd::stats(&ctx).await,
        Some(Command::Health { strict }) => metrics_cmd::health(&ctx, strict).await,
        Some(Command::Pause { job_id }) => {
            jobs_cmd::control(&ctx, &job_id, crate::jobs::ControlRequest::Pause).await
        }
        Some(Command::Resume { job_id }) => {
            jobs_cmd::control(&ctx, &job_id, crate::jobs::ControlRequest::Resume).await
        }
        Some(Command::Cancel { job_id }) => {
            jobs_cmd::control(&ctx, &job_id, crate::jobs::ControlRequest::Cancel).await
        }
        Some(Command::Query(args)) => cache_ops::query(&ctx, args).await,
        Some(Command::Invalidate(args)) => cache_ops::invalidate(&ctx, args).await,
        Some(Command::Bench(cmd)) => bench::run(&ctx, cmd).await,
        Some(Command::Keys(args)) => keys::run(&ctx, args).await,
        Some(Command::Inspect(args)) => inspect::run(&ctx, args).await,
        Some(Command::Purge(args)) => purge::run(&ctx, args).await,
        Some(Command::Ttl(args)) => ttl::run(&ctx, args).await,
        Some(Command::RedisInfo(args)) => redis_info::run(&ctx, args).await,
        Some(Command::Analyze(args)) => analyze::run(&ctx, args).await,
        Some(Command::Audit(args)) => audit::run(&ctx, args).await,
        Some(Command::Schedule(cmd)) => schedule::run(&ctx, cmd).await,
        Some(Command::Grant(cmd)) => grant::run(&ctx, cmd).await,
        Some(Command::Agent(args)) => agent::run(&ctx, args).await,
        Some(Command::Profile(cmd)) => profile::run(&ctx, cli.profile.as_deref(), cmd).await,
        Some(Command::Report(args)) => report::run(&ctx, args).await,
        Some(Command::Slowlog(args)) => slowlog::run(&ctx, args).await,
        Some(Command::Demo) | None => Err(crate::Error::Invalid(
            "this build has no window; run a subcommand (see --help)".into(),
        )),
    };
    ctx.finish_audit(&command, &result).await;
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::redact::redact(&e.to_string()));
            e.exit_code()
        }
    }
}
