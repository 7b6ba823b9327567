//! `sessions`: the table the design's foreign keys point to.
//!
//! Each row also has `num`, an integer the database assigns, by which the
//! log's rows name their session (decision D112); it is left out here, so
//! that no copy or insert of a model carries one store's numbers to
//! another. The reads that need it select it by name (`verify`'s chunks of
//! sessions, D113).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
/// One row.
pub struct Model {
    /// The session's id (text): the primary key on PostgreSQL, unique on
    /// SQLite, where `num` is the primary key (D112).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// When the session started: its earliest invocation, or an explicit start.
    pub started_at: DateTimeUtc,
    /// When the session ended (`session end`), if known.
    pub ended_at: Option<DateTimeUtc>,
    /// The project (working directory) it belongs to.
    pub project_path: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
