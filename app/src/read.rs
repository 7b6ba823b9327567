//! The read commands: metrics, session, timeline, recent, summary, search.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use domain::{Invocation, parse_timestamp};
use infrastructure::{Bucket, RecentFilter, SkillMetricsStore, SummaryView};

use crate::table::Table;

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

/// Prints the JSON contract of a read: the value serialised with its keys
/// sorted, pretty-printed.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::to_value(value)?)?
    );
    Ok(())
}

#[derive(ClapArgs)]
pub(crate) struct MetricsArgs {
    /// Skills to show (all when none).
    skills: Vec<String>,
    /// Print JSON: an array of objects keyed by column name.
    #[arg(long)]
    json: bool,
    /// Compute p50/p95/p99 exactly from the log instead of the stored distribution.
    #[arg(long)]
    exact: bool,
}

pub(crate) async fn metrics(
    store: &SkillMetricsStore,
    args: MetricsArgs,
) -> anyhow::Result<ExitCode> {
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

fn invocations_table(items: &[Invocation]) {
    let mut t = Table::new([
        "invoked at",
        "skill",
        "status",
        "duration s",
        "workflow",
        "error",
        "session",
        "id",
    ]);
    for i in items {
        t.row([
            i.invoked_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            i.skill_name.to_string(),
            if i.completed {
                "completed"
            } else {
                "abandoned"
            }
            .to_owned(),
            num(i.duration_seconds, 2),
            i.workflow_path.clone().unwrap_or_else(|| "-".into()),
            i.error_type.clone().unwrap_or_else(|| "-".into()),
            i.session_id
                .as_ref()
                .map_or("-".into(), ToString::to_string),
            i.id.to_string(),
        ]);
    }
    t.print();
}

fn print_invocations(items: &[Invocation], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        print_json(&items)
    } else {
        invocations_table(items);
        Ok(())
    }
}

#[derive(ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SessionArgs {
    #[command(subcommand)]
    action: Option<SessionAction>,
    /// The session to show.
    id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum SessionAction {
    /// Record that a session ended (now, or --at).
    End {
        /// The session.
        id: String,
        /// When it ended (RFC 3339 with an offset).
        #[arg(long)]
        at: Option<String>,
    },
}

pub(crate) async fn session(
    store: &SkillMetricsStore,
    args: SessionArgs,
) -> anyhow::Result<ExitCode> {
    if let Some(SessionAction::End { id, at }) = args.action {
        let at = at
            .map(|t| parse_timestamp("--at", &t))
            .transpose()?
            .unwrap_or_else(Utc::now);
        store.end_session(&id, at).await?;
        println!("session {id} ended at {}", rfc3339(at));
        return Ok(ExitCode::SUCCESS);
    }
    let Some(id) = args.id else {
        anyhow::bail!("name a session: skill-metrics session ID, or skill-metrics session end ID");
    };
    let view = store.session(&id).await?;
    if args.json {
        return print_json(&view).map(|()| ExitCode::SUCCESS);
    }
    println!(
        "session {}  started {}  ended {}  project {}",
        view.session.id,
        rfc3339(view.session.started_at),
        view.session.ended_at.map_or("-".to_owned(), rfc3339),
        view.session.project_path.as_deref().unwrap_or("-")
    );
    let mut t = Table::new(["skill", "invocations", "total duration s", "first", "last"]);
    for s in &view.skills {
        t.row([
            s.skill_name.clone(),
            s.invocation_count.to_string(),
            format!("{:.2}", s.total_duration_seconds),
            s.first_invoked_at.format("%H:%M:%S").to_string(),
            s.last_invoked_at.format("%H:%M:%S").to_string(),
        ]);
    }
    t.print();
    println!();
    invocations_table(&view.invocations);
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, ValueEnum)]
enum BucketArg {
    Hour,
    Day,
    Week,
}

#[derive(ClapArgs)]
pub(crate) struct TimelineArgs {
    /// The skill.
    skill: String,
    /// From this time (inclusive, RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Bucket width.
    #[arg(long, value_enum, default_value = "day")]
    bucket: BucketArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn timeline(
    store: &SkillMetricsStore,
    args: TimelineArgs,
) -> anyhow::Result<ExitCode> {
    let since = args
        .since
        .map(|t| parse_timestamp("--since", &t))
        .transpose()?;
    let until = args
        .until
        .map(|t| parse_timestamp("--until", &t))
        .transpose()?;
    let bucket = match args.bucket {
        BucketArg::Hour => Bucket::Hour,
        BucketArg::Day => Bucket::Day,
        BucketArg::Week => Bucket::Week,
    };
    let rows = store.timeline(&args.skill, since, until, bucket).await?;
    if args.json {
        print_json(&rows)?;
    } else {
        let mut t = Table::new([
            "bucket start",
            "invocations",
            "completed",
            "rate %",
            "p50 s",
            "p95 s",
        ]);
        for b in &rows {
            t.row([
                rfc3339(b.bucket_start),
                b.invocations.to_string(),
                b.completed.to_string(),
                format!("{:.1}", b.completion_rate),
                num(b.p50_duration_seconds, 2),
                num(b.p95_duration_seconds, 2),
            ]);
        }
        t.print();
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(ClapArgs)]
pub(crate) struct RecentArgs {
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

pub(crate) async fn recent(
    store: &SkillMetricsStore,
    args: RecentArgs,
) -> anyhow::Result<ExitCode> {
    let filter = RecentFilter {
        skill: args.skill,
        session: args.session,
    };
    print_invocations(&store.recent(&filter, args.limit).await?, args.json)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(ClapArgs)]
pub(crate) struct SummaryArgs {
    /// Recompute it from skill_metrics first.
    #[arg(long)]
    refresh: bool,
    /// Print JSON keyed by the skill_metrics_summary columns.
    #[arg(long)]
    json: bool,
}

pub(crate) fn print_summary(s: &SummaryView) {
    println!("summary as of {}", rfc3339(s.refresh_time));
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

pub(crate) async fn summary(
    store: &SkillMetricsStore,
    args: SummaryArgs,
) -> anyhow::Result<ExitCode> {
    let s = if args.refresh {
        store.refresh_summary().await?
    } else {
        store.summary().await?
    };
    if args.json {
        print_json(&s)?;
    } else {
        print_summary(&s);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(ClapArgs)]
pub(crate) struct SearchArgs {
    /// Words to find in skill names and workflow paths; `word*` matches a prefix.
    query: String,
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    limit: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn search(
    store: &SkillMetricsStore,
    args: SearchArgs,
) -> anyhow::Result<ExitCode> {
    print_invocations(&store.search(&args.query, args.limit).await?, args.json)?;
    Ok(ExitCode::SUCCESS)
}
