//! Which store a command uses, and opening it.
//!
//! `--database-url` or `SKILL_METRICS_DATABASE_URL` name it; otherwise it is
//! the file `skill-metrics/skill-metrics.db` in the platform's data folder
//! (`$XDG_DATA_HOME`, else `~/.local/share` on Linux), never a file in
//! whatever folder the command happens to run in (decision D54).

use std::path::PathBuf;

use anyhow::Context;
use infrastructure::{ConnectOptions, DatabaseUrl, MigrationMode, SkillMetricsStore};

/// The folder of the default store and the demo's store.
pub(crate) fn data_folder() -> anyhow::Result<PathBuf> {
    let base = dirs::data_dir().context(
        "no data folder is known for this user (no HOME or XDG_DATA_HOME): \
         name a store with --database-url or SKILL_METRICS_DATABASE_URL",
    )?;
    Ok(base.join("skill-metrics"))
}

/// The store named on the command line or in the environment, if any.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreArg {
    /// The URL given, as given.
    pub(crate) given: Option<String>,
    /// Whether it came from `--database-url` itself, not the environment.
    pub(crate) on_command_line: bool,
}

impl StoreArg {
    /// The store's URL: the one given, else the default file.
    pub(crate) fn url(&self) -> anyhow::Result<DatabaseUrl> {
        match &self.given {
            Some(url) => Ok(DatabaseUrl::parse(url)?),
            None => Ok(DatabaseUrl::sqlite_file(
                data_folder()?.join("skill-metrics.db"),
            )),
        }
    }

    /// One line for `--help` and `info`: which store, and why that one.
    pub(crate) fn describe(&self) -> String {
        match (&self.given, self.url()) {
            (_, Err(e)) => format!("none: {e:#}"),
            (Some(_), Ok(url)) => {
                format!("{url} (from --database-url or SKILL_METRICS_DATABASE_URL)")
            }
            (None, Ok(url)) => {
                let size = match &url {
                    DatabaseUrl::SqliteFile(path) => match std::fs::metadata(path) {
                        Ok(m) => {
                            // The write-ahead log holds part of the store too.
                            let wal =
                                std::fs::metadata(format!("{path}-wal")).map_or(0, |w| w.len());
                            format!(", {}", crate::output::bytes(m.len() + wal))
                        }
                        Err(_) => ", not created yet".to_owned(),
                    },
                    _ => String::new(),
                };
                format!("{url} (the default{size})")
            }
        }
    }

    /// Opens the store, creating the default file's folder when needed.
    pub(crate) async fn open(&self, mode: MigrationMode) -> anyhow::Result<SkillMetricsStore> {
        let url = self.url()?;
        open_url(url, self.given.is_none(), mode).await
    }
}

/// Opens `url`; `create_folder` makes the file's folder first (the default
/// store's and the demo's, which the user never created).
pub(crate) async fn open_url(
    url: DatabaseUrl,
    create_folder: bool,
    mode: MigrationMode,
) -> anyhow::Result<SkillMetricsStore> {
    if let (true, DatabaseUrl::SqliteFile(path)) = (create_folder, &url)
        && let Some(folder) = std::path::Path::new(path).parent()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the folder {}", folder.display()))?;
    }
    let shown = url.to_string();
    let mut options = ConnectOptions::new(url);
    options.migrations = mode;
    SkillMetricsStore::connect_with(options)
        .await
        .with_context(|| format!("opening {shown}"))
}
