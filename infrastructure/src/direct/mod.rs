//! SQLite files: the two hot paths, `record` and `metrics`, on connections
//! of the store's own (rusqlite, over the same bundled SQLite as sqlx) that
//! keep their prepared statements between calls and run on the caller's
//! thread.
//!
//! Why not sqlx here: its SQLite driver runs every statement on a thread of
//! its own and sends each result and each row back, a thread wake-up per
//! hand-off. On this machine class a wake-up of an idle thread costs tens to
//! hundreds of microseconds, more than SQLite needs to read all metrics
//! rows; BENCHMARKS.md has the figures. Here a call does its SQLite work in
//! place: a read ~0.01 ms (one skill) to ~0.3 ms (50), a record the time of
//! its commit.
//!
//! Nothing waits inside SQLite: the writer's busy timeout is zero, and a
//! busy database is retried by the store's one retry policy (`retry.rs`),
//! with short async sleeps until the store's busy timeout has passed, so a
//! runtime thread is never parked on another process's lock. Readers in WAL
//! mode are not blocked by writers.
//!
//! Checkpoints (copying the write-ahead log into the database file, with its
//! two `fsync`s) run on a thread of their own, not after a commit on the
//! writer's (decision D30); every connection keeps SQLite's automatic
//! checkpoint only as a backstop, at 50,000 log pages.
//!
//! The SQL is the shared write path's (`write.rs`), bound from the same
//! values, so both paths write identical rows; the tests run every scenario
//! on a SQLite file (this path) and on PostgreSQL (the general path).
//!
//! Here: the connections and the calls the store makes. Beside it:
//! `transaction` (one write transaction), `checkpoint` (the thread),
//! `values` (binding values and decoding rows).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use domain::Invocation;
use entity::{skill_invocation, skill_metrics};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use sea_orm::DbErr;

use crate::StoreError;
use crate::error::from_rusqlite as db_err;
use crate::retry::{Backoff, retry};
use crate::write::{BatchOutcome, Piece};

mod checkpoint;
mod transaction;
mod values;
pub(crate) use values::{bindings, json_at, required_timestamp_at, uuid_at};

pub(crate) use checkpoint::BACKSTOP_FRAMES;
use checkpoint::{Checkpointer, PLAN, wal_checkpoint};
use transaction::{apply, execute};
use values::{SELECT_METRICS, log_row, metrics_row};

/// Readers kept per store: concurrent reads take the first free one.
const READERS: usize = 2;

/// The reader and writer connections of one store.
pub(crate) struct Direct {
    /// Declared first, so it stops before the connections close.
    checkpointer: Checkpointer,
    readers: Vec<Mutex<Connection>>,
    /// An async lock: writers of this process queue without holding a thread.
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// How long a write keeps retrying a busy database.
    busy: Duration,
    /// The file, for connections of a long read's own (`long_reader`).
    path: String,
}

impl Direct {
    /// Opens the connections on the (already migrated) file at `path`.
    pub(crate) fn open(path: &str, busy: Duration) -> Result<Self, StoreError> {
        let readers = (0..READERS)
            .map(|_| open(path, busy, true).map(Mutex::new))
            .collect::<Result<_, _>>()?;
        let writer = open(path, Duration::ZERO, false)?;
        // Statement journals stay in memory: one event's insert touches more
        // than the 64 KiB after which SQLite would otherwise move its
        // statement journal into a temporary file, created and deleted at
        // every commit (decision D31).
        writer
            .execute_batch("PRAGMA temp_store = MEMORY")
            .map_err(db_err)?;
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let checkpointer =
            Checkpointer::start(open(path, busy, false)?, Arc::clone(&writer), PLAN)?;
        Ok(Self {
            checkpointer,
            readers,
            writer,
            busy,
            path: path.to_owned(),
        })
    }

    /// This process's turn to write: held by the store's other write path
    /// too, so that the process's writers queue in order for SQLite's one
    /// write lock instead of polling for it, where a busy writer could starve
    /// the others past their timeout.
    /// It waits at most the busy timeout, then gives up with
    /// [`StoreError::Busy`] (D89).
    pub(crate) async fn write_turn(
        &self,
    ) -> Result<tokio::sync::OwnedMutexGuard<Connection>, StoreError> {
        tokio::time::timeout(self.busy, Arc::clone(&self.writer).lock_owned())
            .await
            .map_err(|_| StoreError::Busy {
                seconds: self.busy.as_secs_f64().ceil() as u64,
            })
    }

    /// Records one invocation in its own immediate transaction, on the
    /// caller's thread (a commit is shorter than a hand-off to another).
    pub(crate) async fn record(&self, inv: Invocation) -> Result<BatchOutcome, StoreError> {
        let batch = [inv];
        let outcome = retry(self.busy, || async {
            let mut conn = self.write_turn().await?;
            apply(&mut conn, &batch)
        })
        .await?;
        self.checkpointer.nudge();
        Ok(outcome)
    }

    /// Records a batch in one immediate transaction, on a blocking thread:
    /// a large batch must not hold a runtime thread.
    pub(crate) async fn record_batch(
        &self,
        batch: Vec<Invocation>,
    ) -> Result<BatchOutcome, StoreError> {
        let batch = Arc::new(batch);
        let outcome = retry(self.busy, || async {
            let mut conn = self.write_turn().await?;
            let batch = Arc::clone(&batch);
            match tokio::task::spawn_blocking(move || apply(&mut conn, &batch)).await {
                Ok(done) => done,
                // A panic in `apply` is a bug: let it surface as one.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(StoreError::Database(DbErr::Custom(
                    "the batch was cancelled: the runtime is shutting down".to_owned(),
                ))),
            }
        })
        .await?;
        self.checkpointer.nudge();
        Ok(outcome)
    }

    /// Copies everything committed so far into the database file and
    /// returns once it is there, retrying while another checkpoint runs, a
    /// reader still needs part of the log or another process keeps adding
    /// to it, for at most the busy timeout.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        let mut backoff = Backoff::new(self.busy);
        loop {
            let conn = Arc::clone(&self.writer).lock_owned().await;
            let pass = tokio::task::spawn_blocking(move || wal_checkpoint(&conn, "PASSIVE"))
                .await
                .map_err(|e| StoreError::Database(DbErr::Custom(format!("checkpoint: {e}"))))?
                .map_err(db_err)?;
            if !pass.busy && pass.log == pass.copied {
                return Ok(());
            }
            if !backoff.pause().await {
                return Err(StoreError::Database(DbErr::Custom(format!(
                    "checkpoint incomplete after {:?}: {} (other connections kept reading, \
                     writing or checkpointing)",
                    self.busy,
                    if pass.busy {
                        "another checkpoint was running".to_owned()
                    } else {
                        format!("{} of {} log frames copied", pass.copied, pass.log)
                    }
                ))));
            }
        }
    }

    /// One export page (`data::export_sql`, with `?` placeholders) on a
    /// reader connection: rusqlite reads the rows without copying every
    /// value first, as sqlx does, which is most of an export's cost.
    pub(crate) fn export_page(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Vec<skill_invocation::Model>, StoreError> {
        let conn = self.reader();
        let read = || {
            let mut st = conn.prepare_cached(sql)?;
            let rows = st.query_map(params_from_iter(bindings(values)?), log_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        };
        read().map_err(db_err)
    }

    /// `readers` connections of their own, each in a read transaction, for
    /// the rows of a long read (`verify`: D91, one per half read at once,
    /// D110), where sqlx's hand-off of every row to another thread was most
    /// of the cost. `start` must start the snapshots of the caller's own
    /// read transactions on the general connections, begun beforehand (so
    /// that no connection is waited for here): all start while this process
    /// holds its write turn and SQLite's write lock, so no commit falls
    /// between them and all read the same state of the store. Writers wait
    /// for the time it takes to start them. When another process holds the
    /// write lock right now, nothing is waited for: `start` runs alone and
    /// no reader is opened (the caller reads everything through one
    /// transaction of its own).
    ///
    /// # Errors
    /// A database failure, or this process's writers kept the write turn
    /// for the busy timeout.
    pub(crate) async fn long_reader(
        &self,
        start: impl Future<Output = Result<(), StoreError>>,
        readers: usize,
    ) -> Result<Vec<Connection>, StoreError> {
        // Held in an `Open`: should the caller's future be dropped while
        // the snapshots start, the writer still rolls back and is let go.
        let turn = Open(self.write_turn().await?);
        // The writer's busy timeout is zero: no thread waits here.
        if turn.0.execute_batch("BEGIN IMMEDIATE").is_err() {
            drop(turn);
            start.await?;
            return Ok(Vec::new());
        }
        let started = start.await;
        let opened = started.and_then(|()| {
            (0..readers)
                .map(|_| self.reader_in_transaction())
                .collect::<Result<Vec<_>, _>>()
        });
        turn.0.execute_batch("ROLLBACK").map_err(db_err)?;
        opened
    }

    /// A write transaction on the store's writer connection that may span
    /// awaits (`rebuild` on a SQLite file): this process's write turn and
    /// SQLite's write lock, taken now (a busy database is an error the
    /// caller retries), held until [`LongWrite::commit`]; dropped before,
    /// it rolls back.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when this process's writers kept the turn for
    /// the busy timeout, or a database failure (another process writing).
    pub(crate) async fn long_write(&self) -> Result<LongWrite, StoreError> {
        let conn = self.write_turn().await?;
        // The writer's busy timeout is zero: no thread waits here.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        Ok(LongWrite {
            open: Some(Open(conn)),
        })
    }

    /// Tells the checkpoint thread the log grew (after a [`LongWrite`]
    /// committed).
    pub(crate) fn nudge(&self) {
        self.checkpointer.nudge();
    }

    /// A reader connection of its own, in a read transaction that has
    /// started its snapshot: for a long read inside a write transaction
    /// that already holds the write lock (`rebuild`), which sees the same
    /// log.
    pub(crate) fn reader_in_transaction(&self) -> Result<Connection, StoreError> {
        let reader = open(&self.path, self.busy, true)?;
        // The log is read through its indexes, a row here and there: pages
        // mapped in are read without a copy each, and the map is let go
        // with the connection.
        reader
            .execute_batch("PRAGMA mmap_size = 1073741824; BEGIN")
            .map_err(db_err)?;
        // The snapshot starts with the first read.
        reader
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM skill_invocation_log LIMIT 1)",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(db_err)?;
        Ok(reader)
    }

    /// A reader connection: a free one, else the first when it is free.
    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.readers
            .iter()
            .find_map(|r| r.try_lock().ok())
            .unwrap_or_else(|| {
                self.readers[0]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            })
    }

    /// The metrics rows of `names` (all when empty), ordered by name.
    pub(crate) fn metrics(&self, names: &[&str]) -> Result<Vec<skill_metrics::Model>, StoreError> {
        let conn = self.reader();
        let sql = if names.is_empty() {
            format!("{} ORDER BY skill_name", *SELECT_METRICS)
        } else {
            format!(
                "{} WHERE skill_name IN ({}) ORDER BY skill_name",
                *SELECT_METRICS,
                vec!["?"; names.len()].join(", ")
            )
        };
        let read = || {
            let mut st = conn.prepare_cached(&sql)?;
            let rows = st.query_map(params_from_iter(names.iter()), metrics_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        };
        read().map_err(db_err)
    }
}

/// A write transaction of [`Direct::long_write`]. Its statements run on a
/// blocking thread (a piece's writes can take tens of milliseconds), never
/// on the caller's runtime thread.
pub(crate) struct LongWrite {
    /// `None` only while a batch of statements runs, or after a failure
    /// lost it (then it has rolled back).
    open: Option<Open>,
}

/// The writer connection in a transaction of [`Direct::long_write`]:
/// dropped uncommitted (an error, the caller's future dropped, a panic), it
/// rolls back, so nothing of it stays and the next writer finds the
/// connection idle.
struct Open(tokio::sync::OwnedMutexGuard<Connection>);

impl Drop for Open {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl LongWrite {
    /// Runs statements (`$n` placeholders, as the shared write path's) in
    /// the transaction.
    pub(crate) async fn run(&mut self, pieces: Vec<Piece>) -> Result<(), StoreError> {
        let open = self.open.take().ok_or_else(|| {
            StoreError::Database(DbErr::Custom(
                "the write transaction ended at an earlier failure".to_owned(),
            ))
        })?;
        let ran = tokio::task::spawn_blocking(move || {
            let done = pieces
                .into_iter()
                .try_for_each(|piece| execute(&open.0, piece))
                .map_err(db_err);
            (open, done)
        })
        .await;
        match ran {
            Ok((open, done)) => {
                self.open = Some(open);
                done
            }
            // A panic in a statement's binding is a bug: let it surface.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(StoreError::Database(DbErr::Custom(
                "the write was cancelled: the runtime is shutting down".to_owned(),
            ))),
        }
    }

    /// Commits (on a blocking thread too: a commit writes out the pages
    /// still in the connection's cache).
    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        self.run(vec![("COMMIT".to_owned(), Vec::new())]).await
    }
}

pub(super) fn open(path: &str, busy: Duration, reader: bool) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(busy).map_err(db_err)?;
    // The production settings, as the sqlx connections have them.
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = {BACKSTOP_FRAMES};"
    ))
    .map_err(db_err)?;
    if reader {
        conn.execute_batch("PRAGMA query_only = ON")
            .map_err(db_err)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
