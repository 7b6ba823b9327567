//! `serve_addresses`: where the running `serve` processes of this store
//! listen.

use sea_orm::entity::prelude::*;

/// One listening address.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "serve_addresses")]
pub struct Model {
    /// `host:port`, as a browser on this machine reaches it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub address: String,
    /// When that server started.
    pub started_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
