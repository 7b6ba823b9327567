//! `skill-metrics copy`

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use domain::Invocation;
use indicatif::{ProgressBar, ProgressStyle};
use infrastructure::{DatabaseUrl, ExportCursor, ExportFilter, MigrationMode};

use crate::commands::export::PAGE;
use crate::store::open_url;

/// Copy everything from one store to another (e.g. SQLite to PostgreSQL).
#[derive(clap::Args)]
pub(crate) struct Args {
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

pub(crate) async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let from = url_arg("from", args.from, args.from_env)?;
    let to = url_arg("to", args.to, args.to_env)?;
    let from = open_url(DatabaseUrl::parse(&from)?, false, MigrationMode::Apply).await?;
    let to = open_url(DatabaseUrl::parse(&to)?, false, MigrationMode::Apply).await?;
    // Refused before anything is written (D102).
    if from.has_pruned().await? && to.has_pruned().await? {
        anyhow::bail!(
            "the store copied from has been pruned, and so has the store copied to: their \
             balances could count the same invocation twice; nothing was copied (copy into a new \
             store, or into one never pruned)"
        );
    }
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
    // What prunes removed: their ids and balances, then a rebuild that
    // counts them.
    let pruned = match from.copy_pruned_into(&to).await {
        Ok(pruned) => pruned,
        // The carry refused, writing nothing: the target was pruned since
        // the check above, or the source's pruned hours lack a balance.
        Err(e @ infrastructure::StoreError::Unsupported { .. }) => {
            return Err(anyhow::Error::new(e).context(format!(
                "copied {inserted} invocations and the sessions, but not what the prunes of the \
                 store copied from left, so its pruned invocations are missing from the copy's \
                 metrics"
            )));
        }
        // The carry committed and the rebuild after it failed: the
        // aggregates do not count the balances yet, and a copy again would
        // be refused, since the target now holds pruned balances.
        Err(e) if to.has_pruned().await.unwrap_or(false) => {
            return Err(anyhow::Error::new(e).context(
                "copied the invocations, the sessions and what the prunes left, but rebuilding \
                 the aggregates failed: run `skill-metrics rebuild` on the store copied to",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let pruned = if pruned > 0 {
        format!(", and {pruned} pruned invocations' balances (aggregates rebuilt)")
    } else {
        String::new()
    };
    println!(
        "copied {inserted} invocations ({duplicates} already present), {} sessions, opening balances from {} source(s){pruned}",
        sessions.len(),
        by_source.len()
    );
    Ok(ExitCode::SUCCESS)
}
