//! The checkpoint thread (decision D30): it copies the write-ahead log into
//! the database file, with its two `fsync`s, while the writer goes on,
//! instead of the committing connection doing it right after a commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use sea_orm::DbErr;

use crate::StoreError;

/// When the checkpoint thread copies the log into the database file, in
/// log frames (pages).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
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

pub(super) const PLAN: Plan = Plan {
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

/// The thread that checkpoints one store's log, and how to reach it.
pub(super) struct Checkpointer {
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
    pub(super) fn start(
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
    pub(super) fn nudge(&self) {
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
pub(super) struct Wal {
    /// Another connection held the checkpoint lock; the counts are -1.
    pub(super) busy: bool,
    /// Frames in the log.
    pub(super) log: i64,
    /// Frames of it already in the database file.
    pub(super) copied: i64,
}

impl Wal {
    /// Frames not yet in the database file.
    fn left(self) -> i64 {
        self.log - self.copied
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`.
pub(super) fn wal_checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<Wal> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Wal {
            busy: row.get::<_, i64>(0)? != 0,
            log: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::open;

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
}
