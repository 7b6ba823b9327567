//! Version 17: the time indexes ascend (decision D103).
//!
//! `idx_skill_invocation_invoked_at`, `idx_skill_invocation_skill_time`,
//! `idx_skill_invocation_session_time` and `idx_sessions_started_at` were
//! made descending, as the design wrote them. Rows arrive in time order,
//! so each new key went to the front of a descending index (or of one
//! skill's or session's run in it), where a full page splits in two and
//! the half left behind is never filled again. Ascending, the new key
//! goes to the end, where both backends fill pages whole. Both read an
//! index backwards as cheaply as forwards, so every newest-first query
//! still comes off its index without a sort (the query-plan test holds
//! SQLite to it). Rolled back by building the descending indexes again.

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 17,
    name: "m0017_ascending_time_indexes",
    description: "Build the log's and the sessions' time indexes ascending",
    up,
    down,
};

/// Each index's name, table and columns, without the direction of its time.
const INDEXES: [(&str, &str, &str, &str); 4] = [
    (
        "idx_skill_invocation_invoked_at",
        "skill_invocation",
        "invoked_at",
        "",
    ),
    (
        "idx_skill_invocation_skill_time",
        "skill_invocation",
        "skill_name, invoked_at",
        "",
    ),
    (
        "idx_skill_invocation_session_time",
        "skill_invocation",
        "session_id, invoked_at",
        "",
    ),
    ("idx_sessions_started_at", "sessions", "started_at", ", id"),
];

fn build(descending: bool) -> Vec<String> {
    let dir = if descending { " DESC" } else { "" };
    INDEXES
        .iter()
        .flat_map(|(name, table, columns, tail)| {
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("{tail}{dir}")
            };
            [
                format!("DROP INDEX {name}"),
                format!("CREATE INDEX {name} ON {table} ({columns}{dir}{tail})"),
            ]
        })
        .collect()
}

fn up(_backend: DbBackend) -> Vec<String> {
    build(false)
}

fn down(_backend: DbBackend) -> Vec<String> {
    build(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollback_gives_back_the_designs_definitions() {
        let down = down(DbBackend::Sqlite);
        assert!(
            down.contains(
                &"CREATE INDEX idx_skill_invocation_skill_time ON skill_invocation \
              (skill_name, invoked_at DESC)"
                    .to_owned()
            )
        );
        assert!(
            down.contains(
                &"CREATE INDEX idx_sessions_started_at ON sessions (started_at DESC, id DESC)"
                    .to_owned()
            )
        );
        assert!(up(DbBackend::Postgres).contains(
            &"CREATE INDEX idx_sessions_started_at ON sessions (started_at, id)".to_owned()
        ));
    }
}
