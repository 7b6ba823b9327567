//! `skill_metrics`: per-skill aggregates, kept exact on every write.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics")]
/// One row.
pub struct Model {
    /// The skill's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// Invocations counted.
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// Of which abandoned.
    pub abandoned_invocations: i64,
    /// Sum of durations (completed invocations with one; all, in `session_skill`).
    pub total_duration_seconds: f64,
    /// The same sum in whole microseconds: exact, whatever the order (version 4).
    pub total_duration_micros: i64,
    /// Shortest completed duration.
    pub min_duration_seconds: Option<f64>,
    /// Longest completed duration.
    pub max_duration_seconds: Option<f64>,
    /// Median completed duration.
    pub p50_duration_seconds: Option<f64>,
    /// 95th percentile completed duration.
    pub p95_duration_seconds: Option<f64>,
    /// 99th percentile completed duration.
    pub p99_duration_seconds: Option<f64>,
    /// `{path: count}` over all invocations.
    #[sea_orm(column_type = "JsonBinary")]
    pub workflow_paths: Json,
    /// `{error_type: count}` over all invocations.
    #[sea_orm(column_type = "JsonBinary")]
    pub common_errors: Json,
    /// Follow-up actions: a JSON array on the log, a `{action: count}` object in aggregates.
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    /// Earliest `invoked_at`.
    pub first_invoked: Option<DateTimeUtc>,
    /// Latest `invoked_at`.
    pub last_invoked: Option<DateTimeUtc>,
    /// completed / total × 100 (0 when empty).
    pub completion_rate: f64,
    /// Mean completed duration (summary: total duration ÷ completed).
    pub avg_duration_seconds: Option<f64>,
    /// Row format version (1).
    pub schema_version: i32,
    /// When the row was last written.
    pub last_aggregated_at: Option<DateTimeUtc>,
    /// How many durations the total sums.
    pub duration_count: i64,
    /// The percentile distribution (internal binary form).
    #[sea_orm(column_type = "VarBinary(StringLen::None)", nullable)]
    pub duration_digest: Option<Vec<u8>>,
    /// Added by migration 2.
    pub success_rate: Option<f64>,
    /// The summed counts of the workflow paths `workflow_paths` does not
    /// list (0 while it lists every one; version 9, D86).
    pub workflow_paths_other: i64,
    /// The same for `common_errors`.
    pub common_errors_other: i64,
    /// The same for `follow_up_actions`.
    pub follow_up_actions_other: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
