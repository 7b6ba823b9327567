//! Version 8: retention (decision D83). `skill-metrics prune` may remove
//! old rows from the log; what they contributed is kept as balances that
//! every recomputation adds:
//!
//! - `skill_metrics_pruned`: per skill, the whole aggregate of the removed
//!   invocations (counts, exact sums, maps, first and last, digest);
//! - `session_skill_pruned` and `skill_rollups_pruned`: the same for the
//!   per-session and per-hour rows;
//! - `pruned_invocations`: the id of every removed invocation, so that an
//!   import of the same events later is recognised (written to the log
//!   again, counted once);
//! - `log_prune_gate`: holds a row only inside a prune's transaction. The
//!   append-only triggers let a DELETE through while it does, and refuse
//!   every other UPDATE or DELETE as before.
//!
//! On SQLite the full-text index is rebuilt keyed by `seq` (its rowid), with
//! `contentless_delete`, so that a removed row's entry goes with it (D84).
//!
//! Rolled back by dropping the new tables and restoring the triggers and
//! the full-text index of version 6. A rollback after a prune loses the
//! balances: `rebuild` would then count only what is left in the log.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 8,
    name: "m0008_prune",
    description: "Add the balances of pruned invocations and let prune delete from the log",
    up,
    down,
};

const REFUSE_DELETE_SQLITE: &str =
    "SELECT RAISE(ABORT, 'skill_invocation is append-only: DELETE is not allowed');";

fn pg_guard(allow_prune: bool) -> String {
    let gate = if allow_prune {
        "    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM log_prune_gate) THEN
        RETURN OLD;
    END IF;\n"
    } else {
        ""
    };
    format!(
        "CREATE OR REPLACE FUNCTION skill_invocation_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{gate}    RAISE EXCEPTION 'skill_invocation is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'the event log is immutable; aggregates are rebuilt from it';
END
$$"
    )
}

fn up(backend: DbBackend) -> Vec<String> {
    let pg = backend == DbBackend::Postgres;
    let (ts, blob, real, json, without_rowid) = if pg {
        ("TIMESTAMPTZ", "BYTEA", "DOUBLE PRECISION", "JSONB", "")
    } else {
        ("TEXT", "BLOB", "REAL", "TEXT", " WITHOUT ROWID")
    };
    let mut s = vec![
        "CREATE TABLE log_prune_gate (id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1))".to_owned(),
        format!("CREATE TABLE pruned_invocations (id TEXT PRIMARY KEY NOT NULL){without_rowid}"),
        format!(
            "CREATE TABLE skill_metrics_pruned (
    skill_name TEXT PRIMARY KEY NOT NULL,
    total_invocations BIGINT NOT NULL,
    completed_invocations BIGINT NOT NULL,
    abandoned_invocations BIGINT NOT NULL,
    total_duration_micros BIGINT NOT NULL,
    duration_count BIGINT NOT NULL,
    min_duration_seconds {real},
    max_duration_seconds {real},
    workflow_paths {json} NOT NULL,
    common_errors {json} NOT NULL,
    follow_up_actions {json} NOT NULL,
    first_invoked {ts},
    last_invoked {ts},
    duration_digest {blob}
)"
        ),
        format!(
            "CREATE TABLE session_skill_pruned (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    skill_name TEXT NOT NULL,
    invocation_count BIGINT NOT NULL,
    first_invoked_at {ts} NOT NULL,
    last_invoked_at {ts} NOT NULL,
    total_duration_seconds {real} NOT NULL,
    total_duration_micros BIGINT NOT NULL,
    UNIQUE (session_id, skill_name)
)"
        ),
        format!(
            "CREATE TABLE skill_rollups_pruned (
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
    ];
    if pg {
        s.push(pg_guard(true));
    } else {
        s.extend([
            "DROP TRIGGER trg_skill_invocation_fts".to_owned(),
            "DROP TABLE skill_invocation_fts".to_owned(),
            // SQLite leaves this shadow table of a contentless table with
            // unindexed values behind when the table is dropped.
            "DROP TABLE IF EXISTS skill_invocation_fts_content".to_owned(),
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, \
             content='', contentless_delete=1, tokenize='ascii')"
                .to_owned(),
            "INSERT INTO skill_invocation_fts (rowid, search_text) \
             SELECT seq, search_text FROM skill_invocation ORDER BY seq"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts AFTER INSERT ON skill_invocation
BEGIN
    INSERT INTO skill_invocation_fts (rowid, search_text) VALUES (NEW.seq, NEW.search_text);
END"
            .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts_delete AFTER DELETE ON skill_invocation
BEGIN
    DELETE FROM skill_invocation_fts WHERE rowid = OLD.seq;
END"
            .to_owned(),
            "DROP TRIGGER trg_skill_invocation_no_delete".to_owned(),
            format!(
                "CREATE TRIGGER trg_skill_invocation_no_delete BEFORE DELETE ON skill_invocation
    WHEN NOT EXISTS (SELECT 1 FROM log_prune_gate)
BEGIN
    {REFUSE_DELETE_SQLITE}
END"
            ),
        ]);
    }
    s
}

fn down(backend: DbBackend) -> Vec<String> {
    let mut s = Vec::new();
    if backend == DbBackend::Postgres {
        s.push(pg_guard(false));
    } else {
        s.extend([
            "DROP TRIGGER trg_skill_invocation_no_delete".to_owned(),
            format!(
                "CREATE TRIGGER trg_skill_invocation_no_delete BEFORE DELETE ON skill_invocation
BEGIN
    {REFUSE_DELETE_SQLITE}
END"
            ),
            "DROP TRIGGER trg_skill_invocation_fts_delete".to_owned(),
            "DROP TRIGGER trg_skill_invocation_fts".to_owned(),
            "DROP TABLE skill_invocation_fts".to_owned(),
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, id UNINDEXED, \
             content='', contentless_unindexed=1, tokenize='ascii')"
                .to_owned(),
            "INSERT INTO skill_invocation_fts (search_text, id) \
             SELECT search_text, id FROM skill_invocation ORDER BY seq"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts AFTER INSERT ON skill_invocation
BEGIN
    INSERT INTO skill_invocation_fts (search_text, id) VALUES (NEW.search_text, NEW.id);
END"
            .to_owned(),
        ]);
    }
    for table in [
        "skill_rollups_pruned",
        "session_skill_pruned",
        "skill_metrics_pruned",
        "pruned_invocations",
        "log_prune_gate",
    ] {
        s.push(format!("DROP TABLE {table}"));
    }
    s
}
