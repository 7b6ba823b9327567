//! `skill-metrics ingest FILE|-`: JSON Lines in, streamed in batches.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::process::ExitCode;

use anyhow::Context;
use infrastructure::SkillMetricsStore;
use infrastructure::import::{DEFAULT_BATCH_SIZE, IngestOptions, IngestReport};

use crate::Reported;
use crate::progress::Bars;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The JSON Lines file, or - for standard input.
    file: String,
    /// Write the valid lines and report the invalid ones, instead of writing nothing.
    #[arg(long)]
    skip_invalid: bool,
    /// Invocations per transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    batch_size: usize,
}

/// The input as a file that can be read twice: stdin is spooled to a
/// temporary file first, and gzip input (a `prune --archive`, say) is
/// decompressed into one.
fn open_input(path: &str) -> anyhow::Result<File> {
    let mut file = if path == "-" {
        let mut spool = tempfile::tempfile().context("creating a spool file for standard input")?;
        io::copy(&mut io::stdin().lock(), &mut spool).context("reading standard input")?;
        spool.rewind()?;
        spool
    } else {
        File::open(path).with_context(|| format!("opening {path}"))?
    };
    let mut magic = [0u8; 2];
    let gzip = matches!(file.read_exact(&mut magic), Ok(()) if magic == [0x1f, 0x8b]);
    file.rewind()?;
    if !gzip {
        return Ok(file);
    }
    let mut plain = tempfile::tempfile().context("creating a file to decompress into")?;
    io::copy(
        &mut flate2::read::MultiGzDecoder::new(io::BufReader::new(file)),
        &mut plain,
    )
    .with_context(|| format!("decompressing {path} (gzip)"))?;
    plain.rewind()?;
    Ok(plain)
}

fn print_totals(report: &IngestReport) {
    println!(
        "inserted {}, duplicates {}, rejected {}",
        report.written.inserted, report.written.duplicates, report.rejected
    );
}

/// The invalid lines, each with its number and the field at fault.
fn print_rejections(report: &IngestReport) {
    for r in &report.rejections {
        eprintln!("line {}: {}", r.line, r.error);
    }
    let listed = report.rejections.len() as u64;
    if report.rejected > listed {
        eprintln!("... and {} more invalid lines", report.rejected - listed);
    }
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let file = open_input(&args.file)?;
    let options = IngestOptions {
        skip_invalid: args.skip_invalid,
        batch_size: args.batch_size,
    };
    let mut bars = Bars::new(true);
    let report = match store
        .ingest_jsonl(file, &options, &mut |p| bars.update(p))
        .await
    {
        Ok(report) => report,
        Err(e) => {
            print_rejections(&e.report);
            print_totals(&e.report);
            return Err(e.into());
        }
    };
    print_rejections(&report);
    if report.refused {
        eprintln!(
            "{} invalid line(s); nothing was written (use --skip-invalid to write the valid lines)",
            report.rejected
        );
        print_totals(&report);
        return Err(Reported.into());
    }
    // With --skip-invalid the user asked for the valid lines; they were written.
    print_totals(&report);
    Ok(ExitCode::SUCCESS)
}
