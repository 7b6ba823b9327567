//! `skill-metrics export`

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use domain::parse_timestamp;
use infrastructure::{ExportCursor, ExportFilter, SkillMetricsStore};

/// Invocations read per page (also `copy`'s page).
pub(crate) const PAGE: u64 = 5000;

/// Write the log as JSON Lines in the ingest format.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Only this skill.
    #[arg(long)]
    skill: Option<String>,
    /// From this time (inclusive, RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Until this time (exclusive, RFC 3339).
    #[arg(long)]
    until: Option<String>,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let filter = ExportFilter {
        skill: args.skill,
        since: args
            .since
            .map(|t| parse_timestamp("--since", &t))
            .transpose()?,
        until: args
            .until
            .map(|t| parse_timestamp("--until", &t))
            .transpose()?,
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(sink);
    let mut cursor: ExportCursor = None;
    let mut written = 0u64;
    loop {
        let (page, next) = store.export_page(&filter, &cursor, PAGE).await?;
        for inv in &page {
            serde_json::to_writer(&mut out, inv)?;
            out.write_all(b"\n")?;
        }
        written += page.len() as u64;
        if (page.len() as u64) < PAGE {
            break;
        }
        cursor = next;
    }
    out.flush()?;
    if args.output.is_some() {
        eprintln!("exported {written} invocations");
    }
    Ok(ExitCode::SUCCESS)
}
