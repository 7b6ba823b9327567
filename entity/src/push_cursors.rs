//! `push_cursors`: how far `skill-metrics push` has delivered this store's
//! log to each server.

use sea_orm::entity::prelude::*;

/// One server's cursor.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_cursors")]
pub struct Model {
    /// The server's base URL, without credentials.
    #[sea_orm(primary_key, auto_increment = false)]
    pub server: String,
    /// Every row of the log with `seq` up to this one has been delivered.
    pub last_seq: i64,
    /// How many invocations have been delivered to this server in all.
    pub pushed_invocations: i64,
    /// When the cursor last moved.
    pub updated_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
