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

pub use ledger::{LedgerEntry, LedgerState, SqlMigration, verify_ledger};
pub use m0004_exact_sums_stable_search::UNKNOWN_SUM;
pub use sea_orm_migration::{MigrationStatus, MigratorTrait};

use sea_orm_migration::MigrationTrait;
use sea_orm_migration::sea_orm::{DbBackend, Value};

/// Every migration, oldest first.
pub fn all() -> [&'static SqlMigration; 4] {
    [
        &m0001_initial_schema::MIGRATION,
        &m0002_add_success_rate::MIGRATION,
        &m0003_opening_balance::MIGRATION,
        &m0004_exact_sums_stable_search::MIGRATION,
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
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Signed or five-digit years and leap seconds: chrono's own rules.
        return at.format(SQLITE_TIMESTAMP).to_string();
    }
    // The common case without parsing a format string per value (it showed
    // in the ingest profile).
    let mut out = String::with_capacity(32);
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        nanos / 1_000
    );
    out
}

const SQLITE_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.6f+00:00";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, TimeZone, Utc};

    #[test]
    fn sqlite_timestamps_match_the_documented_format() {
        let mut cases: Vec<DateTime<Utc>> = vec![
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(12, 3, 4, 5, 6, 7).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap(),
            "2026-11-29T05:13:21.999999999Z".parse().unwrap(),
            "2016-12-31T23:59:60.5Z".parse().unwrap(),
        ];
        let mut t = Utc.with_ymd_and_hms(2000, 2, 29, 1, 2, 3).unwrap();
        for _ in 0..1_000 {
            t += chrono::Duration::nanoseconds(987_654_321_123);
            cases.push(t);
        }
        for at in cases {
            assert_eq!(
                sqlite_timestamp(at),
                at.format(SQLITE_TIMESTAMP).to_string(),
                "{at:?}"
            );
        }
        let text = sqlite_timestamp("2026-01-02T03:04:05.25Z".parse().unwrap());
        assert_eq!(text, "2026-01-02T03:04:05.250000+00:00");
    }
}
