//! `import-claude-code` and `import-codex`: the library reads the
//! assistants' transcripts and writes their calls; this file holds the
//! arguments, the report and the `--follow` loop around Ctrl-C.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use domain::parse_timestamp;
use importers::transcripts::{
    default_roots, format_duration, idle_for, list_files, parse_duration,
};
use infrastructure::SkillMetricsStore;
use infrastructure::import::{Format, Mode, TranscriptOptions, TranscriptReport};

use crate::output::Table;
use crate::progress::Bars;

/// Which calls become invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Tools {
    /// Skill uses only (Skill tool, SlashCommand, typed commands, Codex `<skill>`).
    Skills,
    /// Every tool call, named after its tool (Bash, Read, Task, ...).
    All,
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Files or folders to read (default: the assistant's own folders).
    paths: Vec<PathBuf>,
    /// `skills` (default): one invocation per skill use; `all`: one per tool call.
    #[arg(long, value_enum, default_value = "skills")]
    tools: Tools,
    /// Only calls at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Report what would be imported; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep watching and import new calls as the files grow, until Ctrl-C
    /// (which reads what changed once more before stopping).
    #[arg(long)]
    follow: bool,
    /// A call still without a result at the end of its file (or a skill whose
    /// turn is still open) is held back as in flight until the file has been
    /// idle this long; then it is recorded as `NoResult`. `0s` records it now.
    /// Units: s, m, h, d (e.g. `90s`, `30m`, `1h30m`).
    #[arg(long, default_value = "30m", value_parser = parse_duration, value_name = "DURATION")]
    idle_after: Duration,
}

fn print(report: &TranscriptReport, options: &TranscriptOptions) {
    let dry_run = options.dry_run;
    println!(
        "files {}, lines {}, calls found {}, imported {}, already present {}, skipped lines {}{}",
        report.files,
        report.lines,
        report.calls,
        report.imported,
        report.present,
        report.skipped,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if report.in_flight > 0 {
        println!(
            "{} call(s) held back as in flight: no result yet; recorded once their session moves on or its file is idle for {}",
            report.in_flight,
            format_duration(options.idle_after)
        );
    }
    if let Some(first) = &report.first_invalid {
        println!("{} call(s) skipped as invalid: {first}", report.invalid);
    }
    let mut t = Table::new(["name", "calls"]);
    for (name, n) in &report.per_tool {
        t.row([name.clone(), n.to_string()]);
    }
    t.print();
}

pub(crate) async fn run(
    store: &SkillMetricsStore,
    args: Args,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let roots = if args.paths.is_empty() {
        let found = default_roots(format);
        if found.is_empty() {
            anyhow::bail!(
                "no transcript folders found (set CLAUDE_CONFIG_DIR / CODEX_HOME, or name files or folders)"
            );
        }
        found
    } else {
        args.paths.clone()
    };
    for r in &roots {
        anyhow::ensure!(r.exists(), "{} does not exist", r.display());
        eprintln!("reading {}", r.display());
    }
    let options = TranscriptOptions {
        mode: match args.tools {
            Tools::Skills => Mode::Skills,
            Tools::All => Mode::All,
        },
        since: args
            .since
            .as_deref()
            .map(|t| parse_timestamp("--since", t))
            .transpose()?,
        dry_run: args.dry_run,
        idle_after: args.idle_after,
    };
    let mut bars = Bars::new(!args.follow);
    let report = store
        .import_transcripts(format, &roots, &options, &mut |p| bars.update(p))
        .await?;
    print(&report, &options);
    if args.follow {
        follow(store, format, &roots, &options, report).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-imports files that grew every two seconds, and files whose calls were
/// in flight once they have gone idle, until Ctrl-C, which ends with one
/// last pass (D27).
async fn follow(
    store: &SkillMetricsStore,
    format: Format,
    roots: &[PathBuf],
    options: &TranscriptOptions,
    first: TranscriptReport,
) -> anyhow::Result<()> {
    // Listen before saying so: a Ctrl-C from now on ends with a last pass.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopping = tokio::select! {
        biased;
        _ = &mut ctrl_c => true,
        () = std::future::ready(()) => false,
    };
    eprintln!("following; Ctrl-C to stop");
    let mut seen: BTreeMap<PathBuf, u64> = BTreeMap::new();
    let mut waiting = first.in_flight_files;
    loop {
        if !stopping {
            stopping = tokio::select! {
                _ = &mut ctrl_c => true,
                () = tokio::time::sleep(Duration::from_secs(2)) => false,
            };
        }
        let changed: Vec<PathBuf> = list_files(roots)
            .into_iter()
            .filter(|f| {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                let grew = seen.insert(f.clone(), len) != Some(len);
                grew || (waiting.contains(f) && idle_for(f) >= options.idle_after)
            })
            .collect();
        if !changed.is_empty() {
            // Each pass is whole batches, each one transaction: stopping
            // between them leaves nothing half-written.
            let r = store
                .import_transcripts(format, &changed, options, &mut |_| {})
                .await?;
            if r.imported > 0 {
                eprintln!(
                    "imported {} new call(s) from {} file(s)",
                    r.imported,
                    changed.len()
                );
            }
            if let Some(first) = &r.first_invalid {
                eprintln!("{} call(s) skipped as invalid: {first}", r.invalid);
            }
            for f in &changed {
                waiting.remove(f);
            }
            waiting.extend(r.in_flight_files);
        }
        if stopping {
            break;
        }
    }
    if waiting.is_empty() {
        eprintln!("stopped");
    } else {
        eprintln!(
            "stopped; calls still in flight in {} file(s) are left for a later run",
            waiting.len()
        );
    }
    Ok(())
}
