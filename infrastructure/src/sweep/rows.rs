//! Reading the log's rows for the sweep, and cutting tables by skill.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::Invocation;
use entity::{skill_invocation, skill_invocation_log};
use futures_util::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, JsonValue,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement, StreamTrait,
};

use super::Sweep;
use crate::StoreError;
use crate::direct::{bindings, json_at, required_timestamp_at, uuid_at};
use crate::rows::logged_invocation;

/// The part of a log row the aggregates need, in [`LOG_COLUMNS`] order:
/// read by position, which costs less than by name. The session is its
/// number (D112): the sessions' pieces know each number's text id.
pub(super) type LogRow = (
    uuid::Uuid,
    String,
    DateTime<Utc>,
    Option<String>,
    bool,
    Option<f64>,
    Option<String>,
    Option<i64>,
    JsonValue,
    Option<String>,
);

const LOG_COLUMNS: [skill_invocation_log::Column; 10] = [
    skill_invocation_log::Column::Id,
    skill_invocation_log::Column::SkillName,
    skill_invocation_log::Column::InvokedAt,
    skill_invocation_log::Column::WorkflowPath,
    skill_invocation_log::Column::Completed,
    skill_invocation_log::Column::DurationSeconds,
    skill_invocation_log::Column::ErrorType,
    skill_invocation_log::Column::SessionNum,
    skill_invocation_log::Column::FollowUpActions,
    skill_invocation_log::Column::ProjectPath,
];

impl Sweep {
    /// `query` without the rows a prune removed and an import restored,
    /// when the store has any (D101).
    fn without_tombstones(
        &self,
        query: Select<skill_invocation_log::Entity>,
    ) -> Select<skill_invocation_log::Entity> {
        if !self.tombstones {
            return query;
        }
        with_tombstones_filtered(query)
    }
}

/// `query` without the rows `pruned_invocations` records.
fn with_tombstones_filtered(
    query: Select<skill_invocation_log::Entity>,
) -> Select<skill_invocation_log::Entity> {
    query.filter(Expr::cust(
        "NOT EXISTS (SELECT 1 FROM pruned_invocations p WHERE p.id = skill_invocation_log.id)",
    ))
}

/// `query` selecting [`LogRow`]'s columns, from the table: no piece reads
/// the view (D113), whose join to `sessions` PostgreSQL planned as a scan
/// of every session for each chunk of sessions.
fn log_columns_of(
    query: Select<skill_invocation_log::Entity>,
) -> Select<skill_invocation_log::Entity> {
    let mut query = query.select_only();
    for column in LOG_COLUMNS {
        query = query.column(column);
    }
    query
}

/// The statements by which a sweep reads the log (a window of one skill,
/// a chunk's sessions by number, and the window again without the rows a
/// prune removed and an import restored), as `backend` would run them, for
/// the query-plan test; on PostgreSQL the sweep runs them with plain
/// index scans off ([`Sweep::fold_rows`]).
#[doc(hidden)]
pub fn sweep_reads_sql(backend: DbBackend) -> Vec<String> {
    let from = DateTime::<Utc>::from_timestamp(1_739_145_600, 0).unwrap_or_default();
    let to = from + chrono::Duration::days(3);
    let window = super::skills::window_rows(backend, "x", from, to);
    [
        window.clone(),
        super::chunks::session_rows(vec![3, 5, 8]),
        with_tombstones_filtered(window),
    ]
    .into_iter()
    .map(|query| log_columns_of(query).build(backend).to_string())
    .collect()
}

/// Folds the log rows `stmt` selects (as [`LOG_COLUMNS`]) into `each`, one
/// at a time as rusqlite steps through them.
fn fold_lite(
    conn: &rusqlite::Connection,
    stmt: Statement,
    names: Option<&HashMap<i64, String>>,
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
        each(invocation(decoded.map_err(lite)?, names)?)?;
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

/// The invocation of a log row, checked by the domain's rules, with its
/// session's text id from `names` (the sessions' pieces) or none (the
/// skills' pieces, which need none).
pub(super) fn invocation(
    row: LogRow,
    names: Option<&HashMap<i64, String>>,
) -> Result<Invocation, StoreError> {
    let session_id = match (names, row.7) {
        (Some(names), Some(num)) => Some(names.get(&num).cloned().ok_or_else(|| {
            // The log's key on `sessions(num)` makes this unreachable
            // short of a broken store: said, not skipped.
            StoreError::Invalid(domain::ValidationError::new(
                "session_id",
                format!(
                    "logged invocation {} names session number {num}, which its piece of sessions does not hold",
                    row.0
                ),
            ))
        })?),
        _ => None,
    };
    logged_invocation(skill_invocation::Model {
        id: row.0,
        skill_name: row.1,
        invoked_at: row.2,
        workflow_path: row.3,
        completed: row.4,
        duration_seconds: row.5,
        error_type: row.6,
        session_id,
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
    /// only when `names` gives the ids of their numbers, and without those a prune
    /// had removed and an import restored (they are in the prune's
    /// balances, D83). The rows stream: on a SQLite file through rusqlite,
    /// on PostgreSQL as one statement's rows arrive; only an in-memory
    /// SQLite store (held in memory whole anyway) reads them at once.
    pub(super) async fn fold_rows(
        &mut self,
        conn: &DatabaseTransaction,
        query: Select<skill_invocation_log::Entity>,
        names: Option<&HashMap<i64, String>>,
        mut each: impl FnMut(Invocation) -> Result<(), StoreError> + Send,
    ) -> Result<(), StoreError> {
        let query = self.without_tombstones(query);
        let query = log_columns_of(query);
        if let Some(lite) = &self.lite {
            return fold_lite(lite, query.build(DbBackend::Sqlite), names, &mut each);
        }
        let backend = ConnectionTrait::get_database_backend(conn);
        if backend != DbBackend::Postgres {
            for row in query.into_tuple::<LogRow>().all(conn).await? {
                each(invocation(row, names)?)?;
            }
            return Ok(());
        }
        // One statement whose rows arrive as they are folded: the server
        // reads ahead into the socket while this side decodes, where pages
        // of a cursor took turns with it; memory holds what is in flight.
        //
        // Read by a bitmap scan, the heap's pages in their order: PostgreSQL
        // judges an index by its first column's order in the heap, so for a
        // skill's window it took the time index and filtered out every
        // other skill's rows (a skill of 4 % of the log read 22 rows for
        // each of its own), where `(skill_name, invoked_at)` holds just the
        // window's (D113). An index-only scan needs plain index scans on,
        // so they are off for this statement alone.
        conn.execute_unprepared(&format!("SET LOCAL {}", super::STREAM_SETTING))
            .await?;
        {
            let mut rows = conn.stream_raw(query.build(backend)).await?;
            while let Some(row) = rows.next().await {
                each(invocation(row?.try_get_many_by_index::<LogRow>()?, names)?)?;
            }
        }
        let before = self.index_scans.as_deref().unwrap_or("on");
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT set_config('enable_indexscan', $1, true)",
            [before.into()],
        ))
        .await?;
        Ok(())
    }
}
