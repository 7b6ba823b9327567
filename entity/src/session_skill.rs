//! `session_skill`: which skills each session used, with counts and times.
#![allow(missing_docs)]

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "session_skill")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub session_id: String,
    pub skill_name: String,
    pub invocation_count: i64,
    pub first_invoked_at: DateTimeUtc,
    pub last_invoked_at: DateTimeUtc,
    pub total_duration_seconds: f64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
