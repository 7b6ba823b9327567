//! Version 11: daily rollups (decision D92). One row per skill, UTC day and
//! project, with the columns of `skill_rollups`: the merge of that day's
//! hourly rows, kept in the same write transactions. Digests are merged in
//! Rust, so the table is filled by the rebuild that the next `migrate up`
//! runs: this version marks the rollups unfilled, as version 7 did.
//! Rolled back by dropping the table (the mark stays: one more rebuild).

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 11,
    name: "m0011_daily_rollups",
    description: "Add skill_rollups_daily (per skill, UTC day and project), filled by a rebuild",
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
            "CREATE TABLE skill_rollups_daily (
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
        "UPDATE skill_rollups_state SET filled = FALSE".to_owned(),
    ]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["DROP TABLE skill_rollups_daily".to_owned()]
}
