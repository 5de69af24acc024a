//! The desktop window (feature `gui`).

/// Opens the window; returns the process exit code.
pub fn run(runtime: tokio::runtime::Runtime, cli: crate::cli::Cli, demo: bool) -> i32 {
    let _ = (runtime, cli, demo);
    eprintln!("error: the window is not built yet; run a subcommand (see --help)");
    2
}
