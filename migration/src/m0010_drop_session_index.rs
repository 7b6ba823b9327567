//! Version 10: drops `idx_skill_invocation_session_id` (decision D90).
//! `idx_skill_invocation_session_time (session_id, invoked_at DESC)` starts
//! with the same column, so it serves every lookup by session the dropped
//! index served; a query-plan test holds SQLite to it. Rolled back by
//! creating the index again.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 10,
    name: "m0010_drop_session_index",
    description: "Drop idx_skill_invocation_session_id, a prefix of idx_skill_invocation_session_time",
    up,
    down,
};

fn up(_backend: DbBackend) -> Vec<String> {
    vec!["DROP INDEX idx_skill_invocation_session_id".to_owned()]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["CREATE INDEX idx_skill_invocation_session_id ON skill_invocation (session_id)".to_owned()]
}
