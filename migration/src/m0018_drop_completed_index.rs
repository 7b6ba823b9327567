//! Version 18: drops `idx_skill_invocation_completed` (decision D108).
//!
//! The design created it, but its table of query patterns names none that
//! filters on `completed` alone, and the store has one such read: the
//! exact percentiles, which want the completed rows of every skill (most
//! of the log). Through this index SQLite fetched each of them by rowid
//! from the table, slower than reading the table straight through, and
//! PostgreSQL's planner never chose it; every write paid one insert into
//! it. "Skill completion stats" keep `idx_skill_invocation_skill_completed`.
//! Rolled back by creating the index again.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 18,
    name: "m0018_drop_completed_index",
    description: "Drop idx_skill_invocation_completed, which no query pattern reads",
    up,
    down,
};

fn up(_backend: DbBackend) -> Vec<String> {
    vec!["DROP INDEX idx_skill_invocation_completed".to_owned()]
}

fn down(_backend: DbBackend) -> Vec<String> {
    vec!["CREATE INDEX idx_skill_invocation_completed ON skill_invocation (completed)".to_owned()]
}
