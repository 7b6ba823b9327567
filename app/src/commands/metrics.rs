//! `skill-metrics metrics [SKILL...]`

use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

use crate::output::{Table, num, print_json};

/// Per-skill metrics (all skills, or those named).
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Skills to show (all when none).
    skills: Vec<String>,
    /// Print JSON: an array of objects keyed by column name.
    #[arg(long)]
    json: bool,
    /// Compute p50/p95/p99 exactly from the log instead of the stored distribution.
    #[arg(long)]
    exact: bool,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let names: Vec<&str> = args.skills.iter().map(String::as_str).collect();
    let mut rows = store.metrics(&names).await?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !rows.iter().any(|r| r.skill_name == *n))
        .collect();
    for name in &missing {
        eprintln!("unknown skill: {name:?}");
    }
    if args.exact {
        let exact = store.exact_percentiles(&names).await?;
        for row in &mut rows {
            let p = exact.get(&row.skill_name).copied().unwrap_or_default();
            (
                row.p50_duration_seconds,
                row.p95_duration_seconds,
                row.p99_duration_seconds,
            ) = (p.p50, p.p95, p.p99);
        }
    }
    if args.json {
        print_json(&rows)?;
    } else {
        let mut t = Table::new([
            "skill",
            "total",
            "completed",
            "abandoned",
            "rate %",
            "avg s",
            "p50 s",
            "p95 s",
            "p99 s",
            "last invoked",
        ]);
        for m in &rows {
            t.row([
                m.skill_name.clone(),
                m.total_invocations.to_string(),
                m.completed_invocations.to_string(),
                m.abandoned_invocations.to_string(),
                format!("{:.1}", m.completion_rate),
                num(m.avg_duration_seconds, 2),
                num(m.p50_duration_seconds, 2),
                num(m.p95_duration_seconds, 2),
                num(m.p99_duration_seconds, 2),
                m.last_invoked.map_or("-".to_owned(), |t| {
                    t.format("%Y-%m-%d %H:%M:%S").to_string()
                }),
            ]);
        }
        t.print();
    }
    let none_found = !names.is_empty() && missing.len() == names.len();
    Ok(if none_found {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
