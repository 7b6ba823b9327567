//! `skill_metrics_pruned`: per skill, the aggregate of the invocations
//! `prune` removed from the log, which every recomputation adds.

use sea_orm::entity::prelude::*;

/// One skill's pruned invocations, folded.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics_pruned")]
pub struct Model {
    /// The skill.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// Invocations removed.
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// Of which abandoned.
    pub abandoned_invocations: i64,
    /// Their completed durations summed, in whole microseconds.
    pub total_duration_micros: i64,
    /// How many durations that sums.
    pub duration_count: i64,
    /// Shortest of those durations.
    pub min_duration_seconds: Option<f64>,
    /// Longest of those durations.
    pub max_duration_seconds: Option<f64>,
    /// Workflow path → count.
    #[sea_orm(column_type = "JsonBinary")]
    pub workflow_paths: Json,
    /// Error type → count.
    #[sea_orm(column_type = "JsonBinary")]
    pub common_errors: Json,
    /// Follow-up action → count.
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    /// Earliest `invoked_at` removed.
    pub first_invoked: Option<DateTimeUtc>,
    /// Latest `invoked_at` removed.
    pub last_invoked: Option<DateTimeUtc>,
    /// The durations' distribution (the store's digest format).
    pub duration_digest: Option<Vec<u8>>,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
