//! `skill-metrics summary`

use std::process::ExitCode;

use chrono::Utc;
use infrastructure::{SkillMetricsStore, SummaryView};

use crate::output::{print_json, rfc3339};

/// The dashboard summary over all skills, as of the latest write.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Recompute it from the per-skill metrics even if nothing changed.
    #[arg(long, conflicts_with = "stored")]
    refresh: bool,
    /// Show the stored summary as it is, however old (and say how old).
    #[arg(long)]
    stored: bool,
    /// Print JSON keyed by the skill_metrics_summary columns.
    #[arg(long)]
    json: bool,
}

/// The stored summary, refreshed first when any skill's metrics were
/// written after it was computed (decision D57). Costs one read of the
/// per-skill rows, never of the log.
async fn fresh(store: &SkillMetricsStore) -> anyhow::Result<(SummaryView, bool)> {
    let stored = store.summary().await?;
    let metrics = store.metrics(&[]).await?;
    let latest_write = metrics.iter().filter_map(|m| m.last_aggregated_at).max();
    // Times alone can miss a write that committed after a refresh read
    // (its time is taken before it commits) or a skill removed by a
    // rebuild; the counts catch both.
    let total: i64 = metrics.iter().map(|m| m.total_invocations).sum();
    let changed = latest_write.is_some_and(|at| at >= stored.refresh_time)
        || stored.total_invocations != total
        || usize::try_from(stored.total_skills).ok() != Some(metrics.len());
    if changed {
        return Ok((store.refresh_summary().await?, true));
    }
    Ok((stored, false))
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let (summary, note) = if args.refresh {
        (store.refresh_summary().await?, "refreshed now".to_owned())
    } else if args.stored {
        let s = store.summary().await?;
        let age = (Utc::now() - s.refresh_time).num_seconds().max(0);
        (s, format!("stored, {age} s old"))
    } else {
        let (s, refreshed) = fresh(store).await?;
        let note = if refreshed {
            "refreshed now: metrics changed since the stored one"
        } else {
            "current: nothing written since"
        };
        (s, note.to_owned())
    };
    if args.json {
        print_json(&summary)?;
    } else {
        print_summary(&summary, &note);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn print_summary(s: &SummaryView, note: &str) {
    println!("summary as of {} ({note})", rfc3339(s.refresh_time));
    println!("  skills               {}", s.total_skills);
    println!("  invocations          {}", s.total_invocations);
    println!("  completion rate      {:.1} %", s.overall_completion_rate);
    println!(
        "  most used            {} ({})",
        s.most_used_skill.as_deref().unwrap_or("-"),
        s.most_used_count
    );
    println!("  average duration     {:.2} s", s.avg_duration_seconds);
    for (title, items) in [
        ("top errors", &s.top_error_types),
        ("top workflows", &s.top_workflow_paths),
    ] {
        let text: Vec<String> = items.iter().map(|(k, v)| format!("{k} ({v})")).collect();
        println!(
            "  {title:<20} {}",
            if text.is_empty() {
                "-".to_owned()
            } else {
                text.join(", ")
            }
        );
    }
}
