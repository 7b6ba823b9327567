//! `skill_invocation`: the append-only event log.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_invocation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub skill_name: String,
    pub invoked_at: DateTimeUtc,
    pub workflow_path: Option<String>,
    pub completed: bool,
    pub duration_seconds: Option<f64>,
    pub error_type: Option<String>,
    pub session_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    pub schema_version: i32,
    pub project_path: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub user_context: Option<Json>,
    pub search_text: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
