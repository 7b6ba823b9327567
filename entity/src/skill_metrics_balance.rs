//! `skill_metrics_balance`: opening balances from legacy imports.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics_balance")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    pub total_invocations: i64,
    pub completed_invocations: i64,
    pub abandoned_invocations: i64,
    pub total_duration_seconds: f64,
    #[sea_orm(column_type = "JsonBinary")]
    pub workflow_paths: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub common_errors: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    pub first_invoked: Option<DateTimeUtc>,
    pub last_invoked: Option<DateTimeUtc>,
    pub imported_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
