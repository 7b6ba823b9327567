//! `skill-metrics rebuild`

use std::process::ExitCode;
use std::time::Instant;

use infrastructure::SkillMetricsStore;

/// Recompute every aggregate and digest from the log.
pub(crate) async fn run(store: &SkillMetricsStore) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
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
