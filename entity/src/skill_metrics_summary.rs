//! `skill_metrics_summary`: the dashboard summary, refreshed on demand.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics_summary")]
/// One row.
pub struct Model {
    /// When the summary was computed.
    #[sea_orm(primary_key, auto_increment = false)]
    pub refresh_time: DateTimeUtc,
    /// Skills with metrics.
    pub total_skills: i64,
    /// Invocations counted.
    pub total_invocations: i64,
    /// completed / total × 100 over all skills.
    pub overall_completion_rate: f64,
    /// The most used skill (ties alphabetically).
    pub most_used_skill: Option<String>,
    /// Its invocation count.
    pub most_used_count: i64,
    /// Mean completed duration (summary: total duration ÷ completed).
    pub avg_duration_seconds: f64,
    /// Top ten `{error_type: count}` across skills.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub top_error_types: Option<Json>,
    /// Top ten `{path: count}` across skills.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub top_workflow_paths: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
