//! Moving data: export pages, session rows, SQLite backups, maintenance.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use domain::Invocation;
use entity::{sessions, skill_invocation};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Value,
};

use crate::rows::invocation_from_model;
use crate::sql::{opt_ts, stmt, ts};
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

/// Where the next export page starts: after this `(invoked_at, id)`.
pub type ExportCursor = Option<(DateTime<Utc>, String)>;

/// One step of `maintain`.
#[derive(Debug, Clone)]
pub struct MaintenanceStep {
    /// The statement run.
    pub statement: String,
    /// How long it took.
    pub elapsed: Duration,
}

impl SkillMetricsStore {
    /// Up to `limit` invocations after `cursor`, oldest first (by
    /// `invoked_at`, then id), and the cursor for the next page.
    ///
    /// # Errors
    /// A database failure.
    pub async fn export_page(
        &self,
        filter: &ExportFilter,
        cursor: &ExportCursor,
        limit: u64,
    ) -> Result<(Vec<Invocation>, ExportCursor), StoreError> {
        use skill_invocation::Column as C;
        let backend = self.backend();
        let mut query = skill_invocation::Entity::find()
            .order_by_asc(C::InvokedAt)
            .order_by_asc(C::Id)
            .limit(limit);
        if let Some(skill) = &filter.skill {
            query = query.filter(C::SkillName.eq(skill.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(C::InvokedAt.gte(ts(backend, since)));
        }
        if let Some(until) = filter.until {
            query = query.filter(C::InvokedAt.lt(ts(backend, until)));
        }
        if let Some((at, id)) = cursor {
            query = query.filter(
                Condition::any().add(C::InvokedAt.gt(ts(backend, *at))).add(
                    Condition::all()
                        .add(C::InvokedAt.eq(ts(backend, *at)))
                        .add(C::Id.gt(id.as_str())),
                ),
            );
        }
        let models = query.all(&self.db).await.map_err(|e| self.err(e))?;
        let next = models.last().map(|m| (m.invoked_at, m.id.clone()));
        let items = models
            .into_iter()
            .map(|m| invocation_from_model(m).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        Ok((items, next))
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
