//! Version 13: `idx_sessions_started_at (started_at DESC, id DESC)`, the
//! order of the newest sessions (`session list`, the dashboard's sessions
//! page), which otherwise sorts every session to find the first few
//! (decision D93). Rolled back by dropping it.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 13,
    name: "m0013_sessions_started_index",
    description: "Add idx_sessions_started_at, the order of the newest sessions",
    up,
    down,
};

fn up(_backend: DbBackend) -> Vec<String> {
    vec!["CREATE INDEX idx_sessions_started_at ON sessions (started_at DESC, id DESC)".to_owned()]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["DROP INDEX idx_sessions_started_at".to_owned()]
}
