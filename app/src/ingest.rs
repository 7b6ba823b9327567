//! `skill-metrics ingest FILE|-`: JSON Lines in, streamed in batches.
//!
//! Strict by default: a first pass validates every line and nothing is
//! written if any is bad; the second pass writes batch by batch. Lines without
//! an `id` get one derived from their line number and content, so a re-run
//! (after a crash, or on a file that grew) adds only what is missing.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Seek, Write};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use domain::{Invocation, InvocationId, ValidationError};
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::SkillMetricsStore;

use crate::Reported;
use crate::batches::write_streamed;

/// Longest line accepted; a valid invocation is far smaller.
const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;
/// Bad lines listed before the rest are only counted.
const MAX_REPORTED: usize = 50;
/// Namespace of ids derived for lines that carry none.
const LINE_NAMESPACE: uuid::Uuid = uuid::uuid!("5b0c3c1e-8a37-4d57-9a43-0f0e7c6bd1a1");

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The JSON Lines file, or - for standard input.
    file: String,
    /// Write the valid lines and report the invalid ones, instead of writing nothing.
    #[arg(long)]
    skip_invalid: bool,
    /// Invocations per transaction.
    #[arg(long, default_value_t = 5000)]
    batch_size: usize,
}

/// A reader over the input that can be read twice: stdin is spooled to a
/// temporary file during the first pass.
fn open_input(path: &str) -> anyhow::Result<(File, u64)> {
    if path == "-" {
        let mut spool = tempfile::tempfile().context("creating a spool file for standard input")?;
        io::copy(&mut io::stdin().lock(), &mut spool).context("reading standard input")?;
        let len = spool.stream_position()?;
        spool.rewind()?;
        Ok((spool, len))
    } else {
        let file = File::open(path).with_context(|| format!("opening {path}"))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((file, len))
    }
}

fn progress(len: u64, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Calls `each` with every line's number and parsed result, in order.
fn for_each_line(
    file: &File,
    bar: &ProgressBar,
    mut each: impl FnMut(u64, Result<Invocation, ValidationError>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut number = 0u64;
    let now = Utc::now();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        number += 1;
        bar.inc(read as u64);
        if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
            // Skip the rest of the oversized line without holding it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let n = (&mut reader).take(1 << 20).read_until(b'\n', &mut rest)?;
                bar.inc(n as u64);
                if n == 0 || rest.ends_with(b"\n") {
                    break;
                }
            }
            each(
                number,
                Err(ValidationError::new(
                    "line",
                    format!("is longer than {MAX_LINE_BYTES} bytes"),
                )),
            )?;
            continue;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(e) => {
                each(
                    number,
                    Err(ValidationError::new(
                        "line",
                        format!("is not valid UTF-8 ({e})"),
                    )),
                )?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<serde_json::Value>(text)
            .map_err(|e| ValidationError::new("line", format!("is not valid JSON: {e}")))
            .and_then(|value| {
                let derive_id = value.get("id").is_none_or(serde_json::Value::is_null);
                let mut inv = Invocation::from_json(&value, now)?;
                if derive_id {
                    let key = format!("{number}\n{text}");
                    inv.id = InvocationId::derived(&LINE_NAMESPACE, key.as_bytes());
                }
                Ok(inv)
            });
        each(number, parsed)?;
    }
    Ok(())
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
    let (mut file, len) = open_input(&args.file)?;
    let mut rejected = 0u64;
    let stderr = io::stderr();
    let mut report = |number: u64, e: &ValidationError| {
        rejected += 1;
        if rejected as usize <= MAX_REPORTED {
            let _ = writeln!(stderr.lock(), "line {number}: {e}");
        }
    };

    // Pass 1: validate everything; in strict mode, stop before writing.
    let bar = progress(len, "checking");
    for_each_line(&file, &bar, |n, parsed| {
        if let Err(e) = parsed {
            report(n, &e);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    if rejected as usize > MAX_REPORTED {
        eprintln!(
            "... and {} more invalid lines",
            rejected as usize - MAX_REPORTED
        );
    }
    if rejected > 0 && !args.skip_invalid {
        eprintln!(
            "{rejected} invalid line(s); nothing was written (use --skip-invalid to write the valid lines)"
        );
        println!("inserted 0, duplicates 0, rejected {rejected}");
        return Err(Reported.into());
    }

    // Pass 2: write the valid lines batch by batch.
    file.rewind()?;
    let bar = progress(len, "ingesting");
    let (written, result) = write_streamed(store, args.batch_size, move |sink| {
        for_each_line(&file, &bar, |_, parsed| match parsed {
            Ok(inv) => sink.push(inv).map_err(anyhow::Error::msg),
            Err(_) => Ok(()),
        })?;
        bar.finish_and_clear();
        Ok(())
    })
    .await;
    println!(
        "inserted {}, duplicates {}, rejected {rejected}",
        written.inserted, written.duplicates
    );
    result.context("writing (earlier batches are committed; re-run to finish)")?;
    // With --skip-invalid the user asked for the valid lines; they were written.
    Ok(ExitCode::SUCCESS)
}
