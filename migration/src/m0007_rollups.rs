//! Version 7: time rollups (decision D81). One row per skill, UTC hour and
//! project (`''` for none): invocations, completed, the completed
//! durations' count, sum in whole microseconds and digest. The store fills
//! it from the log after the `migrate up` that applies this version
//! (digests are computed in Rust), and keeps it in every write transaction
//! after. `skill_rollups_state` records whether that fill has run: until
//! it has, every `migrate up` runs it (a fill that was interrupted, or
//! writes made by a process that did not fill, leave it unrecorded).
//! Rolled back by dropping both tables.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 7,
    name: "m0007_rollups",
    description: "Add skill_rollups (per skill, hour and project) and skill_rollups_state",
    up,
    down,
};

fn up(backend: DbBackend) -> Vec<String> {
    let (ts, blob) = match backend {
        DbBackend::Postgres => ("TIMESTAMPTZ", "BYTEA"),
        _ => ("TEXT", "BLOB"),
    };
    vec![
        format!(
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
        ),
        "CREATE TABLE skill_rollups_state (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    filled BOOLEAN NOT NULL
)"
        .to_owned(),
        "INSERT INTO skill_rollups_state (id, filled) VALUES (1, FALSE)".to_owned(),
    ]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec![
        "DROP TABLE skill_rollups_state".to_owned(),
        "DROP TABLE skill_rollups".to_owned(),
    ]
}
