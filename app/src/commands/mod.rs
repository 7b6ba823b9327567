//! One file per command; this module names them and runs the one asked for.
//! A command opens the store only if it needs one, and then exactly once.

pub(crate) mod backup;
pub(crate) mod bench;
pub(crate) mod copy;
pub(crate) mod dashboard;
pub(crate) mod demo;
pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod info;
pub(crate) mod ingest;
pub(crate) mod insights;
pub(crate) mod maintain;
pub(crate) mod metrics;
pub(crate) mod migrate;
pub(crate) mod prune;
pub(crate) mod push;
pub(crate) mod rebuild;
pub(crate) mod recent;
pub(crate) mod record;
pub(crate) mod search;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod summary;
pub(crate) mod timeline;
pub(crate) mod token;
pub(crate) mod verify;

use std::process::ExitCode;

use clap::Subcommand;
use infrastructure::MigrationMode;

use crate::store::StoreArg;
use import::{Import, legacy, transcripts};

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Record one invocation (--completed, --abandoned or --error TYPE) and print its id.
    Record(record::Args),
    /// Ingest JSON Lines (one invocation per line; keys are skill_invocation's columns).
    Ingest(ingest::Args),
    /// Import history: the legacy JSON file, Claude Code transcripts, Codex sessions.
    Import {
        #[command(subcommand)]
        source: Import,
    },
    /// Per-skill metrics (all skills, or those named).
    Metrics(metrics::Args),
    /// The dashboard summary over all skills, as of the latest write.
    Summary(summary::Args),
    /// A skill's invocations per hour, day or week.
    Timeline(timeline::Args),
    /// What changed in a window against its baseline: regressions, reliability, use, retire candidates, hot spots.
    Insights(insights::Args),
    /// The newest invocations.
    Recent(recent::Args),
    /// Full-text search over skill names and workflow paths.
    Search(search::Args),
    /// A session's skills and invocations (`session show ID`), or record its end (`session end ID`).
    Session(session::Args),
    /// Which store is in use: its location, size and counts.
    Info(info::Args),
    /// Compare stored aggregates with the log; exit 1 on any difference.
    Verify(verify::Args),
    /// Recompute every aggregate from the log.
    Rebuild,
    /// Write the log as JSON Lines in the ingest format.
    Export(export::Args),
    /// Copy everything from one store to another (e.g. SQLite to PostgreSQL).
    Copy(copy::Args),
    /// Snapshot a SQLite store to FILE while writers keep writing.
    Backup(backup::Args),
    /// Refresh planner statistics and indexes.
    Maintain,
    /// Remove raw events before a time (optionally archived first); aggregates and rollups stay as they were.
    Prune(prune::Args),
    /// Serve the store over HTTP (the API), authenticated by bearer tokens.
    Serve(serve::Args),
    /// Open the dashboard: a one-time login link (opened in the browser, or printed) to a server of this store, started here if none runs.
    Dashboard(dashboard::Args),
    /// Send this store's log to a server, from where the last push there stopped (token from $SKILL_METRICS_TOKEN).
    Push(push::Args),
    /// The server's bearer tokens: create (shown once), list, revoke.
    Token {
        #[command(subcommand)]
        action: token::Action,
    },
    /// Manage the schema: up, down, status, verify.
    Migrate {
        #[command(subcommand)]
        action: migrate::Action,
    },
    /// Record a realistic demo day in a store of its own (or the one --database-url names), then show the summary.
    Demo,
    /// Measure the write and read paths on a fresh store (one JSON line on stdout).
    Bench(bench::Args),
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
    // The names before `import …` existed; kept so scripts keep working.
    #[command(hide = true)]
    ImportLegacy(legacy::Args),
    #[command(hide = true)]
    ImportClaudeCode(transcripts::Args),
    #[command(hide = true)]
    ImportCodex(transcripts::Args),
}

/// Runs `command` on the store `arg` names.
pub(crate) async fn run(arg: &StoreArg, command: Command) -> anyhow::Result<ExitCode> {
    // Commands that open their own stores, or none.
    match command {
        Command::Bench(args) => return bench::run(arg, args).await,
        Command::Migrate { action } => return migrate::run(arg, action).await,
        Command::Copy(args) => return copy::run(args).await,
        Command::Demo => return demo::run(arg).await,
        _ => {}
    }
    let store = &arg.open(MigrationMode::Apply).await?;
    match command {
        Command::Bench(_) | Command::Migrate { .. } | Command::Copy(_) | Command::Demo => {
            anyhow::bail!("internal: this command opens its own store")
        }
        Command::Record(args) => record::run(store, args).await,
        Command::Ingest(args) => ingest::run(store, args).await,
        Command::Import { source } => import::run(store, source).await,
        Command::ImportLegacy(args) => import::run(store, Import::Legacy(args)).await,
        Command::ImportClaudeCode(args) => import::run(store, Import::ClaudeCode(args)).await,
        Command::ImportCodex(args) => import::run(store, Import::Codex(args)).await,
        Command::Metrics(args) => metrics::run(store, args).await,
        Command::Summary(args) => summary::run(store, args).await,
        Command::Timeline(args) => timeline::run(store, args).await,
        Command::Insights(args) => insights::run(store, args).await,
        Command::Recent(args) => recent::run(store, args).await,
        Command::Search(args) => search::run(store, args).await,
        Command::Session(args) => session::run(store, args).await,
        Command::Info(args) => info::run(arg, store, args).await,
        Command::Verify(args) => verify::run(store, args).await,
        Command::Token { action } => token::run(store, action).await,
        Command::Serve(args) => serve::run(store, args).await,
        Command::Dashboard(args) => dashboard::run(store, args).await,
        Command::Push(args) => push::run(store, args).await,
        Command::Rebuild => rebuild::run(store).await,
        Command::Export(args) => export::run(store, args).await,
        Command::Backup(args) => backup::run(store, args).await,
        Command::Maintain => maintain::run(store).await,
        Command::Prune(args) => prune::run(store, args).await,
        Command::BenchWorker(args) => bench::worker(store, args).await,
    }
}
