//! The per-session and per-hour tables every write keeps, and their pruned
//! balances (D81, D83): the statements that add a batch's partials in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{RollupAggregate, SessionSkillAggregate};
use entity::skill_rollups;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Value};

use super::Piece;
use crate::StoreError;
use crate::rollups;
use crate::sql::{chunk_rows, placeholders, stmt, ts};

/// `session_skill`'s table, kept in every write: its rows name their
/// session by number (D114).
pub(crate) const SESSION_SKILL: &str = "session_skill_numbered";
/// What pruned invocations contributed to it (D83), by the session's text id.
pub(crate) const SESSION_SKILL_PRUNED: &str = "session_skill_pruned";

/// Adds per-session-skill partials to `table` (one of the two above). The
/// pairs name their session by text id; into `SESSION_SKILL` each row's
/// number is read from the `sessions` row the same write upserted before,
/// by one subquery correlated with the `VALUES` list (as the log's insert
/// does, D112).
pub(crate) fn session_skills_sql(
    backend: DbBackend,
    table: &str,
    pairs: &BTreeMap<(&str, &str), SessionSkillAggregate>,
) -> Vec<Piece> {
    let all: Vec<_> = pairs.iter().collect();
    let numbered = table == SESSION_SKILL;
    // The seconds column follows the exact microseconds, converted by the
    // database the same way on both backends (IEEE division of two doubles).
    let (real, million) = match backend {
        DbBackend::Postgres => ("DOUBLE PRECISION", "CAST(1000000 AS DOUBLE PRECISION)"),
        _ => ("REAL", "1000000.0"),
    };
    let seconds = format!(
        "CAST({table}.total_duration_micros + excluded.total_duration_micros AS {real}) / {million}"
    );
    let session = if numbered {
        "session_num"
    } else {
        "session_id"
    };
    all.chunks(chunk_rows(8))
        .map(|chunk| {
            let rows = placeholders(chunk.len(), 8);
            // `WHERE true`: SQLite's parser needs a WHERE before an upsert
            // clause after a SELECT.
            let source = if numbered {
                format!(
                    "SELECT v.column1, (SELECT num FROM sessions WHERE id = v.column2), \
                     v.column3, v.column4, v.column5, v.column6, v.column7, v.column8 \
                     FROM (VALUES {rows}) AS v WHERE true"
                )
            } else {
                format!("VALUES {rows}")
            };
            let sql = format!(
                "INSERT INTO {table} (id, {session}, skill_name, invocation_count, \
                 first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
                 {source} \
                 ON CONFLICT ({session}, skill_name) DO UPDATE SET \
                   invocation_count = {table}.invocation_count + excluded.invocation_count, \
                   first_invoked_at = CASE WHEN excluded.first_invoked_at < {table}.first_invoked_at \
                     THEN excluded.first_invoked_at ELSE {table}.first_invoked_at END, \
                   last_invoked_at = CASE WHEN excluded.last_invoked_at > {table}.last_invoked_at \
                     THEN excluded.last_invoked_at ELSE {table}.last_invoked_at END, \
                   total_duration_seconds = {seconds}, \
                   total_duration_micros = {table}.total_duration_micros + excluded.total_duration_micros"
            );
            let mut values = Vec::with_capacity(chunk.len() * 8);
            for ((session, skill), row) in chunk {
                // Time-ordered: a new row's id is never a random key (D97);
                // 16 bytes in the numbered table, text in the balance.
                let id = uuid::Uuid::now_v7();
                values.extend([
                    if numbered {
                        Value::from(id)
                    } else {
                        Value::from(id.to_string())
                    },
                    Value::from(*session),
                    Value::from(*skill),
                    Value::from(row.invocation_count),
                    ts(backend, row.first_invoked_at),
                    ts(backend, row.last_invoked_at),
                    Value::from(row.total_duration_seconds()),
                    Value::from(row.total_duration_micros),
                ]);
            }
            (sql, values)
        })
        .collect()
}

/// Adds per-session-skill partials to `table`.
pub(crate) async fn upsert_session_skills(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    table: &str,
    pairs: &BTreeMap<(&str, &str), SessionSkillAggregate>,
) -> Result<(), StoreError> {
    for (sql, values) in session_skills_sql(backend, table, pairs) {
        conn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Merges per-hour partials into `table` (`skill_rollups` or its pruned
/// balance): the touched rows are read (on PostgreSQL under the skills'
/// `skill_metrics` row locks this transaction already holds, or the prune's
/// table lock), merged and written back whole.
pub(crate) async fn write_rollups(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    table: &str,
    partials: &BTreeMap<(&str, DateTime<Utc>, &str), RollupAggregate>,
) -> Result<(), StoreError> {
    let keys: Vec<_> = partials.keys().copied().collect();
    let mut stored = BTreeMap::new();
    for (sql, values) in rollups::select_sql(backend, table, &keys) {
        for row in conn.query_all_raw(stmt(backend, &sql, values)).await? {
            let (key, value) =
                rollups::from_model(skill_rollups::Model::from_query_result(&row, "")?)?;
            stored.insert(key, value);
        }
    }
    let rows = rollups::merged(stored, partials.iter().map(|(k, v)| (*k, v)))?;
    for (sql, values) in rollups::upsert_sql(backend, table, &rows) {
        conn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}
