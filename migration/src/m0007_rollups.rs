//! Version 7: time rollups (decision D81). One row per skill, UTC hour and
//! project (`''` for none): invocations, completed, the completed
//! durations' count, sum in whole microseconds and digest. The store fills
//! it from the log at the `migrate up` that applies this version (digests
//! are computed in Rust), and keeps it in every write transaction after.
//! Rolled back by dropping the table.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 7,
    name: "m0007_rollups",
    description: "Add skill_rollups (per skill, hour and project)",
    up,
    down,
};

fn up(backend: DbBackend) -> Vec<String> {
    let (ts, blob) = match backend {
        DbBackend::Postgres => ("TIMESTAMPTZ", "BYTEA"),
        _ => ("TEXT", "BLOB"),
    };
    vec![format!(
        "CREATE TABLE skill_rollups (
    skill_name TEXT NOT NULL,
    bucket_start {ts} NOT NULL,
    project_path TEXT NOT NULL DEFAULT '',
    invocations BIGINT NOT NULL CHECK (invocations > 0),
    completed BIGINT NOT NULL CHECK (completed >= 0),
    duration_count BIGINT NOT NULL CHECK (duration_count >= 0),
    total_duration_micros BIGINT NOT NULL,
    duration_digest {blob},
    PRIMARY KEY (skill_name, bucket_start, project_path)
)"
    )]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["DROP TABLE skill_rollups".to_owned()]
}
