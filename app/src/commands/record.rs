//! `skill-metrics record ...`

use std::process::ExitCode;

use chrono::Utc;
use domain::{Invocation, InvocationId, SessionId, SkillName, ValidationError, parse_timestamp};
use infrastructure::SkillMetricsStore;

/// Record one invocation and print its id. Its outcome must be given:
/// --completed, --abandoned or --error TYPE.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("outcome").required(true).multiple(true))]
pub(crate) struct Args {
    /// The skill's name.
    #[arg(long)]
    skill: String,
    /// It completed.
    #[arg(long, group = "outcome", conflicts_with_all = ["abandoned", "error"])]
    completed: bool,
    /// It was abandoned (interrupted, rejected, given up); --error names why.
    #[arg(long, group = "outcome")]
    abandoned: bool,
    /// How long it ran, in seconds.
    #[arg(long, allow_negative_numbers = true)]
    duration: Option<f64>,
    /// It failed with this error type, e.g. TimeoutError (recorded as abandoned).
    #[arg(long, group = "outcome", value_name = "TYPE")]
    error: Option<String>,
    /// The workflow path taken.
    #[arg(long)]
    workflow: Option<String>,
    /// The session it belongs to.
    #[arg(long)]
    session: Option<String>,
    /// The project it ran in.
    #[arg(long)]
    project: Option<String>,
    /// An action taken afterwards (repeatable).
    #[arg(long = "follow-up")]
    follow_up: Vec<String>,
    /// Context as a JSON object.
    #[arg(long)]
    context: Option<String>,
    /// When it was invoked (RFC 3339 with an offset); default now.
    #[arg(long)]
    at: Option<String>,
    /// Its id (a UUID); default a fresh one.
    #[arg(long)]
    id: Option<String>,
}

impl Args {
    fn into_invocation(self) -> Result<Invocation, ValidationError> {
        let at = match &self.at {
            Some(text) => parse_timestamp("--at", text)?,
            None => Utc::now(),
        };
        let mut inv = Invocation::new(SkillName::parse(self.skill)?, at, self.completed);
        if let Some(id) = &self.id {
            inv.id = InvocationId::parse(id)?;
        }
        inv.duration_seconds = self.duration;
        inv.error_type = self.error;
        inv.workflow_path = self.workflow;
        inv.session_id = self.session.map(SessionId::parse).transpose()?;
        inv.project_path = self.project;
        inv.follow_up_actions = self.follow_up;
        if let Some(text) = &self.context {
            match serde_json::from_str(text) {
                Ok(serde_json::Value::Object(map)) => inv.user_context = Some(map),
                Ok(_) => return Err(ValidationError::new("--context", "must be a JSON object")),
                Err(e) => {
                    return Err(ValidationError::new(
                        "--context",
                        format!("is not JSON: {e}"),
                    ));
                }
            }
        }
        inv.validate()?;
        Ok(inv)
    }
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let id = store.record(args.into_invocation()?).await?;
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}
