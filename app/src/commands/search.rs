//! `skill-metrics search QUERY`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

use crate::output::print_invocations;

/// Full-text search over skill names and workflow paths, newest first.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Words to find in skill names and workflow paths; `word*` matches a prefix.
    query: String,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    print_invocations(&store.search(&args.query, args.limit).await?, args.json)?;
    Ok(ExitCode::SUCCESS)
}
