//! Small helpers for SQL written once for both backends: `$n` placeholders
//! (rewritten to SQLite's `?n`), and binding values whose storage differs.

use sea_orm::{DbBackend, Statement, Value};

/// A statement from SQL written with `$1`-style placeholders, each used once
/// and in order. On SQLite they become plain `?`: numbered `?NNN` parameters
/// make binding cost grow with the square of their count in sqlx.
pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => sqlite_placeholders(sql),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `sql` with each `$n` placeholder turned into SQLite's plain `?`.
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        out.push('?');
        rest = rest[at + 1..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// `($1, $2, ..), ($k, ..)`: numbered placeholders for `rows` rows of `cols` values.
pub(crate) fn placeholders(rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * cols + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

/// Timestamps are bound by the store's one codec (`migration::timestamp_value`).
pub(crate) use migration::{optional_timestamp_value as opt_ts, timestamp_value as ts};

/// JSON is JSONB on PostgreSQL and text on SQLite.
pub(crate) fn json(backend: DbBackend, value: Option<serde_json::Value>) -> Value {
    match backend {
        DbBackend::Sqlite => Value::from(value.map(|v| v.to_string())),
        _ => Value::from(value),
    }
}

/// Most rows a multi-row statement may carry with `cols` values each, under
/// both backends' bind-parameter limits (SQLite 32,766; PostgreSQL 65,535).
pub(crate) fn chunk_rows(cols: usize) -> usize {
    (30_000 / cols).max(1)
}

/// One page of the log as the `skill_invocation` view gives it (D112): the
/// rows of `skill_invocation_log` that `filter` keeps, in `order` (columns
/// of the table, each with its direction), at most `limit`, and only then
/// each row's session's text id, looked up by its number. Taking the page
/// first holds PostgreSQL to the index of `order` whatever its statistics
/// say (through the view, with a range its statistics had not seen, it
/// merged the whole range with `sessions` and sorted it to keep 5,000
/// rows), and a lookup per row, where a join of the page with `sessions`
/// was planned as a hash join that read every session for every page.
pub(crate) fn log_page_sql(filter: &str, order: &[(&str, &str)], limit: &str) -> String {
    let by = |prefix: &str| {
        order
            .iter()
            .map(|(column, dir)| {
                format!(
                    "{prefix}{column}{}",
                    if dir.is_empty() {
                        String::new()
                    } else {
                        format!(" {dir}")
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let columns = log_columns("l.").replace(
        "l.session_id",
        "(SELECT s.id FROM sessions s WHERE s.num = l.session_num) AS session_id",
    );
    format!(
        "SELECT {columns} FROM (SELECT * FROM skill_invocation_log WHERE {filter} \
         ORDER BY {} LIMIT {limit}) l ORDER BY {}",
        by(""),
        by("l.")
    )
}

/// The log's columns, as its entity reads them, each with `prefix` (`""`
/// or `"i."`): PostgreSQL's search vector is left out (derived, and of no
/// use outside the database).
pub(crate) fn log_columns(prefix: &str) -> String {
    [
        "id",
        "skill_name",
        "invoked_at",
        "workflow_path",
        "completed",
        "duration_seconds",
        "error_type",
        "session_id",
        "follow_up_actions",
        "schema_version",
        "project_path",
        "user_context",
        "search_text",
        "seq",
    ]
    .iter()
    .map(|c| format!("{prefix}{c}"))
    .collect::<Vec<_>>()
    .join(", ")
}
