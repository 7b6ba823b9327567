//! `skill_map_counts`: every key's exact count, for the per-skill maps
//! that outgrew the number of keys `skill_metrics` lists (D86).

use sea_orm::entity::prelude::*;

/// One key of one map of one skill.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_map_counts")]
pub struct Model {
    /// The skill.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// Which map: `workflow_paths`, `common_errors` or `follow_up_actions`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// The key: a workflow path, error type or follow-up action.
    #[sea_orm(primary_key, auto_increment = false)]
    pub item: String,
    /// Its count.
    pub count: i64,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
