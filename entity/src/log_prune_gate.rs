//! `log_prune_gate`: holds its one row only inside a prune's transaction;
//! the log's append-only triggers let a DELETE through while it does.

use sea_orm::entity::prelude::*;

/// The one row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "log_prune_gate")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
