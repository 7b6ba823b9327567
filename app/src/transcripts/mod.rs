//! `import-claude-code` and `import-codex`: real skill and tool usage from AI
//! assistants' transcripts, without instrumenting anything.
//!
//! Each file is streamed line by line; malformed lines are skipped and
//! counted. Invocation ids derive from the assistant's call ids, so a call
//! seen in several files (resumed sessions) or on a later run counts once.
//! That also means a recorded call is final: a call still running (no result
//! yet, or a skill whose turn has not ended) is held back as in flight until
//! its session has moved on (a later turn) or its file has been idle for
//! `--idle-after`.

mod claude;
mod codex;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use domain::{Invocation, InvocationId, SessionId, SkillName, parse_timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::SkillMetricsStore;
use serde_json::{Map, Value, json};

use crate::table::Table;

const NAMESPACE: uuid::Uuid = uuid::uuid!("7c0f3f0e-2d7b-4c4e-9a8e-5b7f1f4d9c21");
const BATCH: usize = 2000;

/// Which calls become invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Skill uses only (Skill tool, SlashCommand, typed commands, Codex `<skill>`).
    Skills,
    /// Every tool call, named after its tool (Bash, Read, Task, ...).
    All,
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

pub(crate) fn ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| domain::truncate_to_micros(t.with_timezone(&Utc)))
}

/// A short, stable class for an error message (not the message itself).
pub(crate) fn classify_error(text: &str) -> String {
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

const NO_RESULT: &str = "NoResult";

/// The invocation a call becomes: `None` when the mode does not count it,
/// an error (why, and which call) when it breaks a rule of the store.
fn to_invocation(call: Call, mode: Mode, file: &Path) -> Result<Option<Invocation>, String> {
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
    inv.id = InvocationId::derived(&NAMESPACE, format!("{mode:?}\u{1f}{}", call.key).as_bytes());
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

/// Counts for the final report.
#[derive(Default)]
struct Report {
    files: usize,
    lines: u64,
    skipped: u64,
    calls: u64,
    imported: usize,
    present: usize,
    /// Calls held back as still running (each counted once).
    in_flight: usize,
    /// Files holding such calls: to be read again once they are idle.
    in_flight_files: BTreeSet<PathBuf>,
    /// Calls that break a rule of the store, and why the first one does.
    invalid: u64,
    first_invalid: Option<String>,
    per_tool: BTreeMap<String, u64>,
    sessions: BTreeMap<String, (DateTime<Utc>, DateTime<Utc>, Option<String>)>,
}

fn jsonl_files(root: &Path, out: &mut Vec<PathBuf>) {
    if root.is_file() {
        out.push(root.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => jsonl_files(&p, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "jsonl") => out.push(p),
            _ => {}
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Claude Code's transcript folders: every entry of `CLAUDE_CONFIG_DIR`
/// (comma-separated), else `~/.config/claude` and `~/.claude`; each `/projects`.
fn claude_roots() -> Vec<PathBuf> {
    let configs: Vec<PathBuf> = match std::env::var("CLAUDE_CONFIG_DIR") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| PathBuf::from(s.trim())).collect(),
        _ => home()
            .map(|h| vec![h.join(".config/claude"), h.join(".claude")])
            .unwrap_or_default(),
    };
    configs
        .into_iter()
        .map(|c| c.join("projects"))
        .filter(|p| p.is_dir())
        .collect()
}

/// Codex's session folders: `${CODEX_HOME:-~/.codex}/sessions` and `archived_sessions`.
fn codex_roots() -> Vec<PathBuf> {
    let base = std::env::var_os("CODEX_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".codex")));
    base.map(|b| vec![b.join("sessions"), b.join("archived_sessions")])
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.is_dir())
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Claude,
    Codex,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Files or folders to read (default: the assistant's own folders).
    paths: Vec<PathBuf>,
    /// `skills` (default): one invocation per skill use; `all`: one per tool call.
    #[arg(long, value_enum, default_value = "skills")]
    tools: Mode,
    /// Only calls at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Report what would be imported; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep watching and import new calls as the files grow, until Ctrl-C
    /// (which reads what changed once more before stopping).
    #[arg(long)]
    follow: bool,
    /// A call still without a result at the end of its file (or a skill whose
    /// turn is still open) is held back as in flight until the file has been
    /// idle this long; then it is recorded as `NoResult`. `0s` records it now.
    /// Units: s, m, h, d (e.g. `90s`, `30m`, `1h30m`).
    #[arg(long, default_value = "30m", value_parser = parse_idle, value_name = "DURATION")]
    idle_after: Duration,
}

/// `30m`, `90s`, `1h30m`, `0`: whole seconds, minutes, hours or days.
fn parse_idle(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 90s, 30m, 2h or 1h30m");
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut secs: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        secs = n
            .checked_mul(unit)
            .and_then(|s| s.checked_add(secs))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    Ok(Duration::from_secs(secs))
}

/// A duration as `parse_idle` reads it, in its largest whole unit.
fn show_idle(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// How long ago `path`, or for a Claude Code session one of its subagents'
/// files (`<session>/subagents/`), last changed: a subagent at work keeps
/// its parent's `Task` call alive.
fn idle_for(path: &Path) -> Duration {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let mut last = modified(path);
    if let Ok(entries) = std::fs::read_dir(path.with_extension("").join("subagents")) {
        for e in entries.flatten() {
            last = last.max(modified(&e.path()));
        }
    }
    last.and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or(Duration::ZERO)
}

/// Parses one file; returns its calls as invocations, each with whether it
/// is in flight. Invalid calls are counted in `report`.
fn parse_file(
    path: &Path,
    format: Format,
    args: &Args,
    report: &mut Report,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<(Invocation, bool)>> {
    let mode = args.tools;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut parser: Box<dyn Parser> = match format {
        Format::Claude => Box::new(claude::Claude::new(mode)),
        Format::Codex => Box::new(codex::Codex::new(mode)),
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader).take(64 << 20).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        bar.inc(n as u64);
        report.lines += 1;
        match serde_json::from_slice::<Value>(&buf) {
            Ok(v) => {
                if let (Some(s), Some(t)) = (
                    v.get("sessionId").and_then(Value::as_str),
                    v.get("timestamp").and_then(Value::as_str).and_then(ts),
                ) {
                    let cwd = v.get("cwd").and_then(Value::as_str).map(str::to_owned);
                    let e = report
                        .sessions
                        .entry(s.to_owned())
                        .or_insert((t, t, cwd.clone()));
                    e.0 = e.0.min(t);
                    e.1 = e.1.max(t);
                    if e.2.is_none() {
                        e.2 = cwd;
                    }
                }
                parser.line(&v);
            }
            Err(_) if buf.iter().all(u8::is_ascii_whitespace) => report.lines -= 1,
            Err(_) => report.skipped += 1,
        }
    }
    // Idle is judged after reading: a line written meanwhile makes it fresh.
    let idle = idle_for(path) >= args.idle_after;
    let mut out = Vec::new();
    for call in parser.finish(idle) {
        let in_flight = call.in_flight;
        match to_invocation(call, mode, path) {
            Ok(Some(inv)) => out.push((inv, in_flight)),
            Ok(None) => {}
            Err(why) => {
                report.invalid += 1;
                report.first_invalid.get_or_insert(why);
            }
        }
    }
    Ok(out)
}

async fn pass(
    store: &SkillMetricsStore,
    files: &[PathBuf],
    format: Format,
    args: &Args,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Report> {
    let mut report = Report {
        files: files.len(),
        ..Default::default()
    };
    let total: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bar = if std::io::stderr().is_terminal() && !args.follow {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("reading [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut batch: Vec<Invocation> = Vec::new();
    // A call copied into several files (resumed sessions) is one call.
    let mut distinct = HashSet::new();
    let mut held = HashSet::new();
    for f in files {
        for (inv, in_flight) in parse_file(f, format, args, &mut report, &bar)? {
            if since.is_some_and(|s| inv.invoked_at < s) {
                continue;
            }
            if in_flight {
                held.insert(inv.id);
                report.in_flight_files.insert(f.clone());
                continue;
            }
            if !distinct.insert(inv.id) {
                continue;
            }
            report.calls += 1;
            *report
                .per_tool
                .entry(inv.skill_name.to_string())
                .or_insert(0) += 1;
            batch.push(inv);
            if batch.len() >= BATCH && !args.dry_run {
                let o = store.record_batch(std::mem::take(&mut batch)).await?;
                report.imported += o.inserted;
                report.present += o.duplicates.len();
            }
        }
    }
    bar.finish_and_clear();
    // A call finished in one copy of a session is not in flight in another.
    report.in_flight = held.difference(&distinct).count();
    if !args.dry_run && !batch.is_empty() {
        let o = store.record_batch(batch).await?;
        report.imported += o.inserted;
        report.present += o.duplicates.len();
    }
    if !args.dry_run {
        let rows: Vec<infrastructure::Session> = report
            .sessions
            .iter()
            .filter(|(id, _)| SessionId::parse(id.as_str()).is_ok())
            .map(|(id, (first, last, cwd))| infrastructure::Session {
                id: id.clone(),
                started_at: *first,
                ended_at: Some(*last),
                project_path: cwd.clone(),
            })
            .collect();
        store.merge_sessions(&rows).await?;
    }
    Ok(report)
}

fn print(report: &Report, args: &Args) {
    let dry_run = args.dry_run;
    println!(
        "files {}, lines {}, calls found {}, imported {}, already present {}, skipped lines {}{}",
        report.files,
        report.lines,
        report.calls,
        if dry_run { 0 } else { report.imported },
        report.present,
        report.skipped,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if report.in_flight > 0 {
        println!(
            "{} call(s) held back as in flight: no result yet; recorded once their session moves on or its file is idle for {}",
            report.in_flight,
            show_idle(args.idle_after)
        );
    }
    if let Some(first) = &report.first_invalid {
        println!("{} call(s) skipped as invalid: {first}", report.invalid);
    }
    let mut t = Table::new(["name", "calls"]);
    for (name, n) in &report.per_tool {
        t.row([name.clone(), n.to_string()]);
    }
    t.print();
}

pub(crate) async fn run(
    store: &SkillMetricsStore,
    args: Args,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let roots = if args.paths.is_empty() {
        let found = if format == Format::Claude {
            claude_roots()
        } else {
            codex_roots()
        };
        if found.is_empty() {
            anyhow::bail!(
                "no transcript folders found (set CLAUDE_CONFIG_DIR / CODEX_HOME, or name files or folders)"
            );
        }
        found
    } else {
        args.paths.clone()
    };
    for r in &roots {
        anyhow::ensure!(r.exists(), "{} does not exist", r.display());
        eprintln!("reading {}", r.display());
    }
    let since = args
        .since
        .as_deref()
        .map(|t| parse_timestamp("--since", t))
        .transpose()?;
    let list = |roots: &[PathBuf]| {
        let mut files = Vec::new();
        for r in roots {
            jsonl_files(r, &mut files);
        }
        files
    };
    let report = pass(store, &list(&roots), format, &args, since).await?;
    print(&report, &args);
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Listen before saying so: a Ctrl-C from now on ends with a last pass.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopping = tokio::select! {
        biased;
        _ = &mut ctrl_c => true,
        () = std::future::ready(()) => false,
    };
    eprintln!("following; Ctrl-C to stop");
    let mut seen: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let mut waiting = report.in_flight_files;
    loop {
        if !stopping {
            stopping = tokio::select! {
                _ = &mut ctrl_c => true,
                () = tokio::time::sleep(Duration::from_secs(2)) => false,
            };
        }
        // Files that grew, and files whose calls were in flight and have
        // since gone idle (their calls are final now).
        let changed: Vec<PathBuf> = list(&roots)
            .into_iter()
            .filter(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let grew = seen.insert(f.clone(), len) != Some(len);
                grew || (waiting.contains(f) && idle_for(f) >= args.idle_after)
            })
            .collect();
        if !changed.is_empty() {
            // Each pass is whole batches, each one transaction: stopping
            // between them leaves nothing half-written.
            let r = pass(store, &changed, format, &args, since).await?;
            if r.imported > 0 {
                eprintln!(
                    "imported {} new call(s) from {} file(s)",
                    r.imported,
                    changed.len()
                );
            }
            if let Some(first) = &r.first_invalid {
                eprintln!("{} call(s) skipped as invalid: {first}", r.invalid);
            }
            for f in &changed {
                waiting.remove(f);
            }
            waiting.extend(r.in_flight_files);
        }
        if stopping {
            break;
        }
    }
    if waiting.is_empty() {
        eprintln!("stopped");
    } else {
        eprintln!(
            "stopped; calls still in flight in {} file(s) are left for a later run",
            waiting.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_durations() {
        for (text, secs) in [
            ("0", 0),
            ("0s", 0),
            ("90s", 90),
            ("30m", 1800),
            ("2h", 7200),
            ("1h30m", 5400),
            ("1d", 86_400),
        ] {
            assert_eq!(parse_idle(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for bad in [
            "",
            "30",
            "m",
            "1.5h",
            "10ms",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_idle(bad).is_err(), "{bad}");
        }
        assert_eq!(show_idle(Duration::from_secs(1800)), "30m");
        assert_eq!(show_idle(Duration::from_secs(5400)), "90m");
        assert_eq!(show_idle(Duration::from_secs(61)), "61s");
        assert_eq!(show_idle(Duration::ZERO), "0s");
    }
}
