//! Entry point: parses arguments and picks the window, the CLI or the agent.

use clap::Parser;

use cachedeck::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    // The agent is a server process: its routine lines are worth seeing.
    let default_filter = if matches!(cli.command, Some(Command::Agent(..))) {
        "info,sqlx=error"
    } else {
        "warn,sqlx=error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(cachedeck::redact::RedactingStderr)
        // Plain text: colour codes between a key and its value would hide
        // it from the redaction.
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    #[cfg(feature = "gui")]
    if matches!(cli.command, None | Some(Command::Demo)) {
        let demo = matches!(cli.command, Some(Command::Demo));
        std::process::exit(cachedeck::ui::run(runtime, cli, demo));
    }
    #[cfg(not(feature = "gui"))]
    let _ = Command::Demo;
    let code = runtime.block_on(cachedeck::cli::run(cli));
    std::process::exit(code);
}
