//! `skill_metrics_summary`: the dashboard summary, refreshed on demand.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics_summary")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub refresh_time: DateTimeUtc,
    pub total_skills: i64,
    pub total_invocations: i64,
    pub overall_completion_rate: f64,
    pub most_used_skill: Option<String>,
    pub most_used_count: i64,
    pub avg_duration_seconds: f64,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub top_error_types: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub top_workflow_paths: Option<Json>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
