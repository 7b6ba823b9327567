//! `skill-metrics maintain`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

/// Refresh planner statistics and indexes.
pub(crate) async fn run(store: &SkillMetricsStore) -> anyhow::Result<ExitCode> {
    for step in store.maintain().await? {
        println!("{:<16} {:>10.2?}", step.statement, step.elapsed);
    }
    Ok(ExitCode::SUCCESS)
}
