//! `pruned_invocations`: the id of every invocation `prune` removed from
//! the log, so that importing it again counts it once.

use sea_orm::entity::prelude::*;

/// One removed invocation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pruned_invocations")]
pub struct Model {
    /// Its id, stored as 16 bytes (D112).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
