//! `skill-metrics`: record, ingest and inspect AI-assistant skill usage.

mod commands;
mod output;
mod progress;
mod store;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use crate::store::StoreArg;

#[derive(Parser)]
#[command(
    name = "skill-metrics",
    version,
    about = "Records how AI-assistant skills are used and keeps exact per-skill metrics."
)]
struct Cli {
    /// Where the store lives: sqlite:PATH, sqlite::memory: or postgres://USER:PASS@HOST/DB.
    /// Defaults to skill-metrics.db in the platform's data folder
    /// (~/.local/share/skill-metrics/ on Linux).
    #[arg(
        long,
        global = true,
        env = "SKILL_METRICS_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

    #[command(subcommand)]
    command: commands::Command,
}

/// A failure that has already been reported and only needs an exit code.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Reported {}

/// The URL the command line or the environment names, read before clap
/// parses anything: `--help` must name the store without opening it.
fn named_url() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--database-url" {
            return args.next();
        }
        if let Some(url) = arg.strip_prefix("--database-url=") {
            return Some(url.to_owned());
        }
    }
    std::env::var("SKILL_METRICS_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Parses the command line; `--help` ends by naming the store in use.
fn parse() -> (Cli, bool) {
    let named = StoreArg {
        given: named_url(),
        on_command_line: false,
    };
    let command = Cli::command().after_help(format!(
        "Store in use: {}\n`skill-metrics info` shows its size and what it holds.",
        named.describe()
    ));
    let matches = command.get_matches();
    let on_command_line =
        matches.value_source("database_url") == Some(clap::parser::ValueSource::CommandLine);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (cli, on_command_line)
}

fn main() -> ExitCode {
    // SAFETY: first thing in `main`, before any other thread exists or
    // anything has used SQLite: the contract of `tune_sqlite` (decision D66).
    #[allow(unsafe_code)]
    let tuning = unsafe { infrastructure::tune_sqlite() };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("SKILL_METRICS_LOG"))
        .with_writer(std::io::stderr)
        .init();
    tracing::debug!(?tuning, "process-wide SQLite settings");
    let (cli, on_command_line) = parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = StoreArg {
        given: cli.database_url,
        on_command_line,
    };
    match runtime.block_on(commands::run(&store, cli.command)) {
        Ok(code) => code,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
