//! `skill-metrics`: record, ingest and inspect AI-assistant skill usage.

mod batches;
mod bench;
mod data;
mod demo;
mod ingest;
mod legacy;
mod migrate;
mod read;
mod record;
mod table;
mod transcripts;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use infrastructure::{ConnectOptions, DatabaseUrl, MigrationMode, SkillMetricsStore};

/// The store used when neither `--database-url` nor the environment names one.
const DEFAULT_URL: &str = "sqlite://skill-metrics.db";

#[derive(Parser)]
#[command(
    name = "skill-metrics",
    version,
    about = "Records how AI-assistant skills are used and keeps exact per-skill metrics."
)]
struct Cli {
    /// Where the store lives: sqlite:PATH, sqlite::memory: or postgres://USER:PASS@HOST/DB.
    /// Defaults to the SQLite file `skill-metrics.db` in the current directory.
    #[arg(
        long,
        global = true,
        env = "SKILL_METRICS_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the write and read paths on a fresh store (one JSON line on stdout).
    Bench(bench::Args),
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
    /// Record a realistic demo day through the tracking handle, then show the summary.
    Demo,
    /// Manage the schema: up, down, status, verify.
    Migrate {
        #[command(subcommand)]
        action: migrate::Action,
    },
    /// Record one invocation and print its id.
    Record(record::Args),
    /// Ingest JSON Lines (one invocation per line; keys are skill_invocation's columns).
    Ingest(ingest::Args),
    /// Import the legacy skill_metrics.json (a file, or a folder to search).
    ImportLegacy(legacy::Args),
    /// Import skill (or all tool) usage from Claude Code transcripts.
    ImportClaudeCode(transcripts::Args),
    /// Import skill (or all tool) usage from Codex CLI session files.
    ImportCodex(transcripts::Args),
    /// Write the log as JSON Lines in the ingest format.
    Export(data::ExportArgs),
    /// Copy everything from one store to another (e.g. SQLite to PostgreSQL).
    Copy(data::CopyArgs),
    /// Snapshot a SQLite store to FILE while writers keep writing.
    Backup(data::BackupArgs),
    /// Refresh planner statistics and indexes.
    Maintain,
    /// Recompute every aggregate from the log.
    Rebuild,
    /// Per-skill metrics (all skills, or those named).
    Metrics(read::MetricsArgs),
    /// A session's skills and invocations; `session end ID` records its end.
    Session(read::SessionArgs),
    /// A skill's invocations per hour, day or week.
    Timeline(read::TimelineArgs),
    /// The newest invocations.
    Recent(read::RecentArgs),
    /// The dashboard summary over all skills.
    Summary(read::SummaryArgs),
    /// Full-text search over skill names and workflow paths.
    Search(read::SearchArgs),
    /// Compare stored aggregates with the log; exit 1 on any difference.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
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
    let cli = Cli::parse();
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn open(
    url: &Option<String>,
    mode: MigrationMode,
) -> anyhow::Result<SkillMetricsStore> {
    let url = DatabaseUrl::parse(url.as_deref().unwrap_or(DEFAULT_URL))?;
    let shown = url.to_string();
    let mut options = ConnectOptions::new(url);
    options.migrations = mode;
    SkillMetricsStore::connect_with(options)
        .await
        .with_context(|| format!("opening {shown}"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let url = cli.database_url;
    match cli.command {
        // These manage their own stores (or none yet).
        Command::Bench(args) => bench::run(&url, args).await,
        Command::Migrate { action } => migrate::run(&url, action).await,
        Command::Copy(args) => data::copy(args).await,
        command => run_on(&open(&url, MigrationMode::Apply).await?, command).await,
    }
}

/// The commands that work on one store, opened (and migrated) once.
async fn run_on(store: &SkillMetricsStore, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Bench(_) | Command::Migrate { .. } | Command::Copy(_) => {
            anyhow::bail!("internal: this command does not run on an opened store")
        }
        Command::BenchWorker(args) => bench::worker(store, args).await,
        Command::Demo => demo::run(store).await,
        Command::Record(args) => record::run(store, args).await,
        Command::Ingest(args) => ingest::run(store, args).await,
        Command::Metrics(args) => read::metrics(store, args).await,
        Command::Session(args) => read::session(store, args).await,
        Command::Timeline(args) => read::timeline(store, args).await,
        Command::Recent(args) => read::recent(store, args).await,
        Command::Summary(args) => read::summary(store, args).await,
        Command::Search(args) => read::search(store, args).await,
        Command::ImportLegacy(args) => legacy::run(store, args).await,
        Command::ImportClaudeCode(args) => {
            transcripts::run(store, args, transcripts::Format::Claude).await
        }
        Command::ImportCodex(args) => {
            transcripts::run(store, args, transcripts::Format::Codex).await
        }
        Command::Export(args) => data::export(store, args).await,
        Command::Backup(args) => data::backup(store, args).await,
        Command::Maintain => data::maintain(store).await,
        Command::Rebuild => {
            let started = std::time::Instant::now();
            let report = store.rebuild().await?;
            println!(
                "rebuilt {} skills and {} session-skill rows from {} invocations in {:.2?}",
                report.skills_checked,
                report.session_skills_checked,
                report.invocations_read,
                started.elapsed()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { json } => {
            let report = store.verify().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for d in &report.differences {
                    println!(
                        "{} {:?} {}: stored {} but the log gives {}",
                        d.table, d.key, d.field, d.stored, d.expected
                    );
                }
                println!(
                    "{}: {} invocations, {} skills, {} session-skill rows, {} sessions, {} differences",
                    if report.is_clean() { "ok" } else { "DRIFT" },
                    report.invocations_read,
                    report.skills_checked,
                    report.session_skills_checked,
                    report.sessions_checked,
                    report.differences.len()
                );
            }
            Ok(if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
