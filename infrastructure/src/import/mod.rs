//! Importing into the store: JSON Lines, the legacy JSON file, Claude Code
//! and Codex transcripts. The `importers` crate reads and plans (no database
//! types); the methods here write what it produces, in batches of one
//! transaction each, and report progress through a callback on the
//! caller's task, so a CLI can draw bars and a server can log.
//!
//! ```no_run
//! # async fn f(store: infrastructure::SkillMetricsStore) -> Result<(), infrastructure::import::ImportError> {
//! use infrastructure::import::TranscriptOptions;
//!
//! let options = TranscriptOptions::default(); // skills only, 30 min idle
//! let report = store
//!     .import_claude_code(&["/home/me/.claude/projects".into()], &options, &mut |_progress| {})
//!     .await?;
//! println!("imported {} of {} calls", report.imported, report.calls);
//! # Ok(()) }
//! ```

mod batches;
mod ingest;
mod legacy;
mod numbered;
mod transcripts;

pub use batches::Written;
pub use importers::legacy::FilePlan;
pub use importers::transcripts::{Format, Mode};
pub use importers::{LocalZone, Progress, ReadError};
pub use ingest::{IngestError, IngestOptions, IngestReport, Rejection};
pub use legacy::LegacyImport;
pub use transcripts::{TranscriptOptions, TranscriptReport};

use crate::StoreError;

/// Invocations per transaction unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 5000;

/// What an import can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// An input cannot be read or breaks a rule.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A step failed after earlier ones were committed; `context` names the
    /// step. Re-running the import finishes it (ids make it idempotent).
    #[error("{context}")]
    Step {
        /// The step, e.g. `importing /x/skill_metrics.json (re-run to finish)`.
        context: String,
        /// Why it failed.
        #[source]
        source: Box<ImportError>,
    },
    /// The thread reading the input panicked.
    #[error("the reader thread panicked")]
    Panicked,
}

impl ImportError {
    fn step(self, context: impl Into<String>) -> Self {
        Self::Step {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

impl From<std::io::Error> for ImportError {
    fn from(e: std::io::Error) -> Self {
        Self::Read(ReadError::io("reading the input", e))
    }
}

/// Compiles only while every import's future is `Send`, so that a server
/// can run an import on a spawned task or in a request handler.
#[cfg(test)]
#[allow(dead_code)]
fn imports_can_run_on_spawned_tasks(store: crate::SkillMetricsStore) {
    fn spawnable<F: std::future::Future + Send>(_: F) {}
    let options = IngestOptions {
        skip_invalid: false,
        batch_size: DEFAULT_BATCH_SIZE,
    };
    spawnable(store.ingest_jsonl(std::io::Cursor::new(Vec::new()), &options, &mut |_| {}));
    spawnable(store.import_legacy(Vec::new(), DEFAULT_BATCH_SIZE, &mut |_| {}));
    let transcripts = TranscriptOptions::default();
    spawnable(store.import_claude_code(&[], &transcripts, &mut |_| {}));
    spawnable(store.import_codex(&[], &transcripts, &mut |_| {}));
}
