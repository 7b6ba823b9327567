//! `skill_invocation`: the append-only event log, as the design defines it.
//!
//! Since schema version 19 (decision D112) this is a view: the rows live in
//! `skill_invocation_log`, which keeps each row's session as the session's
//! number (`sessions.num`), and the view joins the text id back. Read
//! through this entity; the store writes to the table, and the view
//! refuses writes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_invocation")]
/// One row.
pub struct Model {
    /// Primary key: a UUID, stored as its 16 bytes (D112).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The skill's name.
    pub skill_name: String,
    /// When the skill was invoked (UTC, microseconds).
    pub invoked_at: DateTimeUtc,
    /// The workflow path taken, if any.
    pub workflow_path: Option<String>,
    /// `true` when it completed; `false` is abandoned.
    pub completed: bool,
    /// How long it ran, in seconds.
    pub duration_seconds: Option<f64>,
    /// The error's type, if it failed.
    pub error_type: Option<String>,
    /// The session it belongs to.
    pub session_id: Option<String>,
    /// Follow-up actions: a JSON array on the log, a `{action: count}` object in aggregates.
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    /// Row format version (1).
    pub schema_version: i32,
    /// The project (working directory) it belongs to.
    pub project_path: Option<String>,
    /// Free-form context, a JSON object.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub user_context: Option<Json>,
    /// Lowercase words of the skill name and workflow path, for full-text search.
    pub search_text: String,
    /// The row's place in the order of writing: it only grows, is never
    /// reused, and is what `push` keeps its cursor by.
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
