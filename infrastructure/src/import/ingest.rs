//! JSON Lines in (`ingest`), streamed in batches.
//!
//! Strict by default: a first pass validates every line and nothing is
//! written if any is bad; the second pass writes batch by batch. Lines
//! without an `id` get one from their content and occurrence (D72), or the
//! one an older version gave them by line number if the log holds it.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use domain::ValidationError;
use importers::jsonl::read_lines;
use importers::{Progress, ReadError};

use super::batches::{Reporter, Sink, Written, write_streamed};
use super::numbered::Renumber;
use super::{DEFAULT_BATCH_SIZE, ImportError};
use crate::SkillMetricsStore;

/// Bad lines kept in the report; the rest are only counted.
pub const MAX_REJECTIONS_LISTED: usize = 50;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Write the valid lines when some are invalid, instead of nothing.
    pub skip_invalid: bool,
    /// Invocations per transaction.
    pub batch_size: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            skip_invalid: false,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

/// A line that was not ingested, and why.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Its number, from 1.
    pub line: u64,
    /// The field at fault and the rule.
    pub error: ValidationError,
}

/// What an ingest did.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// What was written.
    pub written: Written,
    /// Invalid lines.
    pub rejected: u64,
    /// The first [`MAX_REJECTIONS_LISTED`] of them, in order.
    pub rejections: Vec<Rejection>,
    /// `true` when invalid lines (without `skip_invalid`) meant nothing was written.
    pub refused: bool,
}

/// An ingest that failed: what it had done by then, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct IngestError {
    /// What was done before the failure (committed batches stay).
    pub report: IngestReport,
    context: &'static str,
    #[source]
    source: ImportError,
}

impl SkillMetricsStore {
    /// Ingests JSON Lines in the ingest format (one invocation per line,
    /// keys named as the `skill_invocation` columns) from `input`, which is
    /// read twice: once to check every line, then to write batch by batch.
    /// `progress` hears a `checking` and an `ingesting` pass.
    ///
    /// # Errors
    /// When `input` cannot be read, or a batch cannot be written; batches
    /// written before stay committed, and the error's report says how many.
    /// Invalid lines are not errors: they are in the report.
    pub async fn ingest_jsonl<R: Read + Seek + Send + 'static>(
        &self,
        mut input: R,
        options: &IngestOptions,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<IngestReport, IngestError> {
        let reading = |source: std::io::Error| IngestError {
            report: IngestReport::default(),
            context: "reading the input",
            source: ReadError::io("measuring the input", source).into(),
        };
        let total = input.seek(SeekFrom::End(0)).map_err(reading)?;
        input.rewind().map_err(reading)?;
        // The check's findings, known to this side even when the reader's
        // report is lost to a failed batch; none while the check still runs.
        let checked: Checked = Arc::new(Mutex::new(None));
        let job = Job {
            input,
            total,
            skip_invalid: options.skip_invalid,
            checked: Arc::clone(&checked),
            renumber: Renumber::new(self.clone(), tokio::runtime::Handle::current()),
        };
        let (written, result) =
            write_streamed(self, options.batch_size, progress, move |sink, reporter| {
                ingest(job, sink, reporter)
            })
            .await;
        match result {
            Ok(mut report) => {
                report.written = written;
                Ok(report)
            }
            Err(source) => {
                let found = checked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                let context = if found.is_some() {
                    "writing (earlier batches are committed; re-run to finish)"
                } else {
                    "reading the input"
                };
                let (rejected, rejections) = found.unwrap_or_default();
                Err(IngestError {
                    report: IngestReport {
                        written,
                        rejected,
                        rejections,
                        ..Default::default()
                    },
                    context,
                    source,
                })
            }
        }
    }
}

/// The check's findings, shared with the caller's side: the count of
/// invalid lines and the first of them; none while the check runs.
type Checked = Arc<Mutex<Option<(u64, Vec<Rejection>)>>>;

/// What the reader thread needs.
struct Job<R> {
    input: R,
    total: u64,
    skip_invalid: bool,
    /// The check's count and first rejections, once it has finished.
    checked: Checked,
    renumber: Renumber,
}

/// Both passes, on the reader thread.
fn ingest<R: Read + Seek>(
    mut job: Job<R>,
    sink: &mut Sink,
    reporter: &mut Reporter,
) -> Result<IngestReport, ImportError> {
    let (input, total) = (&mut job.input, job.total);
    let mut report = IngestReport::default();
    let mut on_progress = |p| reporter.report(p);
    on_progress(Progress::Start {
        label: "checking",
        total,
    });
    read_lines(&mut *input, Utc::now(), &mut on_progress, |line, parsed| {
        if let Err(error) = parsed {
            report.rejected += 1;
            if report.rejections.len() < MAX_REJECTIONS_LISTED {
                report.rejections.push(Rejection { line, error });
            }
        }
        Ok::<(), ImportError>(())
    })?;
    on_progress(Progress::Done);
    *job.checked.lock().unwrap_or_else(PoisonError::into_inner) =
        Some((report.rejected, report.rejections.clone()));
    if report.rejected > 0 && !job.skip_invalid {
        report.refused = true;
        return Ok(report);
    }
    input.rewind()?;
    on_progress(Progress::Start {
        label: "ingesting",
        total,
    });
    let renumber = &mut job.renumber;
    read_lines(
        &mut *input,
        Utc::now(),
        &mut on_progress,
        |_, parsed| match parsed {
            Ok(line) => renumber.push(line, sink),
            Err(_) => Ok(()),
        },
    )?;
    renumber.flush(sink)?;
    on_progress(Progress::Done);
    Ok(report)
}
