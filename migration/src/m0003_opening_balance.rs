//! Version 3: per-skill opening balances — counts a legacy file's `skills`
//! section holds that its invocation list does not explain. Aggregates,
//! `rebuild` and `verify` all include them.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 3,
    name: "m0003_opening_balance",
    description: "Add skill_metrics_balance for legacy opening balances",
    up,
    down,
};

fn up(backend: DbBackend) -> Vec<String> {
    let (ts, real, int, json) = match backend {
        DbBackend::Postgres => ("TIMESTAMPTZ", "DOUBLE PRECISION", "BIGINT", "JSONB"),
        _ => ("TEXT", "REAL", "INTEGER", "TEXT"),
    };
    vec![format!(
        "CREATE TABLE skill_metrics_balance (
    skill_name TEXT NOT NULL,
    source TEXT NOT NULL,
    total_invocations {int} NOT NULL DEFAULT 0,
    completed_invocations {int} NOT NULL DEFAULT 0,
    abandoned_invocations {int} NOT NULL DEFAULT 0,
    total_duration_seconds {real} NOT NULL DEFAULT 0.0,
    workflow_paths {json} NOT NULL DEFAULT '{{}}',
    common_errors {json} NOT NULL DEFAULT '{{}}',
    follow_up_actions {json} NOT NULL DEFAULT '{{}}',
    first_invoked {ts},
    last_invoked {ts},
    imported_at {ts} NOT NULL,
    PRIMARY KEY (skill_name, source)
)"
    )]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["DROP TABLE skill_metrics_balance".to_owned()]
}
