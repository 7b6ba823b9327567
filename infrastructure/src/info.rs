//! What a store is and what it holds, cheaply: `skill-metrics info`.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;

use crate::{DatabaseUrl, SkillMetricsStore, StoreError};

/// Where a store is, how big it is and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreInfo {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The store's URL, any password hidden.
    pub url: String,
    /// The SQLite file, when the store is one.
    pub path: Option<String>,
    /// Bytes on disk: the SQLite file with its write-ahead log, or the
    /// PostgreSQL database. `None` for an in-memory store.
    pub size_bytes: Option<u64>,
    /// The newest applied schema version.
    pub schema_version: Option<i64>,
    /// Invocations counted in the metrics (legacy opening balances included).
    pub invocations: i64,
    /// Of which from legacy opening balances.
    pub balance_invocations: i64,
    /// Skills with metrics.
    pub skills: i64,
    /// Sessions.
    pub sessions: i64,
    /// The earliest invocation.
    pub first_invoked: Option<DateTime<Utc>>,
    /// The latest invocation.
    pub last_invoked: Option<DateTime<Utc>>,
}

/// The space one table or index takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageUse {
    /// Its name (SQLite's full-text index is several shadow tables).
    pub name: String,
    /// `table` or `index`.
    pub kind: &'static str,
    /// The table it belongs to (itself, for a table).
    pub table: String,
    /// Bytes: SQLite's pages of it (`dbstat`); PostgreSQL's
    /// `pg_table_size` (heap and TOAST) or, for an index, `pg_relation_size`.
    pub bytes: u64,
}

fn file_size(path: &str) -> Option<u64> {
    let main = std::fs::metadata(path).ok()?.len();
    let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    Some(main + wal)
}

impl SkillMetricsStore {
    /// The store's location, size and counts. Reads only the per-skill
    /// metrics, the sessions and the ledger, never the log, so it costs the
    /// same on any size of store.
    ///
    /// # Errors
    /// A database failure.
    pub async fn info(&self) -> Result<StoreInfo, StoreError> {
        let backend = self.backend();
        let one = |sql: &str| Statement::from_string(backend, sql.to_owned());
        // One row per skill: small, and independent of the log's length.
        let metrics = self.metrics(&[]).await?;
        let invocations = metrics.iter().map(|m| m.total_invocations).sum();
        let skills = i64::try_from(metrics.len()).unwrap_or(i64::MAX);
        let first_invoked = metrics.iter().filter_map(|m| m.first_invoked).min();
        let last_invoked = metrics.iter().filter_map(|m| m.last_invoked).max();
        let count = |sql: &'static str| async move {
            self.db
                .query_one_raw(one(sql))
                .await
                .map_err(|e| self.err(e))?
                .map_or(Ok(0), |r| r.try_get_by_index::<i64>(0))
                .map_err(|e| self.err(e))
        };
        let sessions = count("SELECT COUNT(*) FROM sessions").await?;
        let balance_invocations = count(
            "SELECT CAST(COALESCE(SUM(total_invocations), 0) AS BIGINT) FROM skill_metrics_balance",
        )
        .await?;
        let schema_version = self
            .migration_status()
            .await?
            .iter()
            .filter(|e| e.applied_at.is_some())
            .map(|e| e.version)
            .max();
        let (path, size_bytes) = match self.url() {
            DatabaseUrl::SqliteFile(path) => (Some(path.clone()), file_size(path)),
            DatabaseUrl::SqliteMemory => (None, None),
            DatabaseUrl::Postgres(_) => (
                None,
                count("SELECT pg_database_size(current_database())")
                    .await
                    .ok()
                    .and_then(|n| u64::try_from(n).ok()),
            ),
        };
        Ok(StoreInfo {
            backend: if self.url().is_sqlite() {
                "sqlite"
            } else {
                "postgres"
            },
            url: self.url().to_string(),
            path,
            size_bytes,
            schema_version,
            invocations,
            balance_invocations,
            skills,
            sessions,
            first_invoked,
            last_invoked,
        })
    }

    /// Every table and index of the store with the bytes it takes, largest
    /// first. Reads every page on SQLite (`dbstat`), so it costs in
    /// proportion to the store's size, unlike [`Self::info`].
    ///
    /// # Errors
    /// A database failure.
    pub async fn storage(&self) -> Result<Vec<StorageUse>, StoreError> {
        let backend = self.backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "SELECT c.relname AS name, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind, \
                   COALESCE(t.relname, c.relname) AS tbl, \
                   CAST(CASE c.relkind WHEN 'i' THEN pg_relation_size(c.oid) ELSE pg_table_size(c.oid) END AS BIGINT) AS bytes \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_index x ON x.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = x.indrelid \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') \
                 ORDER BY bytes DESC, name"
            }
            _ => {
                "SELECT s.name AS name, CASE m.type WHEN 'index' THEN 'index' ELSE 'table' END AS kind, \
                   COALESCE(m.tbl_name, s.name) AS tbl, CAST(SUM(s.pgsize) AS INTEGER) AS bytes \
                 FROM dbstat s LEFT JOIN sqlite_master m ON m.name = s.name \
                 GROUP BY s.name ORDER BY bytes DESC, s.name"
            }
        };
        let rows = self
            .db
            .query_all_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("", "kind").map_err(|e| self.err(e))?;
                let bytes: i64 = r.try_get("", "bytes").map_err(|e| self.err(e))?;
                Ok(StorageUse {
                    name: r.try_get("", "name").map_err(|e| self.err(e))?,
                    kind: if kind == "index" { "index" } else { "table" },
                    table: r.try_get("", "tbl").map_err(|e| self.err(e))?,
                    bytes: u64::try_from(bytes).unwrap_or(0),
                })
            })
            .collect()
    }
}
