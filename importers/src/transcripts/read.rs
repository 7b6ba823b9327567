//! Reading one transcript file into invocations.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::Invocation;
use serde_json::Value;

use super::invocation::to_invocation;
use super::{Format, Mode, Parser, claude, codex, idle_for, ts};
use crate::{Progress, ReadError};

/// A session as its lines show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpan {
    /// Its earliest line's time.
    pub first: DateTime<Utc>,
    /// Its latest line's time.
    pub last: DateTime<Utc>,
    /// The first working folder its lines name.
    pub project: Option<String>,
}

impl SessionSpan {
    /// Takes in what another file (or line) shows of the same session.
    pub fn widen(&mut self, other: &SessionSpan) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        if self.project.is_none() {
            self.project.clone_from(&other.project);
        }
    }
}

/// What one transcript file holds.
#[derive(Debug, Default)]
pub struct FileCalls {
    /// Lines read (blank ones not counted).
    pub lines: u64,
    /// Lines that are not JSON.
    pub skipped: u64,
    /// Its calls the mode counts, as invocations, each with whether it is
    /// still in flight (to be held back, D40).
    pub calls: Vec<(Invocation, bool)>,
    /// Calls that break a rule of the store (D41)...
    pub invalid: u64,
    /// ...and why the first one does, with its call id and file.
    pub first_invalid: Option<String>,
    /// Sessions its lines name, by id.
    pub sessions: BTreeMap<String, SessionSpan>,
}

/// Reads the transcript at `path` (each line's bytes reported to `progress`
/// as `Read`). Its calls are final once the file has been idle for
/// `idle_after` (judged after reading: a line written meanwhile makes it
/// fresh).
///
/// # Errors
/// When the file cannot be opened or read. Malformed lines are counted, not
/// errors.
pub fn read_file(
    path: &Path,
    format: Format,
    mode: Mode,
    idle_after: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<FileCalls, ReadError> {
    let io = |e| ReadError::io(format!("reading {}", path.display()), e);
    let file =
        File::open(path).map_err(|e| ReadError::io(format!("opening {}", path.display()), e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut parser: Box<dyn Parser> = match format {
        Format::ClaudeCode => Box::new(claude::Claude::new(mode)),
        Format::Codex => Box::new(codex::Codex::new(mode)),
    };
    let mut out = FileCalls::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(64 << 20)
            .read_until(b'\n', &mut buf)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        progress(Progress::Read(n as u64));
        out.lines += 1;
        match serde_json::from_slice::<Value>(&buf) {
            Ok(v) => {
                note_session(&v, &mut out.sessions);
                parser.line(&v);
            }
            Err(_) if buf.iter().all(u8::is_ascii_whitespace) => out.lines -= 1,
            Err(_) => out.skipped += 1,
        }
    }
    let idle = idle_for(path) >= idle_after;
    for call in parser.finish(idle) {
        let in_flight = call.in_flight;
        match to_invocation(call, mode, path) {
            Ok(Some(inv)) => out.calls.push((inv, in_flight)),
            Ok(None) => {}
            Err(why) => {
                out.invalid += 1;
                out.first_invalid.get_or_insert(why);
            }
        }
    }
    Ok(out)
}

fn note_session(v: &Value, sessions: &mut BTreeMap<String, SessionSpan>) {
    let (Some(id), Some(at)) = (
        v.get("sessionId").and_then(Value::as_str),
        v.get("timestamp").and_then(Value::as_str).and_then(ts),
    ) else {
        return;
    };
    let seen = SessionSpan {
        first: at,
        last: at,
        project: v.get("cwd").and_then(Value::as_str).map(str::to_owned),
    };
    sessions
        .entry(id.to_owned())
        .and_modify(|s| s.widen(&seen))
        .or_insert(seen);
}
