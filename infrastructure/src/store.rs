//! Connecting, migrating, and running write transactions with retry.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use migration::{LedgerEntry, LedgerState, Migrator, MigratorTrait};
use sea_orm::{
    AccessMode, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::{DatabaseUrl, StoreError, url::scrub};

/// What [`SkillMetricsStore::connect_with`] does about the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationMode {
    /// Apply pending migrations (after checking the applied ones' checksums).
    #[default]
    Apply,
    /// Only check: fail when a migration is pending or does not match.
    CheckOnly,
    /// Neither: for the `migrate` commands, which manage the schema themselves.
    Skip,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Where the store lives.
    pub url: DatabaseUrl,
    /// Schema handling on connect.
    pub migrations: MigrationMode,
    /// Connections in the pool (SQLite in memory always uses one).
    pub max_connections: u32,
    /// How long a write waits for other writers before reporting busy: on
    /// SQLite while the database is locked, and on both backends while a
    /// write refused as busy, locked, a serialization failure or a deadlock
    /// is retried.
    pub busy_timeout: Duration,
}

impl ConnectOptions {
    /// Defaults for `url`: apply migrations, a small pool, 5 s busy timeout.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            migrations: MigrationMode::Apply,
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The store: clone it freely, it shares one connection pool.
#[derive(Clone)]
pub struct SkillMetricsStore {
    pub(crate) db: DatabaseConnection,
    /// Where the transactions of `write` go (rebuild, balances, …): a
    /// single connection for SQLite files, else `db`. Records and batches on
    /// a SQLite file go through `direct` instead.
    pub(crate) writer: DatabaseConnection,
    pub(crate) url: Arc<DatabaseUrl>,
    /// How long writes are retried (`ConnectOptions::busy_timeout`).
    pub(crate) busy: Duration,
    /// SQLite files: the hot paths' own connections (see `direct/`).
    pub(crate) direct: Option<Arc<crate::direct::Direct>>,
    pub(crate) in_flight: Arc<crate::track::InFlight>,
    /// The connections the caller allows the store (`max_connections`; 1
    /// in memory): `verify` and `rebuild` read in two halves at once only
    /// where it is two or more (D110).
    pub(crate) read_connections: u32,
}

impl std::fmt::Debug for SkillMetricsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkillMetricsStore")
            .field("url", &self.url)
            .finish()
    }
}

pub(crate) type TxnFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Rolls back a transaction the server still has open on a pooled
/// connection that the driver counts as idle (D111). sqlx 0.9 counts a
/// PostgreSQL transaction only once its `BEGIN` has answered: a caller's
/// future dropped while it waited (a request whose client went away, say)
/// left the server's transaction open on a connection the pool hands out
/// again, where the next user's statements ran inside it, its `BEGIN`
/// became a no-op, and rows of a dropped transaction could be committed
/// by another. In a transaction `now()` is its start, before the statement's
/// own; outside one the two are the same instant.
async fn end_dangling(
    conn: &mut sea_orm::sqlx::PgConnection,
) -> Result<bool, sea_orm::sqlx::Error> {
    use sea_orm::sqlx::{Executor, Row};
    let row = conn
        .fetch_one("SELECT now() <> statement_timestamp() AS dangling")
        .await?;
    if row.try_get::<bool, _>("dangling")? {
        conn.execute("ROLLBACK").await?;
    }
    Ok(true)
}

/// The migration after which the aggregates are recomputed once.
const EXACT_SUMS_MIGRATION: &str = "m0004_exact_sums_stable_search";
/// The migration that adds the hourly rollups, filled from the log after it.
const ROLLUPS_MIGRATION: &str = "m0007_rollups";
/// The migration that bounds the per-skill maps; a map already over the
/// limit is cut after it.
const BOUNDED_MAPS_MIGRATION: &str = "m0009_bounded_maps";

impl SkillMetricsStore {
    /// Opens the store at `url` and applies pending migrations.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use infrastructure::{SkillMetricsStore, StoreError};
    ///
    /// let store = SkillMetricsStore::connect("sqlite::memory:").await?;
    /// assert!(store.metrics(&[]).await?.is_empty());
    /// // An unknown scheme is refused, and a password is never shown.
    /// let err = SkillMetricsStore::connect("mysql://me:secret@db/x").await.unwrap_err();
    /// assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    /// assert!(!err.to_string().contains("secret"));
    /// # Ok::<(), StoreError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// An unsupported URL, a connection failure, or a schema check failure
    /// (see [`SkillMetricsStore::connect_with`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(ConnectOptions::new(DatabaseUrl::parse(url)?)).await
    }

    /// Opens the store as `options` say.
    ///
    /// # Errors
    /// A connection failure; an applied migration whose checksum differs from
    /// the code's, or one this program does not know ([`StoreError::Schema`]
    /// naming the version); in [`MigrationMode::CheckOnly`], a pending migration.
    pub async fn connect_with(options: ConnectOptions) -> Result<Self, StoreError> {
        let url = options.url.clone();
        let mut opts = match &url {
            DatabaseUrl::SqliteFile(_) => {
                // The URL's own text: it percent-encodes the path, so sqlx
                // decodes it back to the path the direct connections open.
                let mut o = sea_orm::ConnectOptions::new(url.to_string());
                // A local file needs no liveness ping before each use (a round trip).
                o.max_connections(options.max_connections.max(1))
                    .test_before_acquire(false);
                o
            }
            DatabaseUrl::SqliteMemory => {
                let mut o = sea_orm::ConnectOptions::new("sqlite::memory:");
                // The database lives only while a connection to it is open:
                // one connection, never reaped for idling or age (sqlx's
                // defaults close it after 10 idle or 30 minutes, and the
                // store would come back empty), nor pinged for nothing.
                o.max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .test_before_acquire(false);
                o
            }
            DatabaseUrl::Postgres(raw) => {
                let mut o = sea_orm::ConnectOptions::new(raw.clone());
                o.max_connections(options.max_connections.max(2) * 2);
                // A connection is checked before each use, and one still
                // inside a transaction is rolled back first (D111). The
                // check replaces sqlx's own ping: one round trip either way.
                o.test_before_acquire(false);
                o.map_sqlx_postgres_before_acquire(|conn, _| Box::pin(end_dangling(conn)));
                o
            }
        };
        // What the caller allows, not the pool's size: PostgreSQL's pool is
        // twice that, for the writers.
        let read_connections = match &url {
            DatabaseUrl::SqliteMemory => 1,
            _ => options.max_connections,
        };
        let busy = options.busy_timeout;
        let in_memory = matches!(url, DatabaseUrl::SqliteMemory);
        opts.sqlx_logging(false).map_sqlx_sqlite_opts(move |o| {
            let o = o
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(busy)
                // Rows cross from sqlx's worker thread in batches this
                // large: with its default (50), reading the log in pieces
                // (D91) spent a quarter of its time switching threads.
                .row_buffer_size(4096)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                // 64 MiB of page cache per connection: the log has ten indexes, and
                // inserts touch a page of each.
                .pragma("cache_size", "-65536")
                // A file store's checkpoints run on its checkpoint thread
                // (decision D30); a connection checkpoints by itself only
                // as a backstop.
                .pragma(
                    "wal_autocheckpoint",
                    crate::direct::BACKSTOP_FRAMES.to_string(),
                );
            if in_memory {
                o
            } else {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            }
        });
        // SQLite files get one dedicated writer connection: writes serialise
        // on SQLite's lock anyway, and a connection that wrote last keeps its
        // page cache valid, where rotating over the pool re-reads pages.
        let writer_opts = matches!(url, DatabaseUrl::SqliteFile(_)).then(|| {
            let mut w = opts.clone();
            w.max_connections(1).min_connections(1);
            w
        });
        if let DatabaseUrl::Postgres(raw) = &url {
            probe_postgres(raw, &url).await?;
        }
        let db = Database::connect(opts)
            .await
            .map_err(|e| redact_err(e, &url))?;
        let writer = match writer_opts {
            Some(w) => Database::connect(w)
                .await
                .map_err(|e| redact_err(e, &url))?,
            None => db.clone(),
        };
        let mut store = Self {
            db,
            writer,
            url: Arc::new(url),
            busy,
            direct: None,
            in_flight: Arc::default(),
            read_connections,
        };
        match options.migrations {
            MigrationMode::Apply => store.migrate_up(None).await?,
            MigrationMode::CheckOnly => store.check_schema(true).await?,
            MigrationMode::Skip => {}
        }
        if let DatabaseUrl::SqliteFile(path) = store.url.as_ref() {
            // Opened after the schema exists; sqlx already put the file in WAL mode.
            store.direct = Some(Arc::new(crate::direct::Direct::open(path, busy)?));
        }
        Ok(store)
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// The store's URL (its `Display` hides any password).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The underlying Sea-ORM connection, for embedders' own queries.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Compares every applied migration with the code.
    ///
    /// # Errors
    /// Only when the database cannot be read.
    pub async fn migration_status(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        migration::verify_ledger(&self.db)
            .await
            .map_err(|e| self.err(e))
    }

    async fn check_schema(&self, pending_is_error: bool) -> Result<(), StoreError> {
        for entry in self.migration_status().await? {
            let detail = match &entry.state {
                LedgerState::Matches => continue,
                LedgerState::Pending if !pending_is_error => continue,
                LedgerState::Pending => "is not applied; run `skill-metrics migrate up`".to_owned(),
                LedgerState::Mismatch { recorded, expected } => format!(
                    "checksum mismatch: the database recorded {recorded}, this program's migration is {expected}; \
                     the migration was changed after it ran"
                ),
                LedgerState::UnknownVersion => {
                    "is applied but unknown to this program (the database is newer); upgrade skill-metrics".to_owned()
                }
            };
            return Err(StoreError::Schema {
                version: entry.version,
                detail,
            });
        }
        Ok(())
    }

    /// Applies `steps` pending migrations (all when `None`), after checking
    /// the applied ones.
    ///
    /// # Errors
    /// A checksum mismatch, or a migration that fails (it is rolled back whole).
    pub async fn migrate_up(&self, steps: Option<u32>) -> Result<(), StoreError> {
        self.check_schema(false).await?;
        self.apply_migrations(steps).await?;
        if !self.has_pending(EXACT_SUMS_MIGRATION).await? && self.has_unknown_sums().await? {
            // Version 4 marked the log's sums unknown: recompute them
            // exactly from the log. Checked on every `migrate up`, so a
            // rebuild that failed or was interrupted runs again (D37).
            let report = self.rebuild().await?;
            tracing::info!(
                invocations = report.invocations_read,
                "recomputed the aggregates in whole microseconds (migration 4)"
            );
        }
        if !self.has_pending(ROLLUPS_MIGRATION).await? && self.rollups_missing().await? {
            // Version 7 made the rollups table empty; digests are computed
            // here, so it is filled from the log by a rebuild, on every
            // `migrate up` until a rebuild has recorded that it ran (D81).
            let report = self.rebuild().await?;
            tracing::info!(
                invocations = report.invocations_read,
                rollups = report.rollups_checked,
                "filled the hourly rollups from the log (migration 7)"
            );
        }
        if !self.has_pending(BOUNDED_MAPS_MIGRATION).await? {
            self.bound_oversized_maps().await?;
        }
        Ok(())
    }

    async fn has_unknown_sums(&self) -> Result<bool, StoreError> {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let marked = entity::skill_metrics::Entity::find()
            .filter(entity::skill_metrics::Column::TotalDurationMicros.lt(0))
            .count(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(marked > 0)
    }

    async fn has_pending(&self, name: &str) -> Result<bool, StoreError> {
        Ok(Migrator::get_pending_migrations(&self.db)
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .any(|m| m.name() == name))
    }

    async fn apply_migrations(&self, steps: Option<u32>) -> Result<(), StoreError> {
        if let Err(e) = Migrator::up(&self.db, steps).await {
            // Another process may have applied the same migration at the same
            // moment; that is success if nothing is pending now.
            let pending = Migrator::get_pending_migrations(&self.db)
                .await
                .map_err(|e| self.err(e))?;
            if steps.is_some() || !pending.is_empty() {
                return Err(self.err(e));
            }
        }
        Ok(())
    }

    /// Rolls back `steps` migrations (the newest first).
    ///
    /// # Errors
    /// When a rollback fails; it is undone whole.
    pub async fn migrate_down(&self, steps: Option<u32>) -> Result<(), StoreError> {
        Migrator::down(&self.db, steps)
            .await
            .map_err(|e| self.err(e))
    }

    pub(crate) fn err(&self, e: sea_orm::DbErr) -> StoreError {
        redact_err(e, &self.url)
    }

    /// Runs `body` in a write transaction, retrying the whole transaction
    /// when the database is busy (SQLite) or reports a serialization failure
    /// or deadlock (PostgreSQL), by the store's one retry policy
    /// (`retry.rs`).
    pub(crate) async fn write<T, F>(&self, body: F) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'a> Fn(&'a DatabaseTransaction) -> TxnFuture<'a, T> + Send + Sync,
    {
        self.write_if(body, |_| true).await
    }

    /// As [`Self::write`], but commits only when `keep` says the outcome
    /// changed something; otherwise rolls back, so that a transaction that
    /// recorded nothing leaves nothing behind (not even an upsert).
    pub(crate) async fn write_if<T, F>(
        &self,
        body: F,
        keep: fn(&T) -> bool,
    ) -> Result<T, StoreError>
    where
        T: Send,
        F: for<'a> Fn(&'a DatabaseTransaction) -> TxnFuture<'a, T> + Send + Sync,
    {
        let outcome = crate::retry::retry(self.busy, || async {
            let _turn = match &self.direct {
                Some(direct) => Some(direct.write_turn().await?),
                None => None,
            };
            let txn = self.begin_write().await?;
            let value = body(&txn).await?;
            if keep(&value) {
                txn.commit().await?;
            } else {
                txn.rollback().await?;
            }
            Ok::<T, StoreError>(value)
        })
        .await;
        match outcome {
            Err(StoreError::Database(e)) => Err(self.err(e)),
            other => other,
        }
    }

    async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        let options = TransactionOptions {
            isolation_level: None,
            access_mode: Some(AccessMode::ReadWrite)
                .filter(|_| self.backend() == DbBackend::Postgres),
            // Take SQLite's write lock up front: a deferred transaction that
            // reads and then writes fails at once when another writer is active.
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        };
        let txn = self.writer.begin_with_options(options).await?;
        if self.backend() == DbBackend::Postgres {
            // A PostgreSQL write waits for a table or row lock at most as
            // long as a SQLite write waits for the database, so a writer
            // behind a rebuild or prune gives up with `StoreError::Busy`
            // (D89). Rebuild and prune lift it for their own table locks.
            sea_orm::ConnectionTrait::execute_unprepared(
                &txn,
                &format!(
                    "SET LOCAL lock_timeout = '{}ms'",
                    self.busy.as_millis().max(1)
                ),
            )
            .await?;
        }
        Ok(txn)
    }
}

/// One plain connection before the pool is built, so that an unreachable
/// server or a refused login is reported at once with the driver's reason.
/// (The pool retries a refused connection until its 30 s acquire timeout and
/// then reports only that it timed out.)
async fn probe_postgres(raw: &str, url: &DatabaseUrl) -> Result<(), StoreError> {
    use sea_orm::sqlx::Connection;
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
    const WAIT: Duration = Duration::from_secs(10);
    let fail = |detail: String| StoreError::Connect {
        url: url.to_string(),
        detail: scrub(&detail, url),
    };
    let options: PgConnectOptions = raw
        .parse()
        .map_err(|e: sea_orm::sqlx::Error| fail(e.to_string()))?;
    match tokio::time::timeout(WAIT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail(format!("no answer within {} s", WAIT.as_secs()))),
    }
}

pub(crate) fn redact_err(e: sea_orm::DbErr, url: &DatabaseUrl) -> StoreError {
    let text = e.to_string();
    let clean = scrub(&text, url);
    if clean == text {
        StoreError::Database(e)
    } else {
        StoreError::Database(sea_orm::DbErr::Custom(clean))
    }
}
