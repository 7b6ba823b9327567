//! `skill_metrics`: per-skill aggregates, kept exact on every write.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    pub total_invocations: i64,
    pub completed_invocations: i64,
    pub abandoned_invocations: i64,
    pub total_duration_seconds: f64,
    pub min_duration_seconds: Option<f64>,
    pub max_duration_seconds: Option<f64>,
    pub p50_duration_seconds: Option<f64>,
    pub p95_duration_seconds: Option<f64>,
    pub p99_duration_seconds: Option<f64>,
    #[sea_orm(column_type = "JsonBinary")]
    pub workflow_paths: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub common_errors: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    pub first_invoked: Option<DateTimeUtc>,
    pub last_invoked: Option<DateTimeUtc>,
    pub completion_rate: f64,
    pub avg_duration_seconds: Option<f64>,
    pub schema_version: i32,
    pub last_aggregated_at: Option<DateTimeUtc>,
    pub duration_count: i64,
    #[sea_orm(column_type = "VarBinary(StringLen::None)", nullable)]
    pub duration_digest: Option<Vec<u8>>,
    /// Added by migration 2.
    pub success_rate: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
