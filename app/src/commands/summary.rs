//! `skill-metrics summary`

use std::process::ExitCode;

use chrono::Utc;
use domain::parse_timestamp;
use infrastructure::{SkillMetricsStore, SummaryView};

use crate::output::{Table, num, print_json, rfc3339};

/// The dashboard summary over all skills, as of the latest write.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Recompute it from the per-skill metrics even if nothing changed.
    #[arg(long, conflicts_with = "stored")]
    refresh: bool,
    /// Show the stored summary as it is, however old (and say how old).
    #[arg(long)]
    stored: bool,
    /// Only invocations from this time (inclusive, RFC 3339): a summary of
    /// the range, per skill, from the daily and hourly rollups.
    #[arg(long, conflicts_with_all = ["refresh", "stored"])]
    since: Option<String>,
    /// Only invocations before this time (exclusive, RFC 3339).
    #[arg(long, conflicts_with_all = ["refresh", "stored"])]
    until: Option<String>,
    /// Only this project's invocations ("" for those with none).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["refresh", "stored"])]
    project: Option<String>,
    /// Print JSON (the whole-store summary keyed by the skill_metrics_summary columns).
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

/// `summary --since/--until/--project`: the range's figures per skill.
async fn range(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .map(|t| parse_timestamp("--since", &t))
        .transpose()?;
    let until = args
        .until
        .map(|t| parse_timestamp("--until", &t))
        .transpose()?;
    let s = store
        .summary_between(since, until, args.project.as_deref())
        .await?;
    if args.json {
        print_json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "from {} until {}{}",
        since.map_or("the beginning".to_owned(), rfc3339),
        until.map_or("now".to_owned(), rfc3339),
        args.project
            .as_deref()
            .map(|p| format!(", project {p:?}"))
            .unwrap_or_default()
    );
    println!("  invocations          {}", s.total_invocations);
    println!("  completion rate      {:.1} %", s.completion_rate);
    println!(
        "  busiest skill        {}",
        s.busiest_skill.as_deref().unwrap_or("-")
    );
    let mut t = Table::new([
        "skill",
        "invocations",
        "completed",
        "rate %",
        "mean s",
        "p50 s",
        "p95 s",
        "p99 s",
    ]);
    for k in &s.skills {
        t.row([
            k.skill_name.clone(),
            k.invocations.to_string(),
            k.completed.to_string(),
            format!("{:.1}", k.completion_rate),
            num(k.avg_duration_seconds, 2),
            num(k.p50_duration_seconds, 2),
            num(k.p95_duration_seconds, 2),
            num(k.p99_duration_seconds, 2),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    if args.since.is_some() || args.until.is_some() || args.project.is_some() {
        return range(store, args).await;
    }
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
