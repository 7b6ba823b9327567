//! `skill-metrics migrate ...`

use std::process::ExitCode;

use clap::Subcommand;
use infrastructure::LedgerState;
use infrastructure::MigrationMode;

#[derive(Subcommand)]
pub(crate) enum Action {
    /// Apply pending migrations (all, or N).
    Up {
        /// How many to apply.
        n: Option<u32>,
    },
    /// Roll back the newest migration, or N of them (0 is all).
    Down {
        /// How many to roll back; 0 rolls back every one.
        n: Option<u32>,
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

pub(crate) async fn run(url: &Option<String>, action: Action) -> anyhow::Result<ExitCode> {
    let store = crate::open(url, MigrationMode::Skip).await?;
    match action {
        Action::Up { n } => {
            store.migrate_up(n).await?;
            println!("schema is up to date");
        }
        Action::Down { n } => {
            let steps = match n {
                Some(0) => None,
                Some(k) => Some(k),
                None => Some(1),
            };
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
