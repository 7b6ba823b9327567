//! Version 12: what the dashboard needs (decision D93). `dashboard_logins`
//! holds one-time login codes and the browser sessions they open, as
//! SHA-256 hashes, each with its expiry; `serve_addresses` holds the
//! addresses the running `serve` processes listen on, so that
//! `skill-metrics dashboard` finds one. Rolled back by dropping both.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 12,
    name: "m0012_dashboard",
    description: "Add dashboard_logins (hashed one-time codes and sessions) and serve_addresses",
    up,
    down,
};

fn up(backend: DbBackend) -> Vec<String> {
    let ts = match backend {
        DbBackend::Postgres => "TIMESTAMPTZ",
        _ => "TEXT",
    };
    vec![
        format!(
            "CREATE TABLE dashboard_logins (
    secret_hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('code', 'session')),
    created_at {ts} NOT NULL,
    expires_at {ts} NOT NULL,
    used_at {ts}
)"
        ),
        format!(
            "CREATE TABLE serve_addresses (
    address TEXT PRIMARY KEY NOT NULL,
    started_at {ts} NOT NULL
)"
        ),
    ]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec![
        "DROP TABLE serve_addresses".to_owned(),
        "DROP TABLE dashboard_logins".to_owned(),
    ]
}
