//! `export`, `copy`, `backup`, `maintain`.

use std::collections::BTreeMap;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use domain::{Invocation, parse_timestamp};
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::{ExportCursor, ExportFilter, MigrationMode, SkillMetricsStore};

const PAGE: u64 = 5000;

#[derive(clap::Args)]
pub(crate) struct ExportArgs {
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

pub(crate) async fn export(
    store: &SkillMetricsStore,
    args: ExportArgs,
) -> anyhow::Result<ExitCode> {
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
            serde_json::to_writer(&mut out, &inv.to_json())?;
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

#[derive(clap::Args)]
pub(crate) struct CopyArgs {
    /// The store to read (or give --from-env).
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// Read the URL of the store to read from this environment variable
    /// (keeps a password off the command line).
    #[arg(long, value_name = "VAR")]
    from_env: Option<String>,
    /// The store to write, created and migrated if new (or give --to-env).
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// Read the URL of the store to write from this environment variable.
    #[arg(long, value_name = "VAR")]
    to_env: Option<String>,
}

/// The URL given by `--{flag}` or named by `--{flag}-env`: exactly one of
/// them. Errors name the flags and the variable, never its value.
fn url_arg(flag: &str, url: Option<String>, var: Option<String>) -> anyhow::Result<String> {
    match (url, var) {
        (Some(url), None) => Ok(url),
        (None, Some(var)) => match std::env::var_os(&var) {
            None => anyhow::bail!("--{flag}-env: the environment variable {var} is not set"),
            Some(v) if v.is_empty() => {
                anyhow::bail!("--{flag}-env: the environment variable {var} is empty")
            }
            Some(v) => v.into_string().map_err(|_| {
                anyhow::anyhow!("--{flag}-env: the environment variable {var} is not valid UTF-8")
            }),
        },
        (Some(_), Some(_)) => anyhow::bail!("give --{flag} or --{flag}-env, not both"),
        (None, None) => anyhow::bail!("--{flag} URL or --{flag}-env VAR is required"),
    }
}

pub(crate) async fn copy(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let from = url_arg("from", args.from, args.from_env)?;
    let to = url_arg("to", args.to, args.to_env)?;
    let from = crate::open(&Some(from), MigrationMode::Apply).await?;
    let to = crate::open(&Some(to), MigrationMode::Apply).await?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} copied {pos} invocations ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    // Read the next page while the previous one is written.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Invocation>>(2);
    let reader = tokio::spawn(async move {
        let mut cursor: ExportCursor = None;
        loop {
            let (page, next) = from
                .export_page(&ExportFilter::default(), &cursor, PAGE)
                .await?;
            let last = (page.len() as u64) < PAGE;
            if !page.is_empty() && tx.send(page).await.is_err() {
                break;
            }
            if last {
                break;
            }
            cursor = next;
        }
        Ok::<_, infrastructure::StoreError>(from)
    });
    let (mut inserted, mut duplicates) = (0usize, 0usize);
    while let Some(page) = rx.recv().await {
        let outcome = to.record_batch(page).await?;
        inserted += outcome.inserted;
        duplicates += outcome.duplicates.len();
        bar.inc((outcome.inserted + outcome.duplicates.len()) as u64);
    }
    let from = reader.await.context("the reader task failed")??;
    bar.finish_and_clear();
    let sessions = from.sessions().await?;
    to.merge_sessions(&sessions).await?;
    let mut by_source: BTreeMap<String, BTreeMap<String, domain::SkillAggregate>> = BTreeMap::new();
    for (skill, source, balance) in from.balances().await? {
        by_source.entry(source).or_default().insert(skill, balance);
    }
    for (source, balances) in &by_source {
        to.put_balances(source, balances.clone()).await?;
    }
    println!(
        "copied {inserted} invocations ({duplicates} already present), {} sessions, opening balances from {} source(s)",
        sessions.len(),
        by_source.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// The snapshot file to create (must not exist).
    file: PathBuf,
}

pub(crate) async fn backup(
    store: &SkillMetricsStore,
    args: BackupArgs,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    store.backup(&args.file).await?;
    println!(
        "backed up to {} in {:.2?}; to restore, stop every writer, delete any -wal and -shm files beside the store, \
         then copy the backup over it (or point --database-url at sqlite://{0})",
        args.file.display(),
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn maintain(store: &SkillMetricsStore) -> anyhow::Result<ExitCode> {
    for step in store.maintain().await? {
        println!("{:<16} {:>10.2?}", step.statement, step.elapsed);
    }
    Ok(ExitCode::SUCCESS)
}
