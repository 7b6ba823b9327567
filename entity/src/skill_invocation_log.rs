//! `skill_invocation_log`: the table that holds the log's rows (schema
//! version 19, decision D112). It names each row's session by number
//! (`sessions.num`); the `skill_invocation` view gives the design's shape
//! back. Reads that need no session read this table, where PostgreSQL
//! plans with every index as it is (through the view it did not consider
//! an index-only scan).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_invocation_log")]
/// One row.
pub struct Model {
    /// Primary key: a UUID, stored as its 16 bytes.
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
    /// The number of the session it belongs to (`sessions.num`).
    pub session_num: Option<i64>,
    /// Follow-up actions, a JSON array.
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
    /// The row's place in the order of writing.
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
