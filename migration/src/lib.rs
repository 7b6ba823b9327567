//! Versioned schema migrations for skill-metrics, on SQLite and PostgreSQL.
//!
//! Each migration is plain SQL per backend, so that its definition can be
//! hashed: the design's `schema_migrations` ledger (checksum, rollback SQL,
//! timing) is filled beside Sea-ORM's own `seaql_migrations` bookkeeping, and
//! [`verify_ledger`] detects an applied migration whose code has changed.

mod ledger;
mod m0001_initial_schema;
mod m0002_add_success_rate;
mod m0003_opening_balance;
mod m0004_exact_sums_stable_search;
mod m0005_api_tokens;
mod m0006_log_sequence;
mod m0007_rollups;
mod m0008_prune;
mod m0009_bounded_maps;
mod m0010_drop_session_index;
mod m0011_daily_rollups;
mod m0012_dashboard;
mod m0013_sessions_started_index;
mod m0014_rollup_errors;
mod m0015_drop_session_skill_session_index;
mod m0016_session_skill_without_foreign_keys;
mod m0017_ascending_time_indexes;
mod m0018_drop_completed_index;
mod m0019_numbered_sessions;
mod m0020_numbered_session_skill;
mod m0021_leaner_search;
mod timestamp;

pub use ledger::{LedgerEntry, LedgerState, SqlMigration, verify_ledger};
pub use m0004_exact_sums_stable_search::UNKNOWN_SUM;
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};
pub use timestamp::{
    optional_timestamp_value, parse_sqlite_timestamp, sqlite_timestamp, timestamp_value,
};

use sea_orm_migration::MigrationTrait;

/// Every migration, oldest first.
pub fn all() -> [&'static SqlMigration; 21] {
    [
        &m0001_initial_schema::MIGRATION,
        &m0002_add_success_rate::MIGRATION,
        &m0003_opening_balance::MIGRATION,
        &m0004_exact_sums_stable_search::MIGRATION,
        &m0005_api_tokens::MIGRATION,
        &m0006_log_sequence::MIGRATION,
        &m0007_rollups::MIGRATION,
        &m0008_prune::MIGRATION,
        &m0009_bounded_maps::MIGRATION,
        &m0010_drop_session_index::MIGRATION,
        &m0011_daily_rollups::MIGRATION,
        &m0012_dashboard::MIGRATION,
        &m0013_sessions_started_index::MIGRATION,
        &m0014_rollup_errors::MIGRATION,
        &m0015_drop_session_skill_session_index::MIGRATION,
        &m0016_session_skill_without_foreign_keys::MIGRATION,
        &m0017_ascending_time_indexes::MIGRATION,
        &m0018_drop_completed_index::MIGRATION,
        &m0019_numbered_sessions::MIGRATION,
        &m0020_numbered_session_skill::MIGRATION,
        &m0021_leaner_search::MIGRATION,
    ]
}

/// The migrator to pass to Sea-ORM's `MigratorTrait` functions.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        all()
            .into_iter()
            .map(|m| Box::new(m.clone()) as Box<dyn MigrationTrait>)
            .collect()
    }
}
