//! `skill-metrics recent`

use std::process::ExitCode;

use infrastructure::{RecentFilter, SkillMetricsStore};

use crate::output::print_invocations;

/// The newest invocations.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// How many.
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Only this skill.
    #[arg(long)]
    skill: Option<String>,
    /// Only this session.
    #[arg(long)]
    session: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let filter = RecentFilter {
        skill: args.skill,
        session: args.session,
    };
    print_invocations(&store.recent(&filter, args.limit).await?, args.json)?;
    Ok(ExitCode::SUCCESS)
}
