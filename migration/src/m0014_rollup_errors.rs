//! Version 14: every rollup row (hourly, daily and the pruned balance)
//! counts its invocations' error types in `error_counts` (decision D94),
//! which the insights' error rates read. The counts come from the log, so
//! this version marks the rollups unfilled and the next `migrate up`
//! rebuilds them; hours already pruned from the log have none. Rolled back
//! by dropping the column.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

const TABLES: [&str; 3] = [
    "skill_rollups",
    "skill_rollups_daily",
    "skill_rollups_pruned",
];

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 14,
    name: "m0014_rollup_errors",
    description: "Add error_counts to the rollups, filled by a rebuild",
    up,
    down,
};

fn up(_backend: DbBackend) -> Vec<String> {
    let mut sql: Vec<String> = TABLES
        .iter()
        .map(|t| format!("ALTER TABLE {t} ADD COLUMN error_counts TEXT"))
        .collect();
    sql.push("UPDATE skill_rollups_state SET filled = FALSE".to_owned());
    sql
}

fn down(_backend: DbBackend) -> Vec<String> {
    TABLES
        .iter()
        .map(|t| format!("ALTER TABLE {t} DROP COLUMN error_counts"))
        .collect()
}
