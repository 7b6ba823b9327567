//! Version 15: drops `idx_session_skill_session_id` (decision D97). The
//! unique index of `(session_id, skill_name)` starts with the same column,
//! so it serves every lookup by session the dropped index served (the
//! store's reads, `verify`'s ranges of sessions, the cascade from
//! `sessions`); a query-plan test holds both backends to it. Rolled back by
//! creating the index again.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 15,
    name: "m0015_drop_session_skill_session_index",
    description: "Drop idx_session_skill_session_id (a unique's prefix)",
    up,
    down,
};

fn up(_backend: DbBackend) -> Vec<String> {
    vec!["DROP INDEX idx_session_skill_session_id".to_owned()]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["CREATE INDEX idx_session_skill_session_id ON session_skill (session_id)".to_owned()]
}
