//! The command line: argument parsing here, the work in one file per
//! subcommand. Output is human text, or JSON with `--json`; errors are one
//! line on stderr and the exit codes of DESIGN.md.

mod ctx;
mod datasource;
mod demo_data;
mod migrate;

use clap::{Args, Parser, Subcommand};

pub use ctx::Ctx;

/// cachedeck: Analytics Cache V2 command center.
#[derive(Debug, Parser)]
#[command(name = "cachedeck", version, about, long_about = None)]
pub struct Cli {
    /// Connection profile to use.
    #[arg(long, global = true, env = "CACHEDECK_PROFILE")]
    pub profile: Option<String>,
    /// Redis URL, or several cluster seed nodes separated by commas.
    #[arg(long, global = true, env = "CACHEDECK_REDIS_URL")]
    pub redis_url: Option<String>,
    /// App database URL (postgres://… or sqlite://…).
    #[arg(long, global = true, env = "CACHEDECK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// Where the rows come from (default: the profile's database).
    #[arg(long)]
    pub source_url: Option<String>,
    /// Age after which the cache is stale, e.g. 4h.
    #[arg(long)]
    pub stale_after: Option<String>,
    /// Lifetime of cached entries, e.g. 48h.
    #[arg(long)]
    pub ttl: Option<String>,
    /// Register it disabled (not warmed by Warm All or schedules).
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct DatasourceEditArgs {
    #[arg(long)]
    pub id: i64,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub sql: Option<String>,
    #[arg(long)]
    pub source_url: Option<String>,
    #[arg(long)]
    pub stale_after: Option<String>,
    #[arg(long)]
    pub ttl: Option<String>,
    #[arg(long)]
    pub enabled: Option<bool>,
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

/// Runs a parsed command line (not the GUI ones) and returns the exit code.
pub async fn run(cli: Cli) -> i32 {
    let ctx = Ctx::new(&cli);
    let result = match cli.command {
        Some(Command::Migrate) => migrate::run(&ctx).await,
        Some(Command::Datasource(cmd)) => datasource::run(&ctx, cmd).await,
        Some(Command::DemoData(args)) => demo_data::run(&ctx, args).await,
        Some(Command::Demo) | None => Err(crate::Error::Invalid(
            "this build has no window; run a subcommand (see --help)".into(),
        )),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
