//! Moving data: export pages, session rows, SQLite backups, maintenance.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::Invocation;
use entity::{sessions, skill_invocation};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryOrder, TransactionTrait, Value,
};

use crate::rows::invocation_from_model;
use crate::sql::{log_page_sql, opt_ts, sqlite_placeholders, stmt, ts};
use crate::{DatabaseUrl, Session, SkillMetricsStore, StoreError};

/// Which invocations to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only this skill.
    pub skill: Option<String>,
    /// From this time (inclusive).
    pub since: Option<DateTime<Utc>>,
    /// Until this time (exclusive).
    pub until: Option<DateTime<Utc>>,
}

/// Where the next export page starts: after this `seq` (the log's order of
/// writing, decision D77); `None` starts at the beginning.
pub type ExportCursor = Option<i64>;

/// The statement of one export page with `filter`: the rows after a `seq`
/// (`$1`), in `seq` order, at most `$n` of them. Keyed by `seq`, each page
/// starts where the last ended on the primary key (SQLite) or its unique
/// index (PostgreSQL), so exporting the whole log reads it once.
/// Public for the query-plan test only.
#[doc(hidden)]
pub fn export_sql(filter: &ExportFilter) -> String {
    let mut sql = "seq > $1".to_owned();
    let mut n = 1;
    let conditions = [
        (filter.skill.is_some(), "skill_name ="),
        (filter.since.is_some(), "invoked_at >="),
        (filter.until.is_some(), "invoked_at <"),
    ];
    for (given, condition) in conditions {
        if given {
            n += 1;
            sql.push_str(&format!(" AND {condition} ${n}"));
        }
    }
    log_page_sql(&sql, &[("seq", "")], &format!("${}", n + 1))
}

/// One step of `maintain`.
#[derive(Debug, Clone)]
pub struct MaintenanceStep {
    /// The statement run.
    pub statement: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl SkillMetricsStore {
    /// Up to `limit` invocations after `cursor`, in the order they were
    /// written, and the cursor for the next page.
    ///
    /// # Errors
    /// A database failure.
    pub async fn export_page(
        &self,
        filter: &ExportFilter,
        cursor: &ExportCursor,
        limit: u64,
    ) -> Result<(Vec<Invocation>, ExportCursor), StoreError> {
        let models = self.log_page(filter, cursor.unwrap_or(0), limit).await?;
        let next = models.last().map_or(*cursor, |m| Some(m.seq));
        let items = models
            .into_iter()
            .map(|m| invocation_from_model(m).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        Ok((items, next))
    }

    /// Up to `limit` log rows with `filter` and a `seq` above `after`, in
    /// `seq` order: the one read behind `export`, `copy` and `push` (D77).
    /// On PostgreSQL it first waits out the transactions still writing to
    /// the log (SHARE conflicts with the ROW EXCLUSIVE lock an insert holds
    /// until it commits), so that no row with a smaller `seq` commits after
    /// a reader has passed it; the lock is held for this one read. On
    /// SQLite one transaction writes at a time, and the store's own reader
    /// connection reads the rows (sqlx copies every value first).
    pub(crate) async fn log_page(
        &self,
        filter: &ExportFilter,
        after: i64,
        limit: u64,
    ) -> Result<Vec<skill_invocation::Model>, StoreError> {
        let backend = self.backend();
        let mut values = vec![Value::from(after)];
        if let Some(skill) = &filter.skill {
            values.push(Value::from(skill.as_str()));
        }
        if let Some(since) = filter.since {
            values.push(ts(backend, since));
        }
        if let Some(until) = filter.until {
            values.push(ts(backend, until));
        }
        values.push(Value::from(limit));
        if let Some(direct) = &self.direct {
            return direct.export_page(&sqlite_placeholders(&export_sql(filter)), values);
        }
        let txn = self.db.begin().await.map_err(|e| self.err(e))?;
        if backend == DbBackend::Postgres {
            txn.execute_unprepared("LOCK TABLE skill_invocation_log IN SHARE MODE")
                .await
                .map_err(|e| self.err(e))?;
        }
        let rows = txn
            .query_all_raw(stmt(backend, &export_sql(filter), values))
            .await
            .map_err(|e| self.err(e))?;
        txn.commit().await.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| skill_invocation::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Every `sessions` row.
    ///
    /// # Errors
    /// A database failure.
    pub async fn sessions(&self) -> Result<Vec<Session>, StoreError> {
        let rows = sessions::Entity::find()
            .order_by_asc(sessions::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(Session::from_row).collect())
    }

    /// Brings `rows` into `sessions`: missing ones are created, earlier
    /// starts, known ends and projects are taken over.
    ///
    /// # Errors
    /// A database failure.
    pub async fn merge_sessions(&self, rows: &[Session]) -> Result<(), StoreError> {
        let backend = self.backend();
        for s in rows {
            let statement = stmt(
                backend,
                "INSERT INTO sessions (id, started_at, ended_at, project_path) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET \
                   started_at = CASE WHEN excluded.started_at < sessions.started_at THEN excluded.started_at ELSE sessions.started_at END, \
                   ended_at = COALESCE(excluded.ended_at, sessions.ended_at), \
                   project_path = COALESCE(sessions.project_path, excluded.project_path)",
                vec![
                    Value::from(s.id.as_str()),
                    ts(backend, s.started_at),
                    opt_ts(backend, s.ended_at),
                    Value::from(s.project_path.clone()),
                ],
            );
            self.db
                .execute_raw(statement)
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Copies everything committed so far into the SQLite database file and
    /// returns once it is there, so that the file holds the whole store by
    /// itself. A store on a SQLite file does this on a thread of its own as
    /// its write-ahead log grows (decision D30); call this before handing the
    /// file to something that ignores the log, or to time reads on a settled
    /// store. Other stores have nothing to do.
    ///
    /// # Errors
    /// When other connections (a long read, another process writing or
    /// checkpointing) kept part of the log from being copied for longer than
    /// the busy timeout, or on a database failure.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.direct {
            Some(direct) => direct.checkpoint().await,
            None => Ok(()),
        }
    }

    /// Writes a consistent snapshot of a SQLite store to `path` while writers
    /// keep writing (`VACUUM INTO`); the copy is a complete store.
    ///
    /// # Errors
    /// On PostgreSQL (use `pg_dump`), when `path` exists, or on a database failure.
    pub async fn backup(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if !self.url.is_sqlite() || matches!(*self.url, DatabaseUrl::SqliteMemory) {
            return Err(StoreError::Unsupported {
                what: "backup of this store".into(),
                hint: "for PostgreSQL use `pg_dump --format=custom --file=FILE URL` and `pg_restore --dbname=URL FILE` (see the README)".into(),
            });
        }
        if path.exists() {
            return Err(StoreError::Invalid(domain::ValidationError::new(
                "FILE",
                format!("{} already exists", path.display()),
            )));
        }
        let target = path.to_string_lossy().replace('\'', "''");
        self.db
            .execute_unprepared(&format!("VACUUM INTO '{target}'"))
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Refreshes planner statistics and indexes: `ANALYZE`, `REINDEX` and
    /// `PRAGMA optimize` on SQLite, `ANALYZE` on PostgreSQL.
    ///
    /// # Errors
    /// A database failure.
    pub async fn maintain(&self) -> Result<Vec<MaintenanceStep>, StoreError> {
        let statements: &[&str] = match self.backend() {
            DbBackend::Postgres => &["ANALYZE"],
            _ => &["ANALYZE", "REINDEX", "PRAGMA optimize"],
        };
        let mut steps = Vec::new();
        for sql in statements {
            let started = Instant::now();
            self.db
                .execute_unprepared(sql)
                .await
                .map_err(|e| self.err(e))?;
            steps.push(MaintenanceStep {
                statement: (*sql).to_owned(),
                elapsed: started.elapsed(),
            });
        }
        Ok(steps)
    }
}
