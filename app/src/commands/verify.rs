//! `skill-metrics verify`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

/// Compare stored aggregates with the log; exit 1 on any difference.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let report = store.verify().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for d in &report.differences {
            println!(
                "{} {:?} {}: stored {} but the log gives {}",
                d.table, d.key, d.field, d.stored, d.expected
            );
        }
        println!(
            "{}: {} invocations, {} skills, {} session-skill rows, {} sessions, {} hourly and {} daily rollups, {} differences",
            if report.is_clean() { "ok" } else { "DRIFT" },
            report.invocations_read,
            report.skills_checked,
            report.session_skills_checked,
            report.sessions_checked,
            report.rollups_checked,
            report.day_rollups_checked,
            report.differences.len()
        );
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
