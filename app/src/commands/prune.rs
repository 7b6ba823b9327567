//! `skill-metrics prune --before T [--archive FILE]`: the only way rows
//! leave the log (D83).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use domain::parse_timestamp;
use flate2::Compression;
use flate2::write::GzEncoder;
use infrastructure::{ExportCursor, ExportFilter, SkillMetricsStore};

use crate::commands::export::PAGE;

/// Remove raw events older than a time; aggregates and rollups stay exactly as they were.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Remove invocations before this time (RFC 3339, e.g. 2026-01-01T00:00:00Z).
    #[arg(long)]
    before: String,
    /// First write them to this new file, gzip-compressed JSON Lines that
    /// `skill-metrics ingest FILE` reads back.
    #[arg(long)]
    archive: Option<PathBuf>,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let before = parse_timestamp("--before", &args.before)?;
    let through = match &args.archive {
        Some(path) => Some(write_archive(store, before, path).await?),
        None => None,
    };
    let report = store.prune(before, through).await.with_context(|| match &args.archive {
        Some(path) => format!(
            "pruning (nothing was removed; {} holds a copy, which ingest would find already logged)",
            path.display()
        ),
        None => "pruning (nothing was removed)".to_owned(),
    })?;
    println!(
        "removed {} invocations from before {}{}; aggregates, rollups and sessions are unchanged",
        report.removed,
        before.to_rfc3339(),
        args.archive
            .as_ref()
            .map(|p| format!(" (archived in {})", p.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes every invocation before `before` to a new gzip file at `path`
/// (through a temporary name, synced, then renamed) and returns the last
/// `seq` it holds: the prune removes exactly what the archive has.
async fn write_archive(
    store: &SkillMetricsStore,
    before: chrono::DateTime<chrono::Utc>,
    path: &Path,
) -> anyhow::Result<i64> {
    if path.exists() {
        anyhow::bail!(
            "{} exists already: choose a new archive file",
            path.display()
        );
    }
    let partial = path.with_extension("partial");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let result = fill(store, before, file).await;
    let finished = result.and_then(|(file, through)| {
        file.sync_all()
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        Ok(through)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    finished
}

async fn fill(
    store: &SkillMetricsStore,
    before: chrono::DateTime<chrono::Utc>,
    file: File,
) -> anyhow::Result<(File, i64)> {
    let filter = ExportFilter {
        until: Some(before),
        ..ExportFilter::default()
    };
    let mut out = GzEncoder::new(BufWriter::new(file), Compression::default());
    let mut cursor: ExportCursor = None;
    loop {
        let (page, next) = store.export_page(&filter, &cursor, PAGE).await?;
        for inv in &page {
            serde_json::to_writer(&mut out, inv)?;
            out.write_all(b"\n")?;
        }
        cursor = next;
        if (page.len() as u64) < PAGE {
            break;
        }
    }
    let file = out
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the archive")?;
    Ok((file, cursor.unwrap_or(0)))
}
