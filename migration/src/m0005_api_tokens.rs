//! Version 5: API tokens for `skill-metrics serve`. Only a SHA-256 hash of
//! each token is kept; the token itself is shown once, when it is made.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 5,
    name: "m0005_api_tokens",
    description: "Add api_tokens (hashed bearer tokens with a scope)",
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
            "CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('ingest', 'read', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at {ts} NOT NULL,
    last_used_at {ts},
    revoked_at {ts}
)"
        ),
        // One live token per name; revoked ones stay listed.
        "CREATE UNIQUE INDEX idx_api_tokens_live_name ON api_tokens (name) \
         WHERE revoked_at IS NULL"
            .to_owned(),
    ]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["DROP TABLE api_tokens".to_owned()]
}
