//! Version 21: SQLite's search index keeps only what search reads, and
//! PostgreSQL keeps `user_context` as the JSON text it is (decision D115).
//!
//! SQLite: the full-text index no longer keeps each row's size in words
//! (`columnsize=0`: a row of `skill_invocation_fts_docsize` per event),
//! which only ranking reads, and search never ranks: it walks the matches
//! newest first by the log's `seq` (D84). FTS5 refuses `columnsize=0` on a
//! table that deletes by rowid alone (`contentless_delete`), so a pruned
//! row's entry is now removed with FTS5's `delete` command and the text it
//! was indexed with, the row's own `search_text`, which the log's rows
//! keep unchanged (they are append-only) and from which every entry was
//! made. The index is built again from the log's rows.
//!
//! PostgreSQL: `user_context`, which no query reads into, is kept as `JSON`
//! text instead of `JSONB`'s binary form, about a seventh smaller for the
//! small objects it holds (one rewrite of the log); the view that names the
//! column is dropped and made again around it. The search vector keeps its
//! word positions: a word that PostgreSQL's parser splits (`x²y`) is asked
//! for as a phrase, which a vector without positions never matches.
//!
//! Rolled back to version 20's shapes the same ways.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 21,
    name: "m0021_leaner_search",
    description: "SQLite's search index without row sizes; user_context as JSON text on PostgreSQL",
    up,
    down,
};

/// SQLite: the full-text index as `options` make it, filled from the log,
/// with the trigger that takes a pruned row's entry out by `delete_entry`.
fn sqlite_index(options: &str, delete_entry: &str) -> Vec<String> {
    vec![
        "DROP TRIGGER trg_skill_invocation_fts_delete".to_owned(),
        "DROP TABLE skill_invocation_fts".to_owned(),
        format!(
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, \
             content='', {options}, tokenize='ascii')"
        ),
        "INSERT INTO skill_invocation_fts (rowid, search_text) \
         SELECT seq, search_text FROM skill_invocation_log ORDER BY seq"
            .to_owned(),
        format!(
            "CREATE TRIGGER trg_skill_invocation_fts_delete AFTER DELETE ON skill_invocation_log
BEGIN
    {delete_entry};
END"
        ),
    ]
}

/// PostgreSQL: the log's `user_context` of type `context`, in one rewrite;
/// the view (which names the column) around it.
fn pg_context(context: &str) -> Vec<String> {
    let mut s = vec![
        "DROP VIEW skill_invocation".to_owned(),
        "DROP FUNCTION skill_invocation_view_refuses()".to_owned(),
        format!(
            "ALTER TABLE skill_invocation_log \
             ALTER COLUMN user_context TYPE {context} USING user_context::{context}"
        ),
    ];
    s.extend(crate::m0019_numbered_sessions::view(true));
    s
}

fn up(backend: DbBackend) -> Vec<String> {
    match backend {
        DbBackend::Postgres => pg_context("JSON"),
        _ => sqlite_index(
            "columnsize=0",
            "INSERT INTO skill_invocation_fts (skill_invocation_fts, rowid, search_text) \
             VALUES ('delete', OLD.seq, OLD.search_text)",
        ),
    }
}

fn down(backend: DbBackend) -> Vec<String> {
    match backend {
        DbBackend::Postgres => pg_context("JSONB"),
        _ => sqlite_index(
            "contentless_delete=1",
            "DELETE FROM skill_invocation_fts WHERE rowid = OLD.seq",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_differ_only_in_what_they_keep() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let (up, down) = (up(backend), down(backend));
            assert_eq!(up.len(), down.len());
            let differ = up.iter().zip(&down).filter(|(a, b)| a != b).count();
            let expected = if backend == DbBackend::Postgres { 1 } else { 2 };
            assert_eq!(differ, expected, "{up:#?}\n{down:#?}");
        }
    }
}
