//! Version 9: bounded per-skill maps (decision D86). `skill_metrics` keeps,
//! per map, the sum of the counts of the keys it no longer lists
//! (`*_other`, 0 while a map lists every key), and `skill_map_counts` holds
//! every key's exact count for the maps that outgrew the limit. The store
//! bounds any map already over the limit after the `migrate up` that
//! applies this version. Rolled back by dropping both (a map that had
//! spilled then lists only its largest keys until `rebuild`).

use sea_orm_migration::sea_orm::DbBackend;

use crate::SqlMigration;

pub(crate) const MIGRATION: SqlMigration = SqlMigration {
    version: 9,
    name: "m0009_bounded_maps",
    description: "Bound the per-skill maps: skill_map_counts and the *_other columns",
    up,
    down,
};

const OTHERS: [&str; 3] = [
    "workflow_paths_other",
    "common_errors_other",
    "follow_up_actions_other",
];

fn up(backend: DbBackend) -> Vec<String> {
    let without_rowid = if backend == DbBackend::Postgres {
        ""
    } else {
        " WITHOUT ROWID"
    };
    let mut s = vec![format!(
        "CREATE TABLE skill_map_counts (
    skill_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('workflow_paths', 'common_errors', 'follow_up_actions')),
    item TEXT NOT NULL,
    count BIGINT NOT NULL CHECK (count > 0),
    PRIMARY KEY (skill_name, kind, item)
){without_rowid}"
    )];
    for column in OTHERS {
        s.push(format!(
            "ALTER TABLE skill_metrics ADD COLUMN {column} BIGINT NOT NULL DEFAULT 0 CHECK ({column} >= 0)"
        ));
    }
    s
}

fn down(_backend: DbBackend) -> Vec<String> {
    let mut s: Vec<String> = OTHERS
        .iter()
        .map(|c| format!("ALTER TABLE skill_metrics DROP COLUMN {c}"))
        .collect();
    s.push("DROP TABLE skill_map_counts".to_owned());
    s
}
