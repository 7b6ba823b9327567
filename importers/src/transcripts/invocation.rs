//! A call becomes an invocation: its name by mode, its id (D24), its
//! outcome, duration and context.

use std::path::Path;

use domain::{Invocation, InvocationId, SessionId, SkillName};
use serde_json::json;

use super::{Call, Mode};

const NAMESPACE: uuid::Uuid = uuid::uuid!("7c0f3f0e-2d7b-4c4e-9a8e-5b7f1f4d9c21");

const NO_RESULT: &str = "NoResult";

/// The id of the call `key` (Claude Code's `tool_use.id`, Codex's
/// `call_id`, …) imported in `mode` (decision D24). The OTLP receiver
/// derives the same, so a call received live and imported later from its
/// transcript counts once.
pub fn call_id(mode: Mode, key: &str) -> InvocationId {
    InvocationId::derived(&NAMESPACE, format!("{mode:?}\u{1f}{key}").as_bytes())
}

/// The invocation a call becomes: `None` when the mode does not count it,
/// an error (why, and which call) when it breaks a rule of the store.
pub(super) fn to_invocation(
    call: Call,
    mode: Mode,
    file: &Path,
) -> Result<Option<Invocation>, String> {
    let pseudo = call.key.starts_with("typed:") || call.key.starts_with("codex-skill:");
    let name = match (mode, &call.skill) {
        (Mode::Skills, Some(skill)) => skill.clone(),
        (Mode::Skills, None) => return Ok(None),
        (Mode::All, _) if pseudo => return Ok(None),
        (Mode::All, _) => call.tool.clone(),
    };
    let source = file.file_name().map(|f| f.to_string_lossy().into_owned());
    let invalid = |e: domain::ValidationError| {
        format!(
            "{e} ({} in {})",
            call.key,
            source.as_deref().unwrap_or_default()
        )
    };
    let name = SkillName::parse(name.chars().take(200).collect::<String>()).map_err(invalid)?;
    let mut inv = Invocation::new(name, call.at, false);
    inv.id = call_id(mode, &call.key);
    let end = match (mode, call.skill.is_some(), &call.result) {
        (Mode::Skills, true, Some(_)) => call.span_end.or(call.result.as_ref().map(|r| r.0)),
        (_, _, Some((at, _))) => Some(*at),
        (_, _, None) => None,
    };
    match &call.result {
        Some((_, None)) => inv.completed = true,
        Some((_, Some(class))) => inv.error_type = Some(class.clone()),
        None => inv.error_type = Some(NO_RESULT.to_owned()),
    }
    inv.duration_seconds =
        end.map(|e| (e - call.at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6);
    inv.session_id = call.session.and_then(|s| SessionId::parse(s).ok());
    inv.project_path = call.project;
    if mode == Mode::Skills {
        inv.follow_up_actions = call.follow_ups;
    }
    let mut ctx = call.context;
    ctx.insert("tool".into(), json!(call.tool));
    ctx.insert("source_file".into(), json!(source.clone()));
    // Keep the context inside its size limit whatever a transcript holds.
    if serde_json::to_vec(&ctx).map(|v| v.len()).unwrap_or(0) > domain::MAX_CONTEXT_BYTES / 2 {
        ctx.remove("args");
        ctx.remove("arguments");
    }
    inv.user_context = Some(ctx);
    inv.validate().map_err(invalid)?;
    Ok(Some(inv))
}
