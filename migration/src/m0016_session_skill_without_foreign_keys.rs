//! Version 16: `session_skill` loses its two foreign keys, to `sessions`
//! and to `skill_metrics` (decision D98). Both tables it pointed at are
//! written by the store in the same transaction as every `session_skill`
//! row, and `verify` checks each row against the log; the keys added a
//! lookup per row on SQLite and a trigger with a locking query per row on
//! PostgreSQL (60 % of the time `rebuild` spent writing the table at 1M
//! events). Nothing deletes a session, and a skill's row goes only when
//! the log and the balances no longer name it, so no cascade was ever
//! taken. PostgreSQL drops the constraints; SQLite, which cannot, copies
//! the table into one without them. Rolled back the same ways, after
//! deleting the rows whose session or skill has no row (the keys would
//! refuse them, and nothing derives them).

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 16,
    name: "m0016_session_skill_without_foreign_keys",
    description: "session_skill without its foreign keys",
    up,
    down,
};

/// The SQLite table as it is after version 4, with or without the keys.
fn sqlite_table(name: &str, keys: bool) -> String {
    let (session, skill) = if keys {
        (
            " REFERENCES sessions(id) ON DELETE CASCADE",
            " REFERENCES skill_metrics(skill_name) ON DELETE CASCADE",
        )
    } else {
        ("", "")
    };
    format!(
        "CREATE TABLE {name} (
    id TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL{session},
    skill_name TEXT NOT NULL{skill},
    invocation_count INTEGER NOT NULL DEFAULT 1,
    first_invoked_at TEXT NOT NULL,
    last_invoked_at TEXT NOT NULL,
    total_duration_seconds REAL NOT NULL DEFAULT 0.0,
    total_duration_micros INTEGER NOT NULL DEFAULT 0,
    UNIQUE (session_id, skill_name)
)"
    )
}

/// SQLite: the rows copied into a table of the new shape, which takes the
/// old one's name and its index.
fn sqlite_copy(keys: bool) -> Vec<String> {
    vec![
        sqlite_table("session_skill_copy", keys),
        "INSERT INTO session_skill_copy (id, session_id, skill_name, invocation_count, \
         first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
         SELECT id, session_id, skill_name, invocation_count, first_invoked_at, \
         last_invoked_at, total_duration_seconds, total_duration_micros FROM session_skill"
            .to_owned(),
        "DROP TABLE session_skill".to_owned(),
        "ALTER TABLE session_skill_copy RENAME TO session_skill".to_owned(),
        "CREATE INDEX idx_session_skill_skill_name ON session_skill (skill_name)".to_owned(),
    ]
}

fn up(backend: DbBackend) -> Vec<String> {
    match backend {
        DbBackend::Sqlite => sqlite_copy(false),
        _ => vec![
            "ALTER TABLE session_skill DROP CONSTRAINT session_skill_session_id_fkey, \
             DROP CONSTRAINT session_skill_skill_name_fkey"
                .to_owned(),
        ],
    }
}

/// The rows the keys would refuse: no session, or no skill row.
const ORPHANS: &str = "DELETE FROM session_skill WHERE \
     NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = session_skill.session_id) \
     OR NOT EXISTS (SELECT 1 FROM skill_metrics m WHERE m.skill_name = session_skill.skill_name)";

fn down(backend: DbBackend) -> Vec<String> {
    let mut out = vec![ORPHANS.to_owned()];
    out.extend(match backend {
        DbBackend::Sqlite => sqlite_copy(true),
        _ => vec![
            "ALTER TABLE session_skill \
             ADD CONSTRAINT session_skill_session_id_fkey FOREIGN KEY (session_id) \
             REFERENCES sessions(id) ON DELETE CASCADE, \
             ADD CONSTRAINT session_skill_skill_name_fkey FOREIGN KEY (skill_name) \
             REFERENCES skill_metrics(skill_name) ON DELETE CASCADE"
                .to_owned(),
        ],
    });
    out
}
