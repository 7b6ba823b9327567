//! `session_skill`: which skills each session used, with counts and times.
//! Since schema version 20 (D114) a view of `session_skill_numbered` with
//! the session's text id joined back; the store writes to that table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "session_skill")]
/// One row.
pub struct Model {
    /// Primary key (text).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The session it belongs to.
    pub session_id: String,
    /// The skill's name.
    pub skill_name: String,
    /// Invocations of the skill in the session.
    pub invocation_count: i64,
    /// Earliest `invoked_at` in the session.
    pub first_invoked_at: DateTimeUtc,
    /// Latest `invoked_at` in the session.
    pub last_invoked_at: DateTimeUtc,
    /// Sum of durations (completed invocations with one; all, in `session_skill`).
    pub total_duration_seconds: f64,
    /// The same sum in whole microseconds: exact, whatever the order (version 4).
    pub total_duration_micros: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
