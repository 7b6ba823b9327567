//! Where transcripts are, and how long a file has been left alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::Format;

/// Every `.jsonl` file under each of `roots` (a root may be a file), in
/// name order per folder; unreadable folders are passed over.
pub fn list_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for r in roots {
        jsonl_files(r, &mut files);
    }
    files
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

/// The assistant's own transcript folders that exist (see the two below).
pub fn default_roots(format: Format) -> Vec<PathBuf> {
    match format {
        Format::ClaudeCode => claude_roots(),
        Format::Codex => codex_roots(),
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

/// How long ago `path`, or for a Claude Code session one of its subagents'
/// files (`<session>/subagents/`), last changed: a subagent at work keeps
/// its parent's `Task` call alive.
pub fn idle_for(path: &Path) -> Duration {
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
