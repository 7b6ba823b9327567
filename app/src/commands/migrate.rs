//! `skill-metrics migrate ...`

use std::process::ExitCode;

use clap::Subcommand;
use infrastructure::{LedgerState, MigrationMode, SkillMetricsStore};

use crate::store::StoreArg;

#[derive(Subcommand)]
pub(crate) enum Action {
    /// Apply pending migrations (all, or N).
    Up {
        /// How many to apply.
        n: Option<u32>,
    },
    /// Roll back the newest migration, or N of them (0 is all). On a store
    /// that holds data this drops some of it, so it needs --yes.
    Down {
        /// How many to roll back; 0 rolls back every one.
        n: Option<u32>,
        /// Roll back even though recorded data will be dropped.
        #[arg(long)]
        yes: bool,
    },
    /// List each version with description, applied time, duration and checksum state.
    Status,
    /// Exit non-zero when any applied migration does not match the code.
    Verify,
}

fn describe(state: &LedgerState) -> &'static str {
    match state {
        LedgerState::Matches => "ok",
        LedgerState::Mismatch { .. } => "CHECKSUM MISMATCH",
        LedgerState::UnknownVersion => "UNKNOWN (newer than this program)",
        LedgerState::Pending => "pending",
    }
}

/// What a rollback would drop, if anything. A store whose contents cannot
/// be counted (a schema already partly rolled back) is taken to hold data.
async fn data_at_risk(store: &SkillMetricsStore) -> Option<String> {
    let logged = store
        .recent(&Default::default(), 1)
        .await
        .map_or(true, |newest| !newest.is_empty());
    match store.info().await {
        Ok(info) => (logged || info.invocations > 0 || info.sessions > 0).then(|| {
            format!(
                "{} invocations of {} skills and {} sessions",
                info.invocations, info.skills, info.sessions
            )
        }),
        Err(_) => Some("data that cannot be counted on this schema".to_owned()),
    }
}

pub(crate) async fn run(store: &StoreArg, action: Action) -> anyhow::Result<ExitCode> {
    let store = store.open(MigrationMode::Skip).await?;
    match action {
        Action::Up { n } => {
            store.migrate_up(n).await?;
            println!("schema is up to date");
        }
        Action::Down { n, yes } => {
            let steps = match n {
                Some(0) => None,
                Some(k) => Some(k),
                None => Some(1),
            };
            if !yes && let Some(data) = data_at_risk(&store).await {
                anyhow::bail!(
                    "the store holds {data}; rolling back drops the tables or columns that \
                         keep them. Take a backup or export first, then run again with --yes"
                );
            }
            store.migrate_down(steps).await?;
            println!(
                "rolled back {}",
                steps.map_or("every migration".to_owned(), |k| format!(
                    "{k} migration(s)"
                ))
            );
        }
        Action::Status | Action::Verify => {
            let entries = store.migration_status().await?;
            let mut bad = false;
            println!(
                "{:<8} {:<54} {:<34} {:>10}  checksum",
                "version", "description", "applied at", "ms"
            );
            for e in &entries {
                bad |= matches!(
                    e.state,
                    LedgerState::Mismatch { .. } | LedgerState::UnknownVersion
                );
                println!(
                    "{:<8} {:<54} {:<34} {:>10}  {}",
                    e.version,
                    e.description,
                    e.applied_at.as_deref().unwrap_or("-"),
                    e.migration_time_ms
                        .map_or("-".to_owned(), |ms| format!("{ms:.1}")),
                    describe(&e.state)
                );
                if let LedgerState::Mismatch { recorded, expected } = &e.state {
                    eprintln!(
                        "version {}: recorded checksum {recorded}, code has {expected}",
                        e.version
                    );
                }
            }
            if bad {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
