//! `skill-metrics import legacy | claude-code | codex`: history from files.

pub(crate) mod legacy;
pub(crate) mod transcripts;

use std::process::ExitCode;

use clap::Subcommand;
use infrastructure::SkillMetricsStore;
use infrastructure::import::Format;

/// Where history comes from.
#[derive(Subcommand)]
pub(crate) enum Import {
    /// The legacy skill_metrics.json (a file, or a folder to search).
    Legacy(legacy::Args),
    /// Skill (or all tool) usage from Claude Code transcripts.
    ClaudeCode(transcripts::Args),
    /// Skill (or all tool) usage from Codex CLI session files.
    Codex(transcripts::Args),
}

pub(crate) async fn run(store: &SkillMetricsStore, source: Import) -> anyhow::Result<ExitCode> {
    match source {
        Import::Legacy(args) => legacy::run(store, args).await,
        Import::ClaudeCode(args) => transcripts::run(store, args, Format::ClaudeCode).await,
        Import::Codex(args) => transcripts::run(store, args, Format::Codex).await,
    }
}
