//! `skill_metrics_balance`: opening balances from legacy imports.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "skill_metrics_balance")]
/// One row.
pub struct Model {
    /// The skill's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub skill_name: String,
    /// The legacy file the balance came from.
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    /// Invocations counted.
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// Of which abandoned.
    pub abandoned_invocations: i64,
    /// Sum of durations (completed invocations with one; all, in `session_skill`).
    pub total_duration_seconds: f64,
    /// The same sum in whole microseconds: exact, whatever the order (version 4).
    pub total_duration_micros: i64,
    /// `{path: count}` over all invocations.
    #[sea_orm(column_type = "JsonBinary")]
    pub workflow_paths: Json,
    /// `{error_type: count}` over all invocations.
    #[sea_orm(column_type = "JsonBinary")]
    pub common_errors: Json,
    /// Follow-up actions: a JSON array on the log, a `{action: count}` object in aggregates.
    #[sea_orm(column_type = "JsonBinary")]
    pub follow_up_actions: Json,
    /// Earliest `invoked_at`.
    pub first_invoked: Option<DateTimeUtc>,
    /// Latest `invoked_at`.
    pub last_invoked: Option<DateTimeUtc>,
    /// When it was imported.
    pub imported_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
/// No relations are declared: queries join by hand where needed.
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
