//! Values in and out of the store's own SQLite connections: the write
//! path's Sea-ORM values bound as SQLite values, and `skill_metrics` rows
//! decoded as the entity model, timestamps by the store's one codec.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::{skill_invocation, skill_metrics, skill_rollups};
use migration::parse_sqlite_timestamp;
use rusqlite::Row;
use rusqlite::types::{Type, Value as Sql};
use sea_orm::Value;

use crate::write::METRICS_COLS;

/// `SELECT` of every `skill_metrics` column in `METRICS_COLS` order, the
/// order `metrics_row` decodes.
pub(super) static SELECT_METRICS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM skill_metrics", METRICS_COLS.join(", ")));
pub(super) static SELECT_ONE_METRICS: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE skill_name = ?", *SELECT_METRICS));

/// The write path's values as SQLite values (on SQLite, timestamps and JSON
/// are already text).
pub(crate) fn bindings(values: Vec<Value>) -> rusqlite::Result<Vec<Sql>> {
    values.into_iter().map(binding).collect()
}

fn binding(value: Value) -> rusqlite::Result<Sql> {
    let int = |v: Option<i64>| v.map_or(Sql::Null, Sql::Integer);
    Ok(match value {
        Value::Bool(v) => int(v.map(i64::from)),
        Value::TinyInt(v) => int(v.map(i64::from)),
        Value::SmallInt(v) => int(v.map(i64::from)),
        Value::Int(v) => int(v.map(i64::from)),
        Value::BigInt(v) => int(v),
        Value::TinyUnsigned(v) => int(v.map(i64::from)),
        Value::SmallUnsigned(v) => int(v.map(i64::from)),
        Value::Unsigned(v) => int(v.map(i64::from)),
        Value::BigUnsigned(v) => int(v.map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
        Value::Float(v) => v.map_or(Sql::Null, |f| Sql::Real(f64::from(f))),
        Value::Double(v) => v.map_or(Sql::Null, Sql::Real),
        Value::String(v) => v.map_or(Sql::Null, Sql::Text),
        Value::Bytes(v) => v.map_or(Sql::Null, Sql::Blob),
        // As sqlx binds one on SQLite: its 16 bytes (D112).
        Value::Uuid(v) => v.map_or(Sql::Null, |u| Sql::Blob(u.as_bytes().to_vec())),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("no SQLite binding for {other:?}").into(),
            ));
        }
    })
}

/// A row selected as `METRICS_COLS`, decoded as the entity model.
pub(super) fn metrics_row(row: &Row<'_>) -> rusqlite::Result<skill_metrics::Model> {
    Ok(skill_metrics::Model {
        skill_name: row.get(0)?,
        total_invocations: row.get(1)?,
        completed_invocations: row.get(2)?,
        abandoned_invocations: row.get(3)?,
        total_duration_seconds: row.get(4)?,
        min_duration_seconds: row.get(5)?,
        max_duration_seconds: row.get(6)?,
        p50_duration_seconds: row.get(7)?,
        p95_duration_seconds: row.get(8)?,
        p99_duration_seconds: row.get(9)?,
        workflow_paths: json_at(row, 10)?,
        common_errors: json_at(row, 11)?,
        follow_up_actions: json_at(row, 12)?,
        first_invoked: timestamp_at(row, 13)?,
        last_invoked: timestamp_at(row, 14)?,
        completion_rate: row.get(15)?,
        avg_duration_seconds: row.get(16)?,
        schema_version: row.get(17)?,
        last_aggregated_at: timestamp_at(row, 18)?,
        duration_count: row.get(19)?,
        duration_digest: row.get(20)?,
        success_rate: row.get(21)?,
        total_duration_micros: row.get(22)?,
        workflow_paths_other: row.get(23)?,
        common_errors_other: row.get(24)?,
        follow_up_actions_other: row.get(25)?,
    })
}

/// A log row, its columns in `sql::log_columns` order.
pub(super) fn log_row(row: &Row<'_>) -> rusqlite::Result<skill_invocation::Model> {
    let invoked_at = required_timestamp_at(row, 2, "invoked_at")?;
    Ok(skill_invocation::Model {
        id: uuid_at(row, 0)?,
        skill_name: row.get(1)?,
        invoked_at,
        workflow_path: row.get(3)?,
        completed: row.get(4)?,
        duration_seconds: row.get(5)?,
        error_type: row.get(6)?,
        session_id: row.get(7)?,
        follow_up_actions: json_at(row, 8)?,
        schema_version: row.get(9)?,
        project_path: row.get(10)?,
        user_context: optional_json_at(row, 11)?,
        search_text: row.get(12)?,
        seq: row.get(13)?,
    })
}

/// A `skill_rollups` row, its columns in `rollups::ROLLUP_COLS` order.
pub(super) fn rollup_row(row: &Row<'_>) -> rusqlite::Result<skill_rollups::Model> {
    let bucket_start = required_timestamp_at(row, 1, "bucket_start")?;
    Ok(skill_rollups::Model {
        skill_name: row.get(0)?,
        bucket_start,
        project_path: row.get(2)?,
        invocations: row.get(3)?,
        completed: row.get(4)?,
        duration_count: row.get(5)?,
        total_duration_micros: row.get(6)?,
        duration_digest: row.get(7)?,
        error_counts: row.get(8)?,
    })
}

/// The timestamp in column `at` (named `column`), which may not be NULL.
pub(crate) fn required_timestamp_at(
    row: &Row<'_>,
    at: usize,
    column: &str,
) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(at)?;
    parse_sqlite_timestamp(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            at,
            Type::Text,
            format!("{text:?} (column {column}) is not a timestamp").into(),
        )
    })
}

pub(crate) fn uuid_at(row: &Row<'_>, at: usize) -> rusqlite::Result<uuid::Uuid> {
    row.get::<_, [u8; 16]>(at).map(uuid::Uuid::from_bytes)
}

pub(crate) fn json_at(row: &Row<'_>, at: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(at)?;
    parse_json(at, &text)
}

fn optional_json_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    row.get::<_, Option<String>>(at)?
        .map(|text| parse_json(at, &text))
        .transpose()
}

fn parse_json(at: usize, text: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, Type::Text, Box::new(e)))
}

fn timestamp_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    parse_sqlite_timestamp(&text).map(Some).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            at,
            Type::Text,
            format!(
                "{:?} (column {}) is not a timestamp",
                text, METRICS_COLS[at]
            )
            .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_what_the_write_path_produces() {
        assert_eq!(binding(Value::from(true)).unwrap(), Sql::Integer(1));
        assert_eq!(
            binding(Value::from(Option::<String>::None)).unwrap(),
            Sql::Null
        );
        assert_eq!(binding(Value::from(2.5f64)).unwrap(), Sql::Real(2.5));
        assert!(binding(Value::from(chrono::Utc::now())).is_err());
    }
}
