//! `schema_migrations`: the design's migration ledger.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "schema_migrations")]
/// One row.
pub struct Model {
    /// Migration version.
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i32,
    /// When it was applied.
    pub applied_at: DateTimeUtc,
    /// What it does.
    pub description: String,
    /// SHA-256 of the migration's definition on this backend.
    pub checksum: String,
    /// The SQL that rolls it back.
    pub rollback_sql: Option<String>,
    /// How long it took, in milliseconds.
    pub migration_time_ms: Option<f64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
