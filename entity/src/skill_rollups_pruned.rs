//! `skill_rollups_pruned`: what pruned invocations contributed to `skill_rollups`.

use sea_orm::entity::prelude::*;

/// One skill's pruned invocations of one project within one hour.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_rollups_pruned")]
pub struct Model {
    /// The skill.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// The start of the UTC hour.
    #[sea_orm(primary_key, auto_increment = false)]
    pub bucket_start: DateTimeUtc,
    /// The project, `""` for none.
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_path: String,
    /// Invocations.
    pub invocations: i64,
    /// Of which completed.
    pub completed: i64,
    /// Completed invocations with a duration.
    pub duration_count: i64,
    /// Their durations summed, in whole microseconds.
    pub total_duration_micros: i64,
    /// Their distribution (the store's digest format).
    pub duration_digest: Option<Vec<u8>>,
    /// Invocations per error type, `{"types": {…}, "other": n}` (D94);
    /// none when no invocation had one.
    pub error_counts: Option<String>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
