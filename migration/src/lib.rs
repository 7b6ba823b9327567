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

pub use ledger::{LedgerEntry, LedgerState, SqlMigration, verify_ledger};
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};

use sea_orm_migration::MigrationTrait;
use sea_orm_migration::sea_orm::{DbBackend, Value};

/// Every migration, oldest first.
pub fn all() -> [&'static SqlMigration; 3] {
    [
        &m0001_initial_schema::MIGRATION,
        &m0002_add_success_rate::MIGRATION,
        &m0003_opening_balance::MIGRATION,
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

/// How a UTC timestamp is bound on `backend`. SQLite has no timestamp type:
/// every value is written as RFC 3339 text with exactly six fractional digits
/// and `+00:00`, so that text order is time order and `=` is exact.
pub fn timestamp_value(backend: DbBackend, at: chrono::DateTime<chrono::Utc>) -> Value {
    match backend {
        DbBackend::Sqlite => Value::from(sqlite_timestamp(at)),
        _ => Value::from(at),
    }
}

/// The SQLite text form of a timestamp (see [`timestamp_value`]).
pub fn sqlite_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}
