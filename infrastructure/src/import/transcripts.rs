//! Importing assistants' transcripts: one pass over a list of files.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::SessionId;
use importers::Progress;
use importers::transcripts::{Format, Mode, SessionSpan, list_files, read_file};

use super::ImportError;
use super::batches::write_streamed;
use crate::SkillMetricsStore;

/// Calls per transaction.
const BATCH: usize = 2000;

/// How to import transcripts.
#[derive(Debug, Clone)]
pub struct TranscriptOptions {
    /// Skill uses only, or every tool call.
    pub mode: Mode,
    /// Only calls at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Count and report; write nothing.
    pub dry_run: bool,
    /// A call still without a result at the end of its file (or a skill
    /// whose turn is still open) is held back as in flight until the file
    /// has been idle this long; then it is final (`NoResult`). Zero: now.
    pub idle_after: Duration,
}

impl Default for TranscriptOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Skills,
            since: None,
            dry_run: false,
            idle_after: Duration::from_secs(30 * 60),
        }
    }
}

/// What one import pass found and did.
#[derive(Debug, Clone, Default)]
pub struct TranscriptReport {
    /// Files read.
    pub files: usize,
    /// Lines read.
    pub lines: u64,
    /// Lines that are not JSON.
    pub skipped: u64,
    /// Distinct final calls found (written or not).
    pub calls: u64,
    /// Calls added to the log (0 in a dry run).
    pub imported: usize,
    /// Calls already in the log.
    pub present: usize,
    /// Calls held back as still running (each counted once).
    pub in_flight: usize,
    /// Files holding such calls: to be read again once they are idle.
    pub in_flight_files: BTreeSet<PathBuf>,
    /// Calls that break a rule of the store...
    pub invalid: u64,
    /// ...and why the first one does.
    pub first_invalid: Option<String>,
    /// Final calls per skill (or tool) name.
    pub per_tool: BTreeMap<String, u64>,
}

impl SkillMetricsStore {
    /// Imports Claude Code transcripts from `paths` (files, or folders
    /// searched for `.jsonl` files). See [`Self::import_codex`].
    ///
    /// # Errors
    /// As [`Self::import_codex`].
    pub async fn import_claude_code(
        &self,
        paths: &[PathBuf],
        options: &TranscriptOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<TranscriptReport, ImportError> {
        self.import_transcripts(Format::ClaudeCode, paths, options, progress)
            .await
    }

    /// Imports Codex CLI session files from `paths` (files, or folders
    /// searched for `.jsonl` files): every final call once (ids derive from
    /// the assistant's call ids, D24), calls still running held back (D40),
    /// and the sessions the lines name. `progress` hears one `reading` pass.
    ///
    /// # Errors
    /// When a file cannot be read or the store fails; batches written
    /// before stay, and a re-run counts nothing twice.
    pub async fn import_codex(
        &self,
        paths: &[PathBuf],
        options: &TranscriptOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<TranscriptReport, ImportError> {
        self.import_transcripts(Format::Codex, paths, options, progress)
            .await
    }

    /// [`Self::import_claude_code`] or [`Self::import_codex`], by `format`.
    ///
    /// # Errors
    /// As those.
    pub async fn import_transcripts(
        &self,
        format: Format,
        paths: &[PathBuf],
        options: &TranscriptOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<TranscriptReport, ImportError> {
        let files = list_files(paths);
        let options = options.clone();
        let dry_run = options.dry_run;
        let (written, result) = write_streamed(self, BATCH, progress, move |sink, reporter| {
            read_all(
                &files,
                format,
                &options,
                &mut |inv| {
                    if dry_run { Ok(()) } else { sink.push(inv) }
                },
                &mut |p| reporter.report(p),
            )
        })
        .await;
        let (mut report, sessions) = result?;
        report.imported = written.inserted;
        report.present = written.duplicates;
        if !dry_run {
            self.merge_sessions(&session_rows(sessions)).await?;
        }
        Ok(report)
    }
}

/// Reads every file, on the reader thread, handing each distinct final call
/// to `keep`.
fn read_all(
    files: &[PathBuf],
    format: Format,
    options: &TranscriptOptions,
    keep: &mut dyn FnMut(domain::Invocation) -> Result<(), String>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(TranscriptReport, BTreeMap<String, SessionSpan>), ImportError> {
    let mut report = TranscriptReport {
        files: files.len(),
        ..Default::default()
    };
    let total = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    progress(Progress::Start {
        label: "reading",
        total,
    });
    let mut sessions: BTreeMap<String, SessionSpan> = BTreeMap::new();
    // A call copied into several files (resumed sessions) is one call.
    let mut distinct = HashSet::new();
    let mut held = HashSet::new();
    for f in files {
        let found = read_file(f, format, options.mode, options.idle_after, progress)?;
        report.lines += found.lines;
        report.skipped += found.skipped;
        report.invalid += found.invalid;
        if report.first_invalid.is_none() {
            report.first_invalid = found.first_invalid;
        }
        for (id, span) in found.sessions {
            match sessions.get_mut(&id) {
                Some(s) => s.widen(&span),
                None => {
                    sessions.insert(id, span);
                }
            }
        }
        for (inv, in_flight) in found.calls {
            if options.since.is_some_and(|s| inv.invoked_at < s) {
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
            keep(inv).map_err(|e| ImportError::Read(importers::ReadError::Input(e)))?;
        }
    }
    progress(Progress::Done);
    // A call finished in one copy of a session is not in flight in another.
    report.in_flight = held.difference(&distinct).count();
    Ok((report, sessions))
}

/// The `sessions` rows the spans become (ids the store would refuse are left out).
fn session_rows(sessions: BTreeMap<String, SessionSpan>) -> Vec<crate::Session> {
    sessions
        .into_iter()
        .filter(|(id, _)| SessionId::parse(id.as_str()).is_ok())
        .map(|(id, span)| crate::Session {
            id,
            started_at: span.first,
            ended_at: Some(span.last),
            project_path: span.project,
        })
        .collect()
}
