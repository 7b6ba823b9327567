//! Readers of everything skill-metrics imports, as plain Rust: JSON Lines
//! ([`jsonl`]), the old tracker's JSON file ([`legacy`]) and the Claude Code
//! and Codex transcripts ([`transcripts`]), with the ids they derive and the
//! time-zone policy for naive times ([`LocalZone`]).
//!
//! Nothing here knows about a database or an async runtime: readers turn
//! files into [`domain::Invocation`]s and reports. The `infrastructure`
//! crate's `SkillMetricsStore::import_*` / `ingest_jsonl` methods write what
//! they produce, in batches, and are what an embedder normally calls.

#![forbid(unsafe_code)]

mod error;
pub mod jsonl;
pub mod legacy;
pub mod otlp;
mod progress;
pub mod transcripts;
mod zone;

pub use error::ReadError;
pub use progress::{CountingReader, Progress};
pub use zone::{LocalZone, UnknownZone};
