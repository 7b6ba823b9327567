//! The design's `schema_migrations` ledger, kept beside Sea-ORM's own table.

use std::time::Instant;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TryGetable};
use sha2::{Digest, Sha256};

use crate::timestamp_value;

/// A migration defined as SQL statements per backend.
#[derive(Clone)]
pub struct SqlMigration {
    /// Ledger version, 1, 2, ...
    pub version: i64,
    /// Sea-ORM's migration name (`m0001_initial_schema`).
    pub name: &'static str,
    /// What it does, as written to the ledger.
    pub description: &'static str,
    /// Forward statements.
    pub up: fn(DbBackend) -> Vec<String>,
    /// Rollback statements.
    pub down: fn(DbBackend) -> Vec<String>,
}

impl SqlMigration {
    /// SHA-256 of the migration's definition on `backend`: its version,
    /// description, forward and rollback SQL.
    pub fn checksum(&self, backend: DbBackend) -> String {
        let mut h = Sha256::new();
        h.update(self.version.to_le_bytes());
        h.update(self.description.as_bytes());
        for part in [(self.up)(backend), (self.down)(backend)] {
            h.update(b"\x00section");
            for stmt in part {
                h.update(b"\x00");
                h.update(stmt.as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    fn rollback_sql(&self, backend: DbBackend) -> String {
        (self.down)(backend).join(";\n") + ";"
    }
}

/// On SQLite, brings the connection's copy of the schema up to date before
/// a migration's statements are parsed. Each step may run on another
/// pooled connection, whose copy is checked only when a statement reads
/// the database: a DDL statement parsed against a stale copy fails when a
/// step before it turned a table into a view or back (version 19: "views
/// may not be indexed"). One read of `sqlite_schema` makes SQLite notice
/// the change and load it again.
async fn refresh_schema<C: ConnectionTrait>(db: &C, backend: DbBackend) -> Result<(), DbErr> {
    if backend == DbBackend::Sqlite {
        db.execute_unprepared("SELECT count(*) FROM sqlite_schema")
            .await?;
    }
    Ok(())
}

impl MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let started = Instant::now();
        refresh_schema(db, backend).await?;
        for stmt in (self.up)(backend) {
            db.execute_unprepared(&stmt).await.map_err(|e| {
                DbErr::Migration(format!(
                    "migration {} failed: {e}\nstatement: {stmt}",
                    self.version
                ))
            })?;
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO schema_migrations (version, applied_at, description, checksum, rollback_sql, migration_time_ms) VALUES ($1, $2, $3, $4, $5, $6)"
            }
            _ => {
                "INSERT INTO schema_migrations (version, applied_at, description, checksum, rollback_sql, migration_time_ms) VALUES (?, ?, ?, ?, ?, ?)"
            }
        };
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                self.version.into(),
                timestamp_value(backend, chrono::Utc::now()),
                self.description.into(),
                self.checksum(backend).into(),
                self.rollback_sql(backend).into(),
                elapsed_ms.into(),
            ],
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        refresh_schema(db, backend).await?;
        for stmt in (self.down)(backend) {
            db.execute_unprepared(&stmt).await.map_err(|e| {
                DbErr::Migration(format!(
                    "rollback of {} failed: {e}\nstatement: {stmt}",
                    self.version
                ))
            })?;
        }
        if self.version > 1 {
            // Version 1's rollback drops the ledger itself.
            db.execute_unprepared(&format!(
                "DELETE FROM schema_migrations WHERE version = {}",
                self.version
            ))
            .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        // DDL is transactional on both backends: a failed migration leaves nothing behind.
        Some(true)
    }
}

/// How an applied migration compares with the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerState {
    /// The checksum in the ledger is the code's.
    Matches,
    /// The ledger holds another checksum: the migration was edited after it ran.
    Mismatch {
        /// What the ledger says.
        recorded: String,
        /// What the code computes.
        expected: String,
    },
    /// The ledger names a version this program does not know (a newer program ran).
    UnknownVersion,
    /// The code has this migration but it has not been applied.
    Pending,
}

/// One row of the ledger compared with the code.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    /// Migration version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// When it was applied (RFC 3339), if it was.
    pub applied_at: Option<String>,
    /// How long it took, in milliseconds.
    pub migration_time_ms: Option<f64>,
    /// Checksum state.
    pub state: LedgerState,
}

async fn ledger_exists(db: &impl ConnectionTrait) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
        }
        _ => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        > 0)
}

/// Compares the ledger with the code: one entry per version known to either.
///
/// # Errors
/// Only when the database cannot be read.
pub async fn verify_ledger(db: &impl ConnectionTrait) -> Result<Vec<LedgerEntry>, DbErr> {
    let backend = db.get_database_backend();
    let mut rows = Vec::new();
    if ledger_exists(db).await? {
        let applied = match backend {
            DbBackend::Postgres => {
                "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
            }
            _ => "applied_at",
        };
        let sql = format!(
            "SELECT CAST(version AS BIGINT) AS version, description, checksum, {applied} AS applied_at, migration_time_ms FROM schema_migrations ORDER BY version"
        );
        for r in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await?
        {
            rows.push((
                get::<i64>(&r, "version")?,
                get::<String>(&r, "description")?,
                get::<Option<String>>(&r, "checksum")?.unwrap_or_default(),
                get::<Option<String>>(&r, "applied_at")?,
                get::<Option<f64>>(&r, "migration_time_ms")?,
            ));
        }
    }
    let mut out = Vec::new();
    for m in crate::all() {
        let expected = m.checksum(backend);
        let entry = match rows.iter().find(|r| r.0 == m.version) {
            Some((version, description, recorded, applied_at, ms)) => LedgerEntry {
                version: *version,
                description: description.clone(),
                applied_at: applied_at.clone(),
                migration_time_ms: *ms,
                state: if *recorded == expected {
                    LedgerState::Matches
                } else {
                    LedgerState::Mismatch {
                        recorded: recorded.clone(),
                        expected,
                    }
                },
            },
            None => LedgerEntry {
                version: m.version,
                description: m.description.to_owned(),
                applied_at: None,
                migration_time_ms: None,
                state: LedgerState::Pending,
            },
        };
        out.push(entry);
    }
    for (version, description, _, applied_at, ms) in rows {
        if !crate::all().iter().any(|m| m.version == version) {
            out.push(LedgerEntry {
                version,
                description,
                applied_at,
                migration_time_ms: ms,
                state: LedgerState::UnknownVersion,
            });
        }
    }
    Ok(out)
}

fn get<T: TryGetable>(
    row: &sea_orm_migration::sea_orm::QueryResult,
    col: &str,
) -> Result<T, DbErr> {
    row.try_get::<T>("", col)
}
