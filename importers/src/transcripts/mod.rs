//! Claude Code and Codex transcripts: real skill and tool usage from AI
//! assistants, without instrumenting anything.
//!
//! Each file is streamed line by line; malformed lines are skipped and
//! counted. Invocation ids derive from the assistant's call ids (D24), so a
//! call seen in several files (resumed sessions) or on a later run counts
//! once. That also means a recorded call is final: a call still running (no
//! result yet, or a skill whose turn has not ended) is held back as in
//! flight until its session has moved on (a later turn) or its file has
//! been idle long enough (D40).

mod claude;
mod codex;
mod duration;
mod files;
mod invocation;
mod read;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub use duration::{format_duration, parse_duration};
pub use files::{default_roots, idle_for, list_files};
pub use invocation::call_id;
pub use read::{FileCalls, SessionSpan, read_file};

/// Which calls become invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Skill uses only (Skill tool, SlashCommand, typed commands, Codex `<skill>`).
    Skills,
    /// Every tool call, named after its tool (Bash, Read, Task, ...).
    All,
}

/// Whose transcripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Claude Code (`<config>/projects/<project>/<session>.jsonl`).
    ClaudeCode,
    /// OpenAI Codex CLI (`$CODEX_HOME/sessions/YYYY/MM/DD/rollout-*.jsonl`).
    Codex,
}

/// A call found in a transcript, before it becomes an invocation.
pub(crate) struct Call {
    /// Stable key of the call (from the assistant's own call id).
    key: String,
    tool: String,
    skill: Option<String>,
    at: DateTime<Utc>,
    session: Option<String>,
    project: Option<String>,
    context: Map<String, Value>,
    /// When the result came, and the error class if it failed.
    result: Option<(DateTime<Utc>, Option<String>)>,
    follow_ups: Vec<String>,
    /// End of the work a skill drove (skills only).
    span_end: Option<DateTime<Utc>>,
    /// Still running and its session has not moved on: held back, not recorded.
    in_flight: bool,
}

/// A transcript format: fed every parsed line, then asked for its calls.
pub(crate) trait Parser {
    fn line(&mut self, value: &Value);
    /// The calls found. Unless `idle` (the file has stopped growing), a call
    /// with no result and no later turn, or a skill whose turn is still open,
    /// comes back marked `in_flight`; with `idle` it is final (`NoResult`).
    fn finish(&mut self, idle: bool) -> Vec<Call>;
}

/// An RFC 3339 timestamp, to the microsecond.
pub(crate) fn ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| domain::truncate_to_micros(t.with_timezone(&Utc)))
}

/// The key of a Claude Code call by its `tool_use.id`, from which its
/// invocation id derives ([`call_id`]); the OTLP receiver uses the same.
pub fn tool_use_key(tool_use_id: &str) -> String {
    format!("tool_use:{tool_use_id}")
}

/// A short, stable class for an error message (not the message itself).
pub fn classify_error(text: &str) -> String {
    let t = text.to_lowercase();
    let class = if t.contains("doesn't want to proceed")
        || t.contains("rejected")
        || t.contains("denied by user")
    {
        "UserRejected"
    } else if t.contains("interrupted") {
        "Interrupted"
    } else if t.contains("timed out") || t.contains("timeout") {
        "Timeout"
    } else if t.contains("does not exist") || t.contains("no such file") || t.contains("not found")
    {
        "NotFound"
    } else if t.contains("has not been read yet") || t.contains("read it first") {
        "FileNotRead"
    } else if t.contains("string to replace") || t.contains("old_string") {
        "EditMismatch"
    } else if t.contains("permission") {
        "PermissionDenied"
    } else if t.contains("inputvalidationerror") || t.contains("invalid input") {
        "InputValidation"
    } else if t.contains("exit code") {
        "NonZeroExit"
    } else {
        "ToolError"
    };
    class.to_owned()
}
