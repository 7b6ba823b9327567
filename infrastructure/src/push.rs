//! The log in the order it was written, and the cursors `push` keeps per
//! server (decision D77).
//!
//! Every row of the log has a `seq` that only grows in the order rows were
//! committed: on SQLite one transaction writes at a time, and on PostgreSQL
//! [`SkillMetricsStore::written_after`] (the same read as `export`) first
//! waits out every transaction still writing to the log, so that no row
//! with a smaller `seq` can commit after a reader has moved past it.

use chrono::{DateTime, Utc};
use domain::Invocation;
use entity::push_cursors;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Value};
use serde::Serialize;

use crate::rows::invocation_from_model;
use crate::sql::{stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// An invocation and its place in the order of writing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Logged {
    /// Its `seq`: greater than that of every row written before it.
    pub seq: i64,
    /// The invocation.
    pub invocation: Invocation,
}

/// How far this store's log has been delivered to one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushCursor {
    /// The server, as `push` names it (its URL without credentials).
    pub server: String,
    /// Every row with a `seq` up to this one has been delivered.
    pub last_seq: i64,
    /// How many invocations were delivered to it in all.
    pub pushed_invocations: i64,
    /// When the cursor last moved; `None` before the first delivery.
    pub updated_at: Option<DateTime<Utc>>,
}

impl SkillMetricsStore {
    /// Up to `limit` invocations with a `seq` above `after_seq`, in the
    /// order they were written. A reader that continues from the last
    /// `seq` it got never misses a row: on PostgreSQL this first waits
    /// (briefly) for transactions still writing to the log to finish.
    ///
    /// # Errors
    /// A database failure.
    pub async fn written_after(
        &self,
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<Logged>, StoreError> {
        let rows = self
            .log_page(&crate::ExportFilter::default(), after_seq, limit)
            .await?;
        rows.into_iter()
            .map(|m| {
                let seq = m.seq;
                Ok(Logged {
                    seq,
                    invocation: invocation_from_model(m)?,
                })
            })
            .collect()
    }

    /// The cursor kept for `server`; one at 0 when nothing was delivered.
    ///
    /// # Errors
    /// A database failure.
    pub async fn push_cursor(&self, server: &str) -> Result<PushCursor, StoreError> {
        let row = push_cursors::Entity::find_by_id(server.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map_or_else(
            || PushCursor {
                server: server.to_owned(),
                last_seq: 0,
                pushed_invocations: 0,
                updated_at: None,
            },
            |m| PushCursor {
                server: m.server,
                last_seq: m.last_seq,
                pushed_invocations: m.pushed_invocations,
                updated_at: Some(m.updated_at),
            },
        ))
    }

    /// Every server's cursor, by server.
    ///
    /// # Errors
    /// A database failure.
    pub async fn push_cursors(&self) -> Result<Vec<PushCursor>, StoreError> {
        let rows = push_cursors::Entity::find()
            .order_by_asc(push_cursors::Column::Server)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|m| PushCursor {
                server: m.server,
                last_seq: m.last_seq,
                pushed_invocations: m.pushed_invocations,
                updated_at: Some(m.updated_at),
            })
            .collect())
    }

    /// Records that every row up to `last_seq` has reached `server`, and
    /// that `delivered` more invocations went there. The cursor never moves
    /// back: a smaller `last_seq` than the one kept leaves it where it is.
    ///
    /// # Errors
    /// A database failure.
    pub async fn advance_push_cursor(
        &self,
        server: &str,
        last_seq: i64,
        delivered: u64,
    ) -> Result<(), StoreError> {
        let server = server.to_owned();
        let delivered = i64::try_from(delivered).unwrap_or(i64::MAX);
        self.write(move |txn| {
            let server = server.clone();
            Box::pin(async move {
                let backend = txn.get_database_backend();
                let greatest = match backend {
                    DbBackend::Postgres => "GREATEST",
                    _ => "MAX",
                };
                txn.execute_raw(stmt(
                    backend,
                    &format!(
                        "INSERT INTO push_cursors (server, last_seq, pushed_invocations, updated_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (server) DO UPDATE SET \
                         last_seq = {greatest}(push_cursors.last_seq, excluded.last_seq), \
                         pushed_invocations = push_cursors.pushed_invocations + excluded.pushed_invocations, \
                         updated_at = excluded.updated_at"
                    ),
                    vec![
                        Value::from(server.as_str()),
                        Value::from(last_seq.max(0)),
                        Value::from(delivered),
                        ts(backend, domain::truncate_to_micros(Utc::now())),
                    ],
                ))
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Forgets `server`'s cursor, so that the next push starts from the
    /// beginning (the server counts what it already has once).
    ///
    /// # Errors
    /// A database failure.
    pub async fn reset_push_cursor(&self, server: &str) -> Result<bool, StoreError> {
        let done = self
            .db
            .execute_raw(stmt(
                self.backend(),
                "DELETE FROM push_cursors WHERE server = $1",
                vec![Value::from(server)],
            ))
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }
}
