//! `import-claude-code` and `import-codex`: real skill and tool usage from AI
//! assistants' transcripts, without instrumenting anything.
//!
//! Each file is streamed line by line; malformed lines are skipped and
//! counted. Invocation ids derive from the assistant's call ids, so a call
//! seen in several files (resumed sessions) or on a later run counts once.

mod claude;
mod codex;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

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
}

/// A transcript format: fed every parsed line, then asked for its calls.
pub(crate) trait Parser {
    fn line(&mut self, value: &Value);
    /// The calls found; with `still_growing`, calls still running are held back.
    fn finish(&mut self, still_growing: bool) -> Vec<Call>;
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

fn to_invocation(call: Call, mode: Mode, file: &Path) -> Option<Invocation> {
    let pseudo = call.key.starts_with("typed:") || call.key.starts_with("codex-skill:");
    let name = match mode {
        Mode::Skills => call.skill.clone()?,
        Mode::All if pseudo => return None,
        Mode::All => call.tool.clone(),
    };
    let mut inv = Invocation::new(
        SkillName::parse(name.chars().take(200).collect::<String>()).ok()?,
        call.at,
        false,
    );
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
    ctx.insert(
        "source_file".into(),
        json!(file.file_name().map(|f| f.to_string_lossy().into_owned())),
    );
    // Keep the context inside its size limit whatever a transcript holds.
    if serde_json::to_vec(&ctx).map(|v| v.len()).unwrap_or(0) > domain::MAX_CONTEXT_BYTES / 2 {
        ctx.remove("args");
        ctx.remove("arguments");
    }
    inv.user_context = Some(ctx);
    inv.validate().ok()?;
    Some(inv)
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
    /// Keep watching and import new calls as the files grow, until Ctrl-C.
    #[arg(long)]
    follow: bool,
}

/// Parses one file; returns its calls as invocations.
fn parse_file(
    path: &Path,
    format: Format,
    mode: Mode,
    still_growing: bool,
    report: &mut Report,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<Invocation>> {
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
    Ok(parser
        .finish(still_growing)
        .into_iter()
        .filter_map(|c| to_invocation(c, mode, path))
        .collect())
}

async fn pass(
    store: &SkillMetricsStore,
    files: &[PathBuf],
    format: Format,
    args: &Args,
    since: Option<DateTime<Utc>>,
    still_growing: bool,
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
    let bar = if std::io::stderr().is_terminal() && !still_growing {
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
    let mut distinct = std::collections::HashSet::new();
    for f in files {
        for inv in parse_file(f, format, args.tools, still_growing, &mut report, &bar)? {
            if since.is_some_and(|s| inv.invoked_at < s) || !distinct.insert(inv.id) {
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
    if !args.dry_run && !batch.is_empty() {
        let o = store.record_batch(batch).await?;
        report.imported += o.inserted;
        report.present += o.duplicates.len();
    }
    if !args.dry_run {
        let rows: Vec<entity::sessions::Model> = report
            .sessions
            .iter()
            .filter(|(id, _)| SessionId::parse(id.as_str()).is_ok())
            .map(|(id, (first, last, cwd))| entity::sessions::Model {
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

fn print(report: &Report, dry_run: bool) {
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
    let report = pass(store, &list(&roots), format, &args, since, args.follow).await?;
    print(&report, args.dry_run);
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("following; Ctrl-C to stop");
    let mut seen: BTreeMap<PathBuf, u64> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let files = list(&roots);
        let changed: Vec<PathBuf> = files
            .into_iter()
            .filter(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                seen.insert(f.clone(), len) != Some(len)
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        // Each pass is whole batches, each one transaction: stopping between
        // them leaves nothing half-written.
        let r = pass(store, &changed, format, &args, since, true).await?;
        if r.imported > 0 {
            eprintln!(
                "imported {} new call(s) from {} file(s)",
                r.imported,
                changed.len()
            );
        }
    }
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}
