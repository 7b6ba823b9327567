//! Version 2: the design's own example, `success_rate` on `skill_metrics`,
//! with its backfill. Rolled back by dropping the column.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 2,
    name: "m0002_add_success_rate",
    description: "Add success_rate field",
    up,
    down,
};

fn up(backend: DbBackend) -> Vec<String> {
    let real = if backend == DbBackend::Postgres {
        "DOUBLE PRECISION"
    } else {
        "REAL"
    };
    vec![
        format!("ALTER TABLE skill_metrics ADD COLUMN success_rate {real}"),
        format!(
            "UPDATE skill_metrics SET success_rate = CASE WHEN total_invocations > 0 \
             THEN CAST(completed_invocations AS {real}) / total_invocations * 100 ELSE 0 END"
        ),
    ]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["ALTER TABLE skill_metrics DROP COLUMN success_rate".to_owned()]
}
