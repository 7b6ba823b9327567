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
//! busy database is retried here with short async sleeps until the store's
//! busy timeout has passed, so a runtime thread is never parked on another
//! process's lock. Readers in WAL mode are not blocked by writers.
//!
//! Checkpoints (copying the write-ahead log into the database file, with its
//! two `fsync`s) run on a thread of their own, not after a commit on the
//! writer's (decision D30); every connection keeps SQLite's automatic
//! checkpoint only as a backstop, at 50,000 log pages.
//!
//! The SQL is the shared write path's (`write.rs`), bound from the same
//! values, so both paths write identical rows; the tests run every scenario
//! on a SQLite file (this path) and on PostgreSQL (the general path).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use domain::Invocation;
use entity::skill_metrics;
use rusqlite::types::{Type, Value as Sql};
use rusqlite::{Connection, OpenFlags, Row, TransactionBehavior, params_from_iter};
use sea_orm::{DbBackend, DbErr, Value};

use crate::StoreError;
use crate::rows::{aggregate_from_model, merge_skill};
use crate::sql::sqlite_placeholders;
use crate::write::{
    BatchOutcome, METRICS_COLS, Piece, distinct, fold_new, log_sql, metrics_sql,
    session_skills_sql, sessions_sql, settle,
};

/// `SELECT` of every `skill_metrics` column in `METRICS_COLS` order, the
/// order `metrics_row` decodes.
static SELECT_METRICS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM skill_metrics", METRICS_COLS.join(", ")));
static SELECT_ONE_METRICS: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE skill_name = ?", *SELECT_METRICS));

/// Readers kept per store: concurrent reads take the first free one.
const READERS: usize = 2;

/// When the checkpoint thread copies the log into the database file, in
/// log frames (pages).
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Frames not yet in the database file that start a copy: SQLite's
    /// `wal_autocheckpoint` as the store sets it.
    copy_at: i64,
    /// Log size at which the thread, holding this store's writer for a
    /// moment, copies the rest, so that the next commit starts the log
    /// again from its beginning (SQLite restarts a log only once all of it
    /// is in the database file).
    restart_at: i64,
    /// Frames left for that last pass: copies without the writer repeat,
    /// each taking what the previous one left, until at most this many are;
    /// if more are left after `passes`, the restart waits for a later round.
    tail: i64,
    /// Passes without the writer, at most, before the one with it.
    passes: usize,
    /// How long commits gather before the thread looks at the log again.
    pause: Duration,
}

const PLAN: Plan = Plan {
    copy_at: 10_000,
    restart_at: 30_000,
    tail: 1_000,
    passes: 4,
    pause: Duration::from_millis(10),
};

/// SQLite's automatic checkpoint, on every connection of a store on a file:
/// a backstop for when the thread falls behind (another process writing
/// without pause, a long reader, a restart pass skipped).
pub(crate) const BACKSTOP_FRAMES: i64 = 5 * PLAN.copy_at;

/// The reader and writer connections of one store.
pub(crate) struct Direct {
    /// Declared first, so it stops before the connections close.
    checkpointer: Checkpointer,
    readers: Vec<Mutex<Connection>>,
    /// An async lock: writers of this process queue without holding a thread.
    writer: Arc<tokio::sync::Mutex<Connection>>,
    /// How long a write keeps retrying a busy database.
    busy: Duration,
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
        })
    }

    /// Records one invocation in its own immediate transaction, on the
    /// caller's thread (a commit is shorter than a hand-off to another).
    pub(crate) async fn record(&self, inv: Invocation) -> Result<BatchOutcome, StoreError> {
        let batch = [inv];
        let outcome = self
            .retry_busy(|| async {
                let mut conn = self.writer.lock().await;
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
        let outcome = self
            .retry_busy(|| async {
                let mut conn = Arc::clone(&self.writer).lock_owned().await;
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
        let deadline = Instant::now() + self.busy;
        loop {
            let conn = Arc::clone(&self.writer).lock_owned().await;
            let pass = tokio::task::spawn_blocking(move || wal_checkpoint(&conn, "PASSIVE"))
                .await
                .map_err(|e| StoreError::Database(DbErr::Custom(format!("checkpoint: {e}"))))?
                .map_err(db_err)?;
            if !pass.busy && pass.log == pass.copied {
                return Ok(());
            }
            if Instant::now() >= deadline {
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
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Runs `attempt` until it is not refused as busy, sleeping briefly
    /// between tries, for at most the store's busy timeout.
    async fn retry_busy<R, F, Fut>(&self, attempt: F) -> Result<R, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<R, StoreError>>,
    {
        let deadline = Instant::now() + self.busy;
        let mut pause = Duration::from_millis(1);
        loop {
            match attempt().await {
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    let jitter = Duration::from_micros(rand::random::<u64>() % 1000);
                    tokio::time::sleep(pause + jitter).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// The metrics rows of `names` (all when empty), ordered by name.
    pub(crate) fn metrics(&self, names: &[&str]) -> Result<Vec<skill_metrics::Model>, StoreError> {
        let conn = self
            .readers
            .iter()
            .find_map(|r| r.try_lock().ok())
            .unwrap_or_else(|| {
                self.readers[0]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
            });
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

/// The thread that checkpoints one store's log, and how to reach it.
struct Checkpointer {
    signals: Arc<Signals>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Signals {
    /// Set by a commit, cleared by the thread when it looks at the log.
    committed: AtomicBool,
    stop: AtomicBool,
}

impl Checkpointer {
    fn start(
        conn: Connection,
        writer: Arc<tokio::sync::Mutex<Connection>>,
        plan: Plan,
    ) -> Result<Self, StoreError> {
        let signals = Arc::new(Signals::default());
        let theirs = Arc::clone(&signals);
        let thread = std::thread::Builder::new()
            .name("skill-metrics-checkpoint".to_owned())
            .spawn(move || checkpoint_loop(&conn, &writer, &theirs, plan))
            .map_err(|e| {
                StoreError::Database(DbErr::Custom(format!(
                    "could not start the checkpoint thread: {e}"
                )))
            })?;
        Ok(Self {
            signals,
            thread: Some(thread),
        })
    }

    /// Tells the thread that the log grew; costs an atomic swap unless the
    /// thread is asleep waiting for it.
    fn nudge(&self) {
        if !self.signals.committed.swap(true, Ordering::AcqRel)
            && let Some(t) = &self.thread
        {
            t.thread().unpark();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.signals.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // The loop cannot panic on its own; a panic already reported itself.
            let _ = t.join();
        }
    }
}

/// Waits for commits and copies the log into the database file as `plan`
/// says, mostly while the writer goes on.
fn checkpoint_loop(
    conn: &Connection,
    writer: &tokio::sync::Mutex<Connection>,
    signals: &Signals,
    plan: Plan,
) {
    loop {
        while !signals.committed.swap(false, Ordering::AcqRel) {
            if signals.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::park();
        }
        if signals.stop.load(Ordering::Acquire) {
            return;
        }
        let step = || -> rusqlite::Result<()> {
            let mut wal = wal_checkpoint(conn, "NOOP")?;
            let started = Instant::now();
            let mut passes = 0;
            // A busy result (another connection is checkpointing) or a
            // stop ends the passes; the next commit brings the thread back.
            while passes < plan.passes
                && !wal.busy
                && !signals.stop.load(Ordering::Acquire)
                && (wal.left() >= plan.copy_at
                    || ((passes > 0 || wal.log >= plan.restart_at) && wal.left() > plan.tail))
            {
                let pass = wal_checkpoint(conn, "PASSIVE")?;
                wal = Wal {
                    copied: pass.copied,
                    ..wal_checkpoint(conn, "NOOP")?
                };
                wal.busy |= pass.busy;
                passes += 1;
            }
            let unlocked = started.elapsed();
            // The pass with the writer held only takes a short tail; a
            // longer one waits for the next round (or the backstop).
            let restart = !wal.busy && wal.log >= plan.restart_at && wal.left() <= plan.tail;
            if restart {
                let _writer = writer.blocking_lock();
                wal = wal_checkpoint(conn, "PASSIVE")?;
            }
            if passes > 0 || restart {
                tracing::debug!(
                    passes,
                    log_frames = wal.log,
                    copied_frames = wal.copied,
                    unlocked_ms = unlocked.as_secs_f64() * 1e3,
                    locked_ms = (started.elapsed() - unlocked).as_secs_f64() * 1e3,
                    "checkpoint"
                );
            }
            Ok(())
        };
        if let Err(e) = step() {
            // The writer's backstop checkpoint still bounds the log.
            tracing::warn!(error = %e, "background checkpoint failed; will retry");
        }
        std::thread::sleep(plan.pause);
    }
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, Clone, Copy)]
struct Wal {
    /// Another connection held the checkpoint lock; the counts are -1.
    busy: bool,
    /// Frames in the log.
    log: i64,
    /// Frames of it already in the database file.
    copied: i64,
}

impl Wal {
    /// Frames not yet in the database file.
    fn left(self) -> i64 {
        self.log - self.copied
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`.
fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Wal> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Wal {
            busy: row.get::<_, i64>(0)? != 0,
            log: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

fn open(path: &str, busy: Duration, reader: bool) -> Result<Connection, StoreError> {
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

/// The general path's `apply` on this connection: sessions, log (present
/// ids skipped and reported), metrics rows folded, session-skill rows.
fn apply(conn: &mut Connection, batch: &[Invocation]) -> Result<BatchOutcome, StoreError> {
    let backend = DbBackend::Sqlite;
    let (fresh, repeated) = distinct(batch);
    let mut outcome = BatchOutcome {
        inserted: 0,
        duplicates: repeated,
    };
    let txn = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    for piece in sessions_sql(backend, &fresh) {
        execute(&txn, piece).map_err(db_err)?;
    }
    // The log is append-only and a rowid table: the rows this batch adds are
    // the ones past its largest rowid now. Counting them is enough when all
    // or none of the ids are new (always so for one event); only otherwise
    // are the inserted ids read back (cheaper than RETURNING every id).
    let before: Option<i64> = (fresh.len() > 1)
        .then(|| {
            txn.query_row(
                "SELECT coalesce(max(rowid), 0) FROM skill_invocation",
                [],
                |r| r.get(0),
            )
        })
        .transpose()
        .map_err(db_err)?;
    let mut added = 0;
    for (sql, values) in log_sql(backend, &fresh, false) {
        added += txn
            .prepare_cached(&sqlite_placeholders(&sql))
            .and_then(|mut st| st.execute(params_from_iter(bindings(values)?)))
            .map_err(db_err)?;
    }
    let kept = if added == fresh.len() {
        outcome.inserted = added;
        fresh
    } else {
        let inserted = match before {
            Some(before) if added > 0 => txn
                .prepare_cached("SELECT id FROM skill_invocation WHERE rowid > ?")
                .and_then(|mut st| {
                    st.query_map([before], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<HashSet<String>>>()
                })
                .map_err(db_err)?,
            _ => HashSet::new(),
        };
        settle(&fresh, &inserted, &mut outcome)
    };

    if kept.is_empty() {
        // Dropping the transaction rolls back any session upsert.
        return Ok(outcome);
    }
    let (skills, pairs) = fold_new(kept.into_iter());
    let mut stored = BTreeMap::new();
    {
        let mut create = txn
            .prepare_cached(
                "INSERT INTO skill_metrics (skill_name) VALUES (?) ON CONFLICT (skill_name) DO NOTHING",
            )
            .map_err(db_err)?;
        let mut select = txn.prepare_cached(&SELECT_ONE_METRICS).map_err(db_err)?;
        for (name, partial) in &skills {
            create.execute([name]).map_err(db_err)?;
            let row = select.query_row([name], metrics_row).map_err(db_err)?;
            let mut agg = aggregate_from_model(&row)?;
            merge_skill(name, &mut agg, partial)?;
            stored.insert((*name).to_owned(), agg);
        }
    }
    for piece in metrics_sql(backend, &stored)
        .into_iter()
        .chain(session_skills_sql(backend, &pairs))
    {
        execute(&txn, piece).map_err(db_err)?;
    }
    txn.commit().map_err(db_err)?;
    Ok(outcome)
}

fn execute(conn: &Connection, (sql, values): Piece) -> rusqlite::Result<()> {
    conn.prepare_cached(&sqlite_placeholders(&sql))?
        .execute(params_from_iter(bindings(values)?))?;
    Ok(())
}

/// The write path's values as SQLite values (on SQLite, timestamps and JSON
/// are already text).
fn bindings(values: Vec<Value>) -> rusqlite::Result<Vec<Sql>> {
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
        Value::Float(v) => v.map_or(Sql::Null, |f| Sql::Real(f64::from(f))),
        Value::Double(v) => v.map_or(Sql::Null, Sql::Real),
        Value::String(v) => v.map_or(Sql::Null, Sql::Text),
        Value::Bytes(v) => v.map_or(Sql::Null, Sql::Blob),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("no SQLite binding for {other:?}").into(),
            ));
        }
    })
}

/// A row selected as `METRICS_COLS`, decoded as the entity model.
fn metrics_row(row: &Row<'_>) -> rusqlite::Result<skill_metrics::Model> {
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
    })
}

fn json_at(row: &Row<'_>, at: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(at)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(at, Type::Text, Box::new(e)))
}

fn timestamp_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let Some(text) = row.get::<_, Option<String>>(at)? else {
        return Ok(None);
    };
    parse_timestamp(&text).map(Some).ok_or_else(|| {
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

/// This store's form (RFC 3339), or SQLite's own `YYYY-MM-DD HH:MM:SS[.f]`
/// (UTC) as a hand edit might leave.
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|naive| naive.and_utc())
}

fn db_err(e: rusqlite::Error) -> StoreError {
    // SQLite's own messages ("database is locked", "FOREIGN KEY constraint
    // failed", ...) are kept: `StoreError::is_retryable` knows a busy
    // database by its message, as it does for sqlx's errors.
    StoreError::Database(DbErr::Custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_timestamp_forms() {
        let want = "2026-01-02T03:04:05.250Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            parse_timestamp("2026-01-02T03:04:05.250000+00:00"),
            Some(want)
        );
        assert_eq!(parse_timestamp("2026-01-02 03:04:05.25"), Some(want));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn the_checkpoint_thread_copies_the_log_and_starts_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let path = path.to_str().unwrap();
        Connection::open(path)
            .unwrap()
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x BLOB NOT NULL)")
            .unwrap();
        let busy = Duration::from_secs(5);
        let writer = open(path, busy, false).unwrap();
        // No automatic checkpoint: only the thread copies the log here.
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0")
            .unwrap();
        let writer = Arc::new(tokio::sync::Mutex::new(writer));
        let plan = Plan {
            copy_at: 20,
            restart_at: 60,
            tail: 30,
            passes: 4,
            pause: Duration::from_millis(1),
        };
        let thread =
            Checkpointer::start(open(path, busy, false).unwrap(), Arc::clone(&writer), plan)
                .unwrap();
        let probe = open(path, busy, true).unwrap();

        // Rows of a page each: every commit adds at least one frame. Only
        // the thread copies frames here; a restart needs all of them copied.
        let deadline = Instant::now() + Duration::from_secs(60);
        let (mut inserted, mut last, mut restarts) = (0, 0, 0);
        while inserted < 2_000 || restarts == 0 {
            assert!(
                Instant::now() < deadline,
                "the log never started again ({inserted} commits, {last} frames)"
            );
            writer
                .blocking_lock()
                .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
                .unwrap();
            inserted += 1;
            thread.nudge();
            let wal = wal_checkpoint(&probe, "NOOP").unwrap();
            if wal.busy || wal.log < 0 {
                continue;
            }
            if wal.log < last {
                restarts += 1;
            }
            last = wal.log;
        }
        // Stopping joins the thread; the store's connections close after it.
        drop(thread);
    }

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
