//! `session_skill_numbered`: the table that holds `session_skill`'s rows
//! (schema version 20, decision D114), keyed by the session's number
//! (`sessions.num`) and the skill. The `session_skill` view gives the
//! design's shape back, with the session's text id; `verify` and `rebuild`
//! read this table by the numbers of a chunk of sessions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "session_skill_numbered")]
/// One row.
pub struct Model {
    /// The number of the session it belongs to (`sessions.num`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub session_num: i64,
    /// The skill's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// The row's id, a UUID stored as its 16 bytes.
    pub id: Uuid,
    /// Invocations of the skill in the session.
    pub invocation_count: i64,
    /// Earliest `invoked_at` in the session.
    pub first_invoked_at: DateTimeUtc,
    /// Latest `invoked_at` in the session.
    pub last_invoked_at: DateTimeUtc,
    /// Sum of durations, in seconds.
    pub total_duration_seconds: f64,
    /// The same sum in whole microseconds: exact, whatever the order.
    pub total_duration_micros: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
