//! Version 20: `session_skill` names its session by number, as the log
//! does since version 19 (decision D114).
//!
//! The table kept each row's session as its text id (44 characters in the
//! realistic mix, random) twice over, in the row and in the unique index
//! on `(session_id, skill_name)`, and a text id of its own (36 characters)
//! with a primary key index of its own. Each write's rows landed at random
//! places of both indexes, one of the two ways a write's cost grew with
//! the store (BENCHMARKS.md, "Where SQLite's ingest cost grows").
//!
//! The rows now live in `session_skill_numbered`, keyed by `(session_num,
//! skill_name)`: a new session's number is the largest yet, so its rows go
//! to the key's end, and the key is the table itself (SQLite `WITHOUT
//! ROWID`; PostgreSQL's primary key). The row's id stays, as 16 bytes.
//! `session_skill` is a view of it with the session's text id joined back
//! and the id written out as text, so every reader keeps the design's
//! columns; the store writes to the table, and the view, being a join,
//! refuses writes on both backends.
//!
//! A row whose session has no `sessions` row (nothing refuses one since
//! version 16) gets a session rather than be lost, as the log's did at
//! version 19. Rolled back to the table of version 19, every row of a
//! session is kept; a row whose number no session has (which nothing
//! writes) has no text id to go back to and is dropped, and the sessions
//! the upgrade gave stay.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;
use crate::m0019_numbered_sessions::id_as;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 20,
    name: "m0020_numbered_session_skill",
    description: "session_skill by session number; a view gives the design's table",
    up,
    down,
};

/// The table of version 20.
fn numbered_table(pg: bool) -> String {
    if pg {
        "CREATE TABLE session_skill_numbered (
    session_num BIGINT NOT NULL,
    skill_name TEXT NOT NULL,
    id UUID NOT NULL,
    invocation_count BIGINT NOT NULL DEFAULT 1,
    first_invoked_at TIMESTAMPTZ NOT NULL,
    last_invoked_at TIMESTAMPTZ NOT NULL,
    total_duration_seconds DOUBLE PRECISION NOT NULL DEFAULT 0.0,
    total_duration_micros BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (session_num, skill_name)
)"
        .to_owned()
    } else {
        "CREATE TABLE session_skill_numbered (
    session_num INTEGER NOT NULL,
    skill_name TEXT NOT NULL,
    id BLOB NOT NULL CHECK (typeof(id) = 'blob' AND length(id) = 16),
    invocation_count INTEGER NOT NULL DEFAULT 1,
    first_invoked_at TEXT NOT NULL,
    last_invoked_at TEXT NOT NULL,
    total_duration_seconds REAL NOT NULL DEFAULT 0.0,
    total_duration_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_num, skill_name)
) WITHOUT ROWID"
            .to_owned()
    }
}

/// The table of version 19 (as version 16 left it).
fn text_table(pg: bool) -> String {
    let (count, time, real) = if pg {
        ("BIGINT", "TIMESTAMPTZ", "DOUBLE PRECISION")
    } else {
        ("INTEGER", "TEXT", "REAL")
    };
    format!(
        "CREATE TABLE session_skill (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL,
    skill_name TEXT NOT NULL,
    invocation_count {count} NOT NULL DEFAULT 1,
    first_invoked_at {time} NOT NULL,
    last_invoked_at {time} NOT NULL,
    total_duration_seconds {real} NOT NULL DEFAULT 0.0,
    total_duration_micros {count} NOT NULL DEFAULT 0,
    UNIQUE (session_id, skill_name)
)"
    )
}

/// The columns both shapes keep as they are.
const KEPT: &str = "skill_name, invocation_count, first_invoked_at, last_invoked_at, \
     total_duration_seconds, total_duration_micros";

/// `KEPT` with each column prefixed by `t.`.
fn kept_of_t() -> String {
    KEPT.split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored text id as 16 bytes; one that is not a UUID's text (the store
/// never wrote one) gets a random id rather than fail the upgrade: nothing
/// refers to a row's id.
fn id_bytes(pg: bool, column: &str) -> String {
    let bytes = id_as(pg, true, column);
    if pg {
        format!(
            "CASE WHEN {column} ~* '^[0-9a-f]{{8}}-?[0-9a-f]{{4}}-?[0-9a-f]{{4}}-?[0-9a-f]{{4}}-?[0-9a-f]{{12}}$' \
             THEN {bytes} ELSE gen_random_uuid() END"
        )
    } else {
        format!("CASE WHEN length({bytes}) = 16 THEN {bytes} ELSE randomblob(16) END")
    }
}

/// The view that gives the design's `session_skill` back.
fn view(pg: bool) -> String {
    format!(
        "CREATE VIEW session_skill AS SELECT {} AS id, s.id AS session_id, {} \
         FROM session_skill_numbered t JOIN sessions s ON s.num = t.session_num",
        id_as(pg, false, "t.id"),
        kept_of_t()
    )
}

/// The design's index by skill, on `table`.
fn skill_index(table: &str) -> String {
    format!("CREATE INDEX idx_session_skill_skill_name ON {table} (skill_name)")
}

fn up(backend: DbBackend) -> Vec<String> {
    let pg = backend == DbBackend::Postgres;
    vec![
        // A row of no session gets one, started at its first invocation.
        "INSERT INTO sessions (id, started_at) \
         SELECT session_id, min(first_invoked_at) FROM session_skill \
         WHERE session_id NOT IN (SELECT id FROM sessions) GROUP BY session_id"
            .to_owned(),
        numbered_table(pg),
        format!(
            "INSERT INTO session_skill_numbered (session_num, id, {KEPT}) \
             SELECT s.num, {}, {} FROM session_skill t JOIN sessions s ON s.id = t.session_id \
             ORDER BY s.num, t.skill_name",
            id_bytes(pg, "t.id"),
            kept_of_t()
        ),
        "DROP TABLE session_skill".to_owned(),
        skill_index("session_skill_numbered"),
        view(pg),
    ]
}

fn down(backend: DbBackend) -> Vec<String> {
    let pg = backend == DbBackend::Postgres;
    vec![
        "DROP VIEW session_skill".to_owned(),
        text_table(pg),
        format!(
            "INSERT INTO session_skill (id, session_id, {KEPT}) \
             SELECT {}, s.id, {} FROM session_skill_numbered t \
             JOIN sessions s ON s.num = t.session_num",
            id_as(pg, false, "t.id"),
            kept_of_t()
        ),
        "DROP TABLE session_skill_numbered".to_owned(),
        skill_index("session_skill"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_gives_back_every_column_of_version_19() {
        for pg in [false, true] {
            let view = view(pg);
            let table = text_table(pg);
            for line in table
                .lines()
                .filter(|l| l.starts_with("    ") && !l.contains("UNIQUE"))
            {
                let column = line.trim().split(' ').next().unwrap();
                assert!(
                    view.contains(&format!(" AS {column},"))
                        || view.contains(&format!(" t.{column},"))
                        || view.contains(&format!(" t.{column} ")),
                    "{column} missing: {view}"
                );
            }
        }
    }

    #[test]
    fn both_shapes_have_the_same_kept_columns() {
        for pg in [false, true] {
            for column in KEPT.split(", ") {
                assert!(
                    numbered_table(pg).contains(&format!("    {column} ")),
                    "{column}"
                );
                assert!(
                    text_table(pg).contains(&format!("    {column} ")),
                    "{column}"
                );
            }
        }
    }
}
