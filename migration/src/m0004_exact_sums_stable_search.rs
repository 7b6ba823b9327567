//! Version 4: duration sums in whole microseconds (`total_duration_micros`
//! on every aggregate table, decision D37), and, on SQLite, a search index
//! that names each entry's invocation by its id instead of the log's rowid,
//! which `VACUUM` may renumber (decision D38). Rolled back by dropping the
//! columns and restoring the rowid-keyed index.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 4,
    name: "m0004_exact_sums_stable_search",
    description: "Exact duration sums in microseconds; search entries keyed by invocation id",
    up,
    down,
};

/// The value that marks a sum the log must recompute.
pub const UNKNOWN_SUM: i64 = -(1 << 62);

const SUM_TABLES: [&str; 3] = ["skill_metrics", "session_skill", "skill_metrics_balance"];

fn up(backend: DbBackend) -> Vec<String> {
    let int = if backend == DbBackend::Postgres {
        "BIGINT"
    } else {
        "INTEGER"
    };
    let mut s = Vec::new();
    for table in SUM_TABLES {
        s.push(format!(
            "ALTER TABLE {table} ADD COLUMN total_duration_micros {int} NOT NULL DEFAULT 0"
        ));
    }
    // A balance has no log behind it: the nearest whole microseconds of its
    // floating-point total is its exact value.
    s.push(format!(
        "UPDATE skill_metrics_balance SET total_duration_micros = CAST(ROUND(total_duration_seconds * 1000000) AS {int})"
    ));
    // The log's sums are recomputed by `rebuild`; until then they are
    // marked unknown with a negative value far below any sum of additions
    // (-2^62), which the store looks for on every `migrate up` (D37).
    for table in ["skill_metrics", "session_skill"] {
        s.push(format!(
            "UPDATE {table} SET total_duration_micros = {UNKNOWN_SUM}"
        ));
    }
    if backend == DbBackend::Sqlite {
        s.extend([
            "DROP TRIGGER trg_skill_invocation_fts".to_owned(),
            "DROP TABLE skill_invocation_fts".to_owned(),
            // Still contentless (the words live only in the index), but each
            // entry keeps its invocation's id (SQLite 3.48+).
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, id UNINDEXED, \
             content='', contentless_unindexed=1, tokenize='ascii')"
                .to_owned(),
            "INSERT INTO skill_invocation_fts (search_text, id) \
             SELECT search_text, id FROM skill_invocation ORDER BY rowid"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts AFTER INSERT ON skill_invocation
BEGIN
    INSERT INTO skill_invocation_fts (search_text, id) VALUES (NEW.search_text, NEW.id);
END"
            .to_owned(),
        ]);
    }
    s
}

fn down(backend: DbBackend) -> Vec<String> {
    let mut s = Vec::new();
    if backend == DbBackend::Sqlite {
        s.extend([
            "DROP TRIGGER trg_skill_invocation_fts".to_owned(),
            "DROP TABLE skill_invocation_fts".to_owned(),
            // SQLite 3.51 leaves this shadow table of a contentless table
            // with unindexed values behind when the table is dropped.
            "DROP TABLE IF EXISTS skill_invocation_fts_content".to_owned(),
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, content='', tokenize='ascii')"
                .to_owned(),
            "INSERT INTO skill_invocation_fts (rowid, search_text) \
             SELECT rowid, search_text FROM skill_invocation"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts AFTER INSERT ON skill_invocation
BEGIN
    INSERT INTO skill_invocation_fts (rowid, search_text) VALUES (NEW.rowid, NEW.search_text);
END"
            .to_owned(),
        ]);
    }
    for table in SUM_TABLES {
        s.push(format!(
            "ALTER TABLE {table} DROP COLUMN total_duration_micros"
        ));
    }
    s
}
