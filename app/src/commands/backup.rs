//! `skill-metrics backup FILE`

use std::path::PathBuf;
use std::process::ExitCode;

use infrastructure::SkillMetricsStore;

/// Snapshot a SQLite store to FILE while writers keep writing.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The snapshot file to create (must not exist).
    file: PathBuf,
}

pub(crate) async fn run(store: &SkillMetricsStore, args: Args) -> anyhow::Result<ExitCode> {
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
