//! Version 1: the design's schema, made runnable on both backends.
//!
//! Differences from the design's SQL are recorded in `docs/decisions.md`.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 1,
    name: "m0001_initial_schema",
    description: "Initial skill metrics schema",
    up,
    down,
};

/// Column types that differ between the backends.
struct Types {
    ts: &'static str,
    real: &'static str,
    int: &'static str,
    json: &'static str,
    blob: &'static str,
    json_check: fn(&str) -> String,
}

fn types(backend: DbBackend) -> Types {
    match backend {
        DbBackend::Postgres => Types {
            ts: "TIMESTAMPTZ",
            real: "DOUBLE PRECISION",
            int: "BIGINT",
            json: "JSONB",
            blob: "BYTEA",
            json_check: |_| String::new(),
        },
        _ => Types {
            ts: "TEXT",
            real: "REAL",
            int: "INTEGER",
            json: "TEXT",
            blob: "BLOB",
            json_check: |col| format!(" CHECK ({col} IS NULL OR json_valid({col}))"),
        },
    }
}

fn up(backend: DbBackend) -> Vec<String> {
    let Types {
        ts,
        real,
        int,
        json,
        blob,
        json_check,
    } = types(backend);
    let pg = backend == DbBackend::Postgres;
    let mut s = vec![
        format!(
            "CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    started_at {ts} NOT NULL,
    ended_at {ts},
    project_path TEXT
)"
        ),
        // The log. `search_text` holds the normalised words of skill_name and
        // workflow_path, computed once in Rust so both backends index the same words.
        format!(
            "CREATE TABLE skill_invocation (
    id TEXT PRIMARY KEY NOT NULL,
    skill_name TEXT NOT NULL,
    invoked_at {ts} NOT NULL,
    workflow_path TEXT,
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    duration_seconds {real} CHECK (duration_seconds IS NULL OR duration_seconds >= 0),
    error_type TEXT,
    session_id TEXT REFERENCES sessions(id),
    follow_up_actions {json} NOT NULL DEFAULT '[]'{fu},
    schema_version INTEGER NOT NULL DEFAULT 1,
    project_path TEXT,
    user_context {json}{uc},
    search_text TEXT NOT NULL DEFAULT ''{vector}
)",
            fu = json_check("follow_up_actions"),
            uc = json_check("user_context"),
            vector = if pg {
                ",\n    search_vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED"
            } else {
                ""
            },
        ),
        "CREATE INDEX idx_skill_invocation_skill_name ON skill_invocation (skill_name)".into(),
        "CREATE INDEX idx_skill_invocation_invoked_at ON skill_invocation (invoked_at DESC)".into(),
        "CREATE INDEX idx_skill_invocation_session_id ON skill_invocation (session_id)".into(),
        "CREATE INDEX idx_skill_invocation_completed ON skill_invocation (completed)".into(),
        "CREATE INDEX idx_skill_invocation_skill_time ON skill_invocation (skill_name, invoked_at DESC)"
            .into(),
        "CREATE INDEX idx_skill_invocation_session_time ON skill_invocation (session_id, invoked_at DESC)"
            .into(),
        "CREATE INDEX idx_skill_invocation_skill_completed ON skill_invocation (skill_name, completed)"
            .into(),
        "CREATE INDEX idx_skill_invocation_skill_error ON skill_invocation (skill_name, error_type)"
            .into(),
        format!(
            "CREATE TABLE skill_metrics (
    skill_name TEXT PRIMARY KEY NOT NULL,
    total_invocations {int} NOT NULL DEFAULT 0,
    completed_invocations {int} NOT NULL DEFAULT 0,
    abandoned_invocations {int} NOT NULL DEFAULT 0,
    total_duration_seconds {real} NOT NULL DEFAULT 0.0,
    min_duration_seconds {real},
    max_duration_seconds {real},
    p50_duration_seconds {real},
    p95_duration_seconds {real},
    p99_duration_seconds {real},
    workflow_paths {json} NOT NULL DEFAULT '{{}}'{wp},
    common_errors {json} NOT NULL DEFAULT '{{}}'{ce},
    follow_up_actions {json} NOT NULL DEFAULT '{{}}'{fa},
    first_invoked {ts},
    last_invoked {ts},
    completion_rate {real} NOT NULL DEFAULT 0.0,
    avg_duration_seconds {real},
    schema_version INTEGER NOT NULL DEFAULT 1,
    last_aggregated_at {ts},
    duration_count {int} NOT NULL DEFAULT 0,
    duration_digest {blob}
)",
            wp = json_check("workflow_paths"),
            ce = json_check("common_errors"),
            fa = json_check("follow_up_actions"),
        ),
        format!(
            "CREATE TABLE session_skill (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    skill_name TEXT NOT NULL REFERENCES skill_metrics(skill_name) ON DELETE CASCADE,
    invocation_count {int} NOT NULL DEFAULT 1,
    first_invoked_at {ts} NOT NULL,
    last_invoked_at {ts} NOT NULL,
    total_duration_seconds {real} NOT NULL DEFAULT 0.0,
    UNIQUE (session_id, skill_name)
)"
        ),
        "CREATE INDEX idx_session_skill_session_id ON session_skill (session_id)".into(),
        "CREATE INDEX idx_session_skill_skill_name ON session_skill (skill_name)".into(),
        format!(
            "CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    applied_at {ts} NOT NULL,
    description TEXT NOT NULL,
    checksum TEXT NOT NULL,
    rollback_sql TEXT,
    migration_time_ms {real}
)"
        ),
        format!(
            "CREATE TABLE skill_metrics_summary (
    refresh_time {ts} PRIMARY KEY NOT NULL,
    total_skills {int} NOT NULL,
    total_invocations {int} NOT NULL,
    overall_completion_rate {real} NOT NULL,
    most_used_skill TEXT,
    most_used_count {int} NOT NULL,
    avg_duration_seconds {real} NOT NULL,
    top_error_types {json}{te},
    top_workflow_paths {json}{tw}
)",
            te = json_check("top_error_types"),
            tw = json_check("top_workflow_paths"),
        ),
    ];
    if pg {
        s.extend([
            "CREATE INDEX idx_skill_invocation_search ON skill_invocation USING GIN (search_vector)"
                .to_owned(),
            "CREATE FUNCTION skill_invocation_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'skill_invocation is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'the event log is immutable; aggregates are rebuilt from it';
END
$$"
            .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_append_only BEFORE UPDATE OR DELETE ON skill_invocation
    FOR EACH ROW EXECUTE FUNCTION skill_invocation_append_only()"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_no_truncate BEFORE TRUNCATE ON skill_invocation
    FOR EACH STATEMENT EXECUTE FUNCTION skill_invocation_append_only()"
                .to_owned(),
        ]);
    } else {
        s.extend([
            // Contentless: the words live only in the index; rowid joins back to the log.
            // The `ascii` tokenizer splits on the spaces Rust put there and nothing else.
            "CREATE VIRTUAL TABLE skill_invocation_fts USING fts5(search_text, content='', tokenize='ascii')"
                .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_fts AFTER INSERT ON skill_invocation
BEGIN
    INSERT INTO skill_invocation_fts (rowid, search_text) VALUES (NEW.rowid, NEW.search_text);
END"
            .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_no_update BEFORE UPDATE ON skill_invocation
BEGIN
    SELECT RAISE(ABORT, 'skill_invocation is append-only: UPDATE is not allowed');
END"
            .to_owned(),
            "CREATE TRIGGER trg_skill_invocation_no_delete BEFORE DELETE ON skill_invocation
BEGIN
    SELECT RAISE(ABORT, 'skill_invocation is append-only: DELETE is not allowed');
END"
            .to_owned(),
        ]);
    }
    s
}

fn down(backend: DbBackend) -> Vec<String> {
    let mut s: Vec<String> = Vec::new();
    if backend == DbBackend::Sqlite {
        s.push("DROP TABLE skill_invocation_fts".into());
    }
    for table in [
        "skill_metrics_summary",
        "schema_migrations",
        "session_skill",
        "skill_metrics",
        "skill_invocation",
        "sessions",
    ] {
        s.push(format!("DROP TABLE {table}"));
    }
    if backend == DbBackend::Postgres {
        s.push("DROP FUNCTION skill_invocation_append_only()".into());
    }
    s
}
