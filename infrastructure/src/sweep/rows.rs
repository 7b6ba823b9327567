//! Reading the log's rows for the sweep, and cutting tables by skill.

use chrono::{DateTime, Utc};
use domain::Invocation;
use entity::skill_invocation;
use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, IdenStatic,
    JsonValue, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement, StreamTrait,
};

use super::Sweep;
use crate::StoreError;
use crate::direct::{bindings, json_at, required_timestamp_at, uuid_at};
use crate::rows::logged_invocation;

/// The part of a log row the aggregates need, in [`LOG_COLUMNS`] order:
/// read by position, which costs less than by name.
pub(super) type LogRow = (
    uuid::Uuid,
    String,
    DateTime<Utc>,
    Option<String>,
    bool,
    Option<f64>,
    Option<String>,
    Option<String>,
    JsonValue,
    Option<String>,
);

const LOG_COLUMNS: [skill_invocation::Column; 10] = [
    skill_invocation::Column::Id,
    skill_invocation::Column::SkillName,
    skill_invocation::Column::InvokedAt,
    skill_invocation::Column::WorkflowPath,
    skill_invocation::Column::Completed,
    skill_invocation::Column::DurationSeconds,
    skill_invocation::Column::ErrorType,
    skill_invocation::Column::SessionId,
    skill_invocation::Column::FollowUpActions,
    skill_invocation::Column::ProjectPath,
];

impl Sweep {
    /// `query` without the rows a prune removed and an import restored,
    /// when the store has any (D101).
    fn without_tombstones<E: EntityTrait>(&self, query: Select<E>) -> Select<E> {
        if !self.tombstones {
            return query;
        }
        let table = E::default().table_name().to_owned();
        query.filter(Expr::cust(format!(
            "NOT EXISTS (SELECT 1 FROM pruned_invocations p WHERE p.id = {table}.id)"
        )))
    }
}

/// `query` selecting [`LogRow`]'s columns: from the view (`skill_invocation`)
/// with the session's text id, from the table (`skill_invocation_log`)
/// without it (D112: the skills' pieces need no session).
fn log_columns_of<E: EntityTrait>(query: Select<E>) -> Select<E> {
    let mut query = query.select_only();
    let table = E::default().table_name();
    let view = table == sea_orm::EntityName::table_name(&skill_invocation::Entity);
    for column in LOG_COLUMNS {
        query = if matches!(column, skill_invocation::Column::SessionId) && !view {
            query.expr(Expr::cust("CAST(NULL AS TEXT)"))
        } else {
            query.expr(Expr::col((
                sea_orm::sea_query::Alias::new(table),
                sea_orm::sea_query::Alias::new(column.as_str()),
            )))
        };
    }
    query
}

/// Folds the log rows `stmt` selects (as [`LOG_COLUMNS`]) into `each`, one
/// at a time as rusqlite steps through them.
fn fold_lite(
    conn: &rusqlite::Connection,
    stmt: Statement,
    each: &mut impl FnMut(Invocation) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let values = stmt.values.map(|v| v.0).unwrap_or_default();
    let lite = crate::error::from_rusqlite;
    let mut st = conn.prepare_cached(&stmt.sql).map_err(lite)?;
    let values = bindings(values).map_err(lite)?;
    let mut rows = st.query(rusqlite::params_from_iter(values)).map_err(lite)?;
    while let Some(row) = rows.next().map_err(lite)? {
        let decoded: rusqlite::Result<LogRow> = (|| {
            Ok((
                uuid_at(row, 0)?,
                row.get(1)?,
                required_timestamp_at(row, 2, "invoked_at")?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                json_at(row, 8)?,
                row.get(9)?,
            ))
        })();
        each(invocation(decoded.map_err(lite)?)?)?;
    }
    Ok(())
}

/// `query` narrowed to the skills (named by `column`) after `after` and
/// before `before`, each bound left open when `None`, by the database's
/// own comparisons.
pub(crate) fn skills_between<E: EntityTrait>(
    mut query: Select<E>,
    column: E::Column,
    (after, before): (Option<&str>, Option<&str>),
) -> Select<E>
where
    E::Column: ColumnTrait,
{
    if let Some(after) = after {
        query = query.filter(column.gt(after));
    }
    if let Some(before) = before {
        query = query.filter(column.lt(before));
    }
    query
}

/// The skill name (in `column`) `rows` rows after `after` in `E`, in the
/// database's order: one seek and a walk on an index that starts with it.
pub(super) async fn skill_after_rows<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    column: E::Column,
    after: Option<&str>,
    rows: u64,
) -> Result<Option<String>, StoreError>
where
    E::Column: ColumnTrait,
{
    Ok(skills_between(E::find(), column, (after, None))
        .select_only()
        .column(column)
        .order_by_asc(column)
        .offset(rows)
        .limit(1)
        .into_tuple::<String>()
        .one(conn)
        .await?)
}

/// The invocation of a log row, checked by the domain's rules.
pub(super) fn invocation(row: LogRow) -> Result<Invocation, StoreError> {
    logged_invocation(skill_invocation::Model {
        id: row.0,
        skill_name: row.1,
        invoked_at: row.2,
        workflow_path: row.3,
        completed: row.4,
        duration_seconds: row.5,
        error_type: row.6,
        session_id: row.7,
        follow_up_actions: row.8,
        schema_version: 0,
        project_path: row.9,
        user_context: None,
        search_text: String::new(),
        seq: 0,
    })
}

impl Sweep {
    /// Folds the log's rows of `query` into `each`, with their session's id
    /// only when `sessions` asks for it, and without those a prune
    /// had removed and an import restored (they are in the prune's
    /// balances, D83). The rows stream: on a SQLite file through rusqlite,
    /// on PostgreSQL as one statement's rows arrive; only an in-memory
    /// SQLite store (held in memory whole anyway) reads them at once.
    pub(super) async fn fold_rows<E: EntityTrait>(
        &mut self,
        conn: &DatabaseTransaction,
        query: Select<E>,
        mut each: impl FnMut(Invocation) -> Result<(), StoreError> + Send,
    ) -> Result<(), StoreError> {
        let query = self.without_tombstones(query);
        let query = log_columns_of(query);
        if let Some(lite) = &self.lite {
            return fold_lite(lite, query.build(DbBackend::Sqlite), &mut each);
        }
        let backend = ConnectionTrait::get_database_backend(conn);
        if backend != DbBackend::Postgres {
            for row in query.into_tuple::<LogRow>().all(conn).await? {
                each(invocation(row)?)?;
            }
            return Ok(());
        }
        // One statement whose rows arrive as they are folded: the server
        // reads ahead into the socket while this side decodes, where pages
        // of a cursor took turns with it; memory holds what is in flight.
        let mut rows = conn.stream_raw(query.build(backend)).await?;
        while let Some(row) = rows.next().await {
            each(invocation(row?.try_get_many_by_index::<LogRow>()?)?)?;
        }
        Ok(())
    }
}
