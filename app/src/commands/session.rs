//! `skill-metrics session show ID` / `session list` / `session end ID`

use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use domain::parse_timestamp;
use infrastructure::SkillMetricsStore;

use crate::output::{Table, invocations_table, print_json, rfc3339};

/// A session's skills and invocations, or record its end.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Shorthand for `session show ID`.
    id: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Action {
    /// Show a session: its skills and its invocations in time order.
    Show {
        /// The session.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The sessions that started last, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record that a session ended (now, or --at).
    End {
        /// The session.
        id: String,
        /// When it ended (RFC 3339 with an offset).
        #[arg(long)]
        at: Option<String>,
    },
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    match (args.action, args.id) {
        (Some(Action::End { id, at }), _) => end(store, &id, at).await,
        (Some(Action::Show { id, json }), _) => show(store, &id, json).await,
        (Some(Action::List { limit, json }), _) => list(store, limit, json).await,
        (None, Some(id)) => show(store, &id, args.json).await,
        (None, None) => anyhow::bail!(
            "name a session: skill-metrics session show ID, or skill-metrics session end ID"
        ),
    }
}

async fn end(store: &SkillMetricsStore, id: &str, at: Option<String>) -> anyhow::Result<ExitCode> {
    let at = at
        .map(|t| parse_timestamp("--at", &t))
        .transpose()?
        .unwrap_or_else(Utc::now);
    store.end_session(id, at).await?;
    println!("session {id} ended at {}", rfc3339(at));
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &SkillMetricsStore, limit: u64, json: bool) -> anyhow::Result<ExitCode> {
    let sessions = store.recent_sessions(limit).await?;
    if json {
        print_json(&sessions)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(["session", "started", "ended", "project"]);
    for s in &sessions {
        t.row([
            s.id.clone(),
            rfc3339(s.started_at),
            s.ended_at.map_or("-".to_owned(), rfc3339),
            s.project_path.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    t.print();
    Ok(ExitCode::SUCCESS)
}

async fn show(store: &SkillMetricsStore, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let view = store.session(id).await?;
    if json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = &view.session;
    println!(
        "session {}  started {}  ended {}  project {}",
        s.id,
        rfc3339(s.started_at),
        s.ended_at.map_or("-".to_owned(), rfc3339),
        s.project_path.as_deref().unwrap_or("-")
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
