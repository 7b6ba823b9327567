//! The log is the truth: `rebuild` recomputes every aggregate from it, and
//! `verify` compares what is stored with that recomputation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use domain::{CountMap, MapKind};
use entity::{
    session_skill_numbered, skill_map_counts, skill_metrics, skill_rollups, skill_rollups_daily,
};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    IsolationLevel, QueryFilter, Statement, TransactionTrait, Value,
};
use serde::Serialize;

use crate::maps::{metrics_rows_sql, replace_metrics};
use crate::sql::{placeholders, stmt, ts};
use crate::sweep::{Part, Piece, PieceSizes, Sweep, skills_between};
use crate::write::{SESSION_SKILL, session_skills_sql, upsert_session_skills};
use crate::{SkillMetricsStore, StoreError};

mod compare;

/// The tables `rebuild` empties before it writes them from the log: on
/// PostgreSQL only the first two (it compares the others, D99 and D100).
const EMPTIED: &[&str] = &[
    "skill_map_counts",
    "skill_metrics",
    "skill_rollups",
    "skill_rollups_daily",
    crate::write::SESSION_SKILL,
];

/// What `rebuild` records once the rollups are written from the log.
const FILLED: &str = "UPDATE skill_rollups_state SET filled = TRUE";

/// One difference between stored aggregates and a recomputation from the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// `skill_metrics`, `session_skill` or `sessions`.
    pub table: String,
    /// The row's key (skill, or `session / skill`).
    pub key: String,
    /// The column that differs (`row` when the whole row is missing or extra).
    pub field: String,
    /// What is stored.
    pub stored: String,
    /// What the log says.
    pub expected: String,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Invocations read from the log.
    pub invocations_read: u64,
    /// Skills compared.
    pub skills_checked: usize,
    /// Session-skill rows compared.
    pub session_skills_checked: usize,
    /// Sessions named in the log and checked against it.
    pub sessions_checked: usize,
    /// Hourly rollups compared (D81).
    pub rollups_checked: usize,
    /// Daily rollups compared (D92).
    pub day_rollups_checked: usize,
    /// Every difference found; empty means the aggregates are exact.
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// `true` when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

impl SkillMetricsStore {
    /// Recomputes every aggregate from the log and replaces the stored ones
    /// (on PostgreSQL, of `session_skill` and the rollups only the rows that
    /// differ, D99 and D100), in one transaction that keeps writers out
    /// until it is done (each waits at most its busy timeout, D89). The log
    /// is read piece by piece (D91), so memory stays bounded whatever its
    /// length. Sessions are repaired where the log contradicts them: a start
    /// after the session's first invocation, or no project where an
    /// invocation names one.
    ///
    /// # Errors
    /// A database failure (nothing is changed), or a logged row that breaks
    /// the domain rules (written by another client).
    pub async fn rebuild(&self) -> Result<VerifyReport, StoreError> {
        self.rebuild_in_pieces(PieceSizes::default()).await
    }

    /// [`Self::rebuild`] with pieces of the given sizes (for tests).
    #[doc(hidden)]
    pub async fn rebuild_in_pieces(&self, sizes: PieceSizes) -> Result<VerifyReport, StoreError> {
        if let Some(direct) = &self.direct {
            return self.rebuild_file(direct, sizes).await;
        }
        let db = self.db.clone();
        let halves = self.read_parts().len() == 2;
        let busy = self.busy;
        self.write(move |txn| {
            let db = db.clone();
            Box::pin(async move {
                let backend = txn.get_database_backend();
                if backend == DbBackend::Postgres {
                    // As lock_out_writers, and `sessions` first, in the order
                    // a record takes them: a record that has upserted its
                    // session waits here, not halfway through (no deadlock
                    // with the session repairs below).
                    txn.execute_unprepared("SET LOCAL lock_timeout = 0").await?;
                    txn.execute_unprepared(
                        "LOCK TABLE sessions, skill_invocation_log IN SHARE ROW EXCLUSIVE MODE",
                    )
                    .await?;
                }
                // No piece reads these tables' rows. PostgreSQL keeps
                // `session_skill` and the rollups and compares them piece by
                // piece, writing only what differs (D99, D100); SQLite
                // empties them (its times are text, D99).
                let emptied = match backend {
                    DbBackend::Postgres => &EMPTIED[..2],
                    _ => EMPTIED,
                };
                for table in emptied {
                    txn.execute_unprepared(&format!("DELETE FROM {table}"))
                        .await?;
                }
                // Filled from the log: recorded in the same transaction.
                txn.execute_unprepared(FILLED).await?;
                let mut report = VerifyReport::default();
                if backend == DbBackend::Postgres && halves {
                    // The halves read, on two connections, the snapshot this
                    // transaction has under its locks (D110); the pieces are
                    // written here, each compared with the stored rows as
                    // this transaction sees them.
                    let id = export_snapshot(txn).await?;
                    let restored = Sweep::restored(txn).await?;
                    let mut reads = Vec::new();
                    for part in [Part::Skills, Part::Sessions] {
                        let read = import_snapshot(&db, &id, Some(busy)).await?;
                        reads.push((read, None, part));
                    }
                    let (mut tasks, mut pieces) = read_halves(reads, sizes, restored);
                    while let Some(piece) = pieces.recv().await {
                        rewrite(txn, piece?, &mut report).await?;
                    }
                    report.invocations_read = read_counts(&mut tasks).await?;
                    return Ok(report);
                }
                let restored = Sweep::restored(txn).await?;
                let mut sweep = Sweep::start(txn, sizes, false, restored, None, Part::All).await?;
                while let Some(piece) = sweep.next(txn).await? {
                    if backend == DbBackend::Postgres {
                        rewrite(txn, piece, &mut report).await?;
                    } else {
                        for (sql, values) in replacement(piece, &mut report)? {
                            txn.execute_raw(stmt(backend, &sql, values)).await?;
                        }
                    }
                }
                report.invocations_read = sweep.read;
                Ok(report)
            })
        })
        .await
    }

    /// [`Self::rebuild_in_pieces`] on a SQLite file: every write on the
    /// store's own writer connection, in one transaction that holds the
    /// write lock throughout (D109); the pieces are read as `verify` reads
    /// them (in two halves at once where the pool has two connections to
    /// give, D110), on snapshots taken under that lock (so the store the
    /// transaction started from); no row of an emptied table is read back
    /// to be compared.
    async fn rebuild_file(
        &self,
        direct: &crate::direct::Direct,
        sizes: PieceSizes,
    ) -> Result<VerifyReport, StoreError> {
        let rebuilt = crate::retry::retry(self.busy, || async {
            let parts = self.read_parts();
            // Begun before the lock (their snapshots start at their first
            // read): no connection is waited for while writers are held.
            let mut txns = Vec::new();
            for _ in parts {
                txns.push(self.db.begin().await?);
            }
            let mut writer = direct.long_write().await?;
            let emptied = EMPTIED
                .iter()
                .map(|table| (format!("DELETE FROM {table}"), Vec::new()));
            writer
                .run(emptied.chain([(FILLED.to_owned(), Vec::new())]).collect())
                .await?;
            let mut reads = Vec::new();
            for (txn, part) in txns.into_iter().zip(parts) {
                first_read(&txn).await?;
                reads.push((txn, Some(direct.reader_in_transaction()?), *part));
            }
            let restored = Sweep::restored(&reads[0].0).await?;
            let (mut tasks, mut pieces) = read_halves(reads, sizes, restored);
            let mut report = VerifyReport::default();
            while let Some(piece) = pieces.recv().await {
                // An error of either half, or of the writer, returns here:
                // dropping the tasks stops the other half, and dropping the
                // writer rolls everything back.
                writer.run(replacement(piece?, &mut report)?).await?;
            }
            report.invocations_read = read_counts(&mut tasks).await?;
            writer.commit().await?;
            direct.nudge();
            Ok::<_, StoreError>(report)
        })
        .await;
        match rebuilt {
            Err(StoreError::Database(e)) => Err(self.err(e)),
            other => other,
        }
    }

    /// Compares the stored aggregates with a recomputation from the log, on
    /// one consistent snapshot, and lists every difference: every
    /// `skill_metrics` column (durations exactly, percentiles within the
    /// digest's bound of the log's exact ones), every `session_skill` and
    /// `skill_rollups` and `skill_rollups_daily` row, and what the log fixes
    /// of each session. The log
    /// and the stored rows are read piece by piece with the same keys
    /// (D91): memory holds one piece and one skill's durations.
    ///
    /// # Errors
    /// A database failure.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_in_pieces(PieceSizes::default()).await
    }

    /// [`Self::verify`] with pieces of the given sizes (for tests).
    #[doc(hidden)]
    pub async fn verify_in_pieces(&self, sizes: PieceSizes) -> Result<VerifyReport, StoreError> {
        let reads = self.snapshots().await?;
        let restored = match reads.first() {
            Some((txn, ..)) => Sweep::restored(txn).await.map_err(|e| match e {
                StoreError::Database(e) => self.err(e),
                other => other,
            })?,
            None => false,
        };
        // The halves run as tasks of their own: on a runtime of several
        // threads, each folds its rows on a core of its own.
        let mut tasks = Halves::default();
        for (i, (txn, lite, part)) in reads.into_iter().enumerate() {
            let stop = tasks.stop.clone();
            tasks.set.spawn(async move {
                let mut report = VerifyReport::default();
                let mut sweep = Sweep::start(&txn, sizes, true, restored, lite, part).await?;
                while let Some(piece) = sweep.next(&txn).await? {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    check(&txn, piece, &mut report).await?;
                }
                txn.commit().await?;
                report.invocations_read = sweep.read;
                Ok::<_, StoreError>((i, report))
            });
        }
        match gather(tasks).await {
            Err(StoreError::Database(e)) => Err(self.err(e)),
            other => other,
        }
    }

    /// The parts a long read runs at once, a connection each (D110): the
    /// two halves where the caller allows two connections or more, else
    /// the whole sweep.
    fn read_parts(&self) -> &'static [Part] {
        if self.read_connections >= 2 {
            &[Part::Skills, Part::Sessions]
        } else {
            &[Part::All]
        }
    }

    /// The read transactions of a `verify`, all at one point of the store's
    /// history, each with the part of the sweep it reads (D110): two halves
    /// where two snapshots can be started together (PostgreSQL exports the
    /// first one's to the second; on a SQLite file both start while this
    /// process holds SQLite's write lock), else one transaction that reads
    /// it all. On a SQLite file each comes with a reader of the store's own
    /// for the log's rows, in the same snapshot (D91).
    async fn snapshots(
        &self,
    ) -> Result<Vec<(DatabaseTransaction, Option<rusqlite::Connection>, Part)>, StoreError> {
        let backend = self.backend();
        let begin = || async {
            let txn = match backend {
                DbBackend::Postgres => {
                    self.db
                        .begin_with_config(
                            Some(IsolationLevel::RepeatableRead),
                            Some(AccessMode::ReadOnly),
                        )
                        .await
                }
                _ => self.db.begin().await,
            }
            .map_err(|e| self.err(e))?;
            Ok::<_, StoreError>(txn)
        };
        let parts = self.read_parts();
        match (&self.direct, backend) {
            (_, DbBackend::Postgres) if parts.len() == 2 => {
                let skills = begin().await?;
                first_read(&skills).await.map_err(|e| self.err(e))?;
                let id = export_snapshot(&skills).await.map_err(|e| self.err(e))?;
                let sessions = import_snapshot(&self.db, &id, None)
                    .await
                    .map_err(|e| self.err(e))?;
                Ok(vec![
                    (skills, None, Part::Skills),
                    (sessions, None, Part::Sessions),
                ])
            }
            (Some(direct), _) => {
                let wanted = parts.len();
                // Begun before the lock (their snapshots start at their
                // first read): no connection is waited for while writers
                // are held.
                let mut txns = Vec::new();
                for _ in 0..wanted {
                    txns.push(begin().await?);
                }
                let started = async {
                    for txn in &txns {
                        first_read(txn).await.map_err(|e| self.err(e))?;
                    }
                    Ok(())
                };
                let readers = direct.long_reader(started, wanted).await?;
                if readers.len() < wanted {
                    // Another process held the write lock: the snapshots
                    // may differ, so one reads it all, through sqlx alone.
                    txns.truncate(1);
                    return Ok(txns.into_iter().map(|t| (t, None, Part::All)).collect());
                }
                Ok(txns
                    .into_iter()
                    .zip(readers)
                    .zip(parts)
                    .map(|((t, r), p)| (t, Some(r), *p))
                    .collect())
            }
            _ => {
                let txn = begin().await?;
                first_read(&txn).await.map_err(|e| self.err(e))?;
                Ok(vec![(txn, None, Part::All)])
            }
        }
    }
}

/// The pieces of each read transaction's part of the sweep, read on tasks
/// of their own (on a runtime of several threads, each half folds its rows
/// on a core of its own) and handed over in the order each half reads them.
/// The channel holds two pieces: memory stays bounded however far the
/// readers are ahead. A half's error is sent as its last item. Each task
/// answers the log rows it read.
fn read_halves(
    reads: Vec<(DatabaseTransaction, Option<rusqlite::Connection>, Part)>,
    sizes: PieceSizes,
    restored: bool,
) -> (
    Halves<u64>,
    tokio::sync::mpsc::Receiver<Result<Piece, StoreError>>,
) {
    let (sender, pieces) = tokio::sync::mpsc::channel(2);
    let mut tasks = Halves::default();
    for (txn, lite, part) in reads {
        let sender = sender.clone();
        let stop = tasks.stop.clone();
        tasks.set.spawn(async move {
            let mut read = 0;
            let sweep = async {
                let mut sweep = Sweep::start(&txn, sizes, false, restored, lite, part).await?;
                while let Some(piece) = sweep.next(&txn).await? {
                    if stop.load(Ordering::Acquire) || sender.send(Ok(piece)).await.is_err() {
                        // The receiver stopped: its error is the answer.
                        break;
                    }
                }
                read = sweep.read;
                txn.rollback().await?;
                Ok::<_, StoreError>(())
            };
            if let Err(e) = sweep.await {
                let _ = sender.send(Err(e)).await;
            }
            read
        });
    }
    (tasks, pieces)
}

/// The log rows the halves read, once every piece has been received.
async fn read_counts(tasks: &mut Halves<u64>) -> Result<u64, StoreError> {
    let mut read = 0;
    while let Some(done) = tasks.set.join_next().await {
        read += joined(done)?;
    }
    Ok(read)
}

/// The snapshot a transaction sees now, for others to read it too.
async fn export_snapshot(txn: &DatabaseTransaction) -> Result<String, sea_orm::DbErr> {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_export_snapshot() AS id",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("pg_export_snapshot answered no row".to_owned()))?;
    row.try_get::<String>("", "id")
}

/// A read-only transaction on PostgreSQL that sees the snapshot `id`
/// (exported by a transaction still open). With `lock_wait`, its reads wait
/// at most that long for a table lock: a reader of `rebuild` must not wait
/// forever behind a lock that itself waits for the rebuild (a migration's,
/// say), where the server cannot see the cycle through this process.
async fn import_snapshot(
    db: &sea_orm::DatabaseConnection,
    id: &str,
    lock_wait: Option<std::time::Duration>,
) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    let txn = db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?;
    // The identifier is the server's own ("00000003-0000001B-1"); it must
    // come before the transaction's first read.
    txn.execute_unprepared(&format!("SET TRANSACTION SNAPSHOT '{id}'"))
        .await?;
    if let Some(wait) = lock_wait {
        txn.execute_unprepared(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            wait.as_millis().max(1)
        ))
        .await?;
    }
    Ok(txn)
}

/// The tasks of a sweep's halves. Dropped before they end (at the other
/// half's error or the writer's, or with the caller's future), it asks
/// them to stop after the piece in hand, and they end their transactions
/// themselves: a task aborted in the middle of a read could leave its
/// pooled connection inside its transaction, where the next transaction
/// begun on it would fail.
struct Halves<T: 'static> {
    set: tokio::task::JoinSet<T>,
    stop: Arc<AtomicBool>,
}

impl<T: 'static> Default for Halves<T> {
    fn default() -> Self {
        Self {
            set: tokio::task::JoinSet::new(),
            stop: Arc::default(),
        }
    }
}

impl<T: 'static> Drop for Halves<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.set.detach_all();
    }
}

/// The reports of `verify`'s halves as one: the skills' differences first,
/// then the sessions', as one sweep lists them. The first error returns at
/// once; the other half stops after its piece in hand.
async fn gather(
    mut tasks: Halves<Result<(usize, VerifyReport), StoreError>>,
) -> Result<VerifyReport, StoreError> {
    let mut halves = Vec::new();
    while let Some(done) = tasks.set.join_next().await {
        halves.push(joined(done)??);
    }
    Ok(merged(halves))
}

/// A finished task's answer; a panic in it goes on as a panic here.
fn joined<T>(done: Result<T, tokio::task::JoinError>) -> Result<T, StoreError> {
    match done {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Database(sea_orm::DbErr::Custom(
            "the sweep was cancelled: the runtime is shutting down".to_owned(),
        ))),
    }
}

fn merged(mut halves: Vec<(usize, VerifyReport)>) -> VerifyReport {
    halves.sort_by_key(|(i, _)| *i);
    let mut report = VerifyReport::default();
    for (_, half) in halves {
        report.invocations_read += half.invocations_read;
        report.skills_checked += half.skills_checked;
        report.session_skills_checked += half.session_skills_checked;
        report.sessions_checked += half.sessions_checked;
        report.rollups_checked += half.rollups_checked;
        report.day_rollups_checked += half.day_rollups_checked;
        report.differences.extend(half.differences);
    }
    report
}

/// Starts a read transaction's snapshot: it starts with the first read.
async fn first_read(txn: &DatabaseTransaction) -> Result<(), sea_orm::DbErr> {
    txn.query_one_raw(Statement::from_string(
        txn.get_database_backend(),
        "SELECT COUNT(*) FROM (SELECT 1 FROM skill_invocation_log LIMIT 1) AS one",
    ))
    .await?;
    Ok(())
}

/// The spilled map rows (D86) per skill and map.
fn map_counts(rows: Vec<skill_map_counts::Model>) -> BTreeMap<String, BTreeMap<MapKind, CountMap>> {
    let mut children: BTreeMap<String, BTreeMap<MapKind, CountMap>> = BTreeMap::new();
    for row in rows {
        // A row of an unknown map is reported as a row of no skill's map.
        let kind = MapKind::parse(&row.kind).unwrap_or(MapKind::WorkflowPaths);
        children
            .entry(row.skill_name)
            .or_default()
            .entry(kind)
            .or_default()
            .insert(row.item, row.count);
    }
    children
}

/// Compares one piece with the stored rows of the same keys.
async fn check(
    txn: &DatabaseTransaction,
    piece: Piece,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    match piece {
        Piece::Range { after, before, log } => {
            let bounds = (after.as_deref(), before.as_deref());
            let stored = skills_between(
                skill_metrics::Entity::find(),
                skill_metrics::Column::SkillName,
                bounds,
            )
            .all(txn)
            .await?;
            let children = map_counts(
                skills_between(
                    skill_map_counts::Entity::find(),
                    skill_map_counts::Column::SkillName,
                    bounds,
                )
                .all(txn)
                .await?,
            );
            compare::skills(&log, stored, &children, report);
            let (hours, days) = stored_rollups(txn, RollupScope::Skills(bounds)).await?;
            compare_rollups(&log, hours, days, report)?;
        }
        Piece::Skill { name, log } => {
            let stored = skill_metrics::Entity::find()
                .filter(skill_metrics::Column::SkillName.eq(name.as_str()))
                .all(txn)
                .await?;
            let children = map_counts(
                skill_map_counts::Entity::find()
                    .filter(skill_map_counts::Column::SkillName.eq(name.as_str()))
                    .all(txn)
                    .await?,
            );
            compare::skills(&log, stored, &children, report);
        }
        Piece::Rollups {
            skill,
            from,
            to,
            log,
        } => {
            let scope = RollupScope::Days {
                skill: &skill,
                from,
                to,
            };
            let (hours, days) = stored_rollups(txn, scope).await?;
            compare_rollups(&log, hours, days, report)?;
        }
        Piece::Sessions {
            through,
            log,
            stored,
            names,
        } => {
            let pairs = stored_pairs(txn, &names, through.is_none()).await?;
            compare::session_skills(&log, pairs, report);
            compare::sessions(&log, stored, report);
        }
    }
    Ok(())
}

/// The stored `session_skill` rows of a chunk's sessions, numbered
/// `names` (number to text id), read by number off the table's key (D114);
/// with `last`, the chunk that ends the sweep, also every row whose number
/// no session has (nothing refuses one, D98), which no chunk names.
async fn stored_pairs(
    txn: &DatabaseTransaction,
    names: &HashMap<i64, String>,
    last: bool,
) -> Result<Vec<compare::StoredPair>, sea_orm::DbErr> {
    use session_skill_numbered::Column as S;
    // One parameter a session: a chunk holds at most `MOST_SESSIONS`.
    let rows = session_skill_numbered::Entity::find()
        .filter(S::SessionNum.is_in(names.keys().copied()))
        .all(txn)
        .await?;
    let mut out: Vec<_> = rows
        .into_iter()
        .map(|m| {
            let name = names.get(&m.session_num).cloned().unwrap_or_default();
            (name, m)
        })
        .collect();
    if last {
        let orphans = session_skill_numbered::Entity::find()
            .filter(sea_orm::sea_query::Expr::cust(
                "NOT EXISTS (SELECT 1 FROM sessions s \
                 WHERE s.num = session_skill_numbered.session_num)",
            ))
            .all(txn)
            .await?;
        out.extend(
            orphans
                .into_iter()
                .map(|m| (compare::no_session(m.session_num), m)),
        );
    }
    Ok(out)
}

/// A piece's stored hourly and daily rollups against the log's.
fn compare_rollups(
    log: &crate::recompute::Recomputed,
    hours: Vec<skill_rollups::Model>,
    days: Vec<skill_rollups::Model>,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let expected = &log.aggregates.rollups;
    let out = &mut report.differences;
    compare::rollups(
        "skill_rollups",
        expected,
        hours,
        &mut report.rollups_checked,
        out,
    );
    let expected_days = crate::rollups::days_of(expected)?;
    compare::rollups(
        "skill_rollups_daily",
        &expected_days,
        days,
        &mut report.day_rollups_checked,
        out,
    );
    Ok(())
}

/// The stored rollups a piece covers.
#[derive(Clone, Copy)]
enum RollupScope<'a> {
    /// Every skill in `(after, before)`, open where `None`.
    Skills((Option<&'a str>, Option<&'a str>)),
    /// A skill's hours and days in `[from, to)`.
    Days {
        skill: &'a str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// The stored hourly and daily rows of a scope (the daily ones read as
/// hourly models: the two tables have the same columns).
async fn stored_rollups(
    txn: &DatabaseTransaction,
    scope: RollupScope<'_>,
) -> Result<(Vec<skill_rollups::Model>, Vec<skill_rollups::Model>), StoreError> {
    use skill_rollups::Column as R;
    use skill_rollups_daily::Column as D;
    let backend = txn.get_database_backend();
    let (hours, days) = match scope {
        RollupScope::Skills(bounds) => (
            skills_between(skill_rollups::Entity::find(), R::SkillName, bounds),
            skills_between(skill_rollups_daily::Entity::find(), D::SkillName, bounds),
        ),
        RollupScope::Days { skill, from, to } => (
            skill_rollups::Entity::find()
                .filter(R::SkillName.eq(skill))
                .filter(R::BucketStart.gte(ts(backend, from)))
                .filter(R::BucketStart.lt(ts(backend, to))),
            skill_rollups_daily::Entity::find()
                .filter(D::SkillName.eq(skill))
                .filter(D::BucketStart.gte(ts(backend, from)))
                .filter(D::BucketStart.lt(ts(backend, to))),
        ),
    };
    let hours = hours.all(txn).await?;
    let days = days.into_model::<skill_rollups::Model>().all(txn).await?;
    Ok((hours, days))
}

/// On PostgreSQL, writes a piece's hourly rollups and the daily ones they
/// add up to, over the piece's stored rows (D100): those equal to the log's
/// stay as they are, only rows that differ are written, and rows the log
/// has none of are deleted.
async fn write_rollups(
    txn: &DatabaseTransaction,
    log: &crate::recompute::Recomputed,
    scope: RollupScope<'_>,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let hours = &log.aggregates.rollups;
    let days = crate::rollups::days_of(hours)?;
    report.rollups_checked += hours.len();
    report.day_rollups_checked += days.len();
    let (stored_hours, stored_days) = stored_rollups(txn, scope).await?;
    for (table, rows, stored) in [
        (crate::rollups::ROLLUPS, hours, stored_hours),
        (crate::rollups::DAYS, &days, stored_days),
    ] {
        let (gone, write) = compare::rollup_repairs(rows, stored);
        for keys in gone.chunks(300) {
            let mut values = Vec::with_capacity(keys.len() * 3);
            for (skill, bucket, project) in keys {
                values.extend([
                    Value::from(skill.as_str()),
                    ts(backend, *bucket),
                    Value::from(project.as_str()),
                ]);
            }
            let sql = format!(
                "DELETE FROM {table} WHERE (skill_name, bucket_start, project_path) \
                 IN (VALUES {})",
                placeholders(keys.len(), 3)
            );
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
        for (sql, values) in crate::rollups::upsert_sql(backend, table, write) {
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
    }
    Ok(())
}

/// On PostgreSQL, writes one piece in place of the rows `rebuild` emptied,
/// and of `session_skill` and the rollups only the stored rows that differ
/// from the log (D99, D100).
async fn rewrite(
    txn: &DatabaseTransaction,
    piece: Piece,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    match piece {
        Piece::Range { after, before, log } => {
            report.skills_checked += log.aggregates.skills.len();
            let scope = RollupScope::Skills((after.as_deref(), before.as_deref()));
            write_rollups(txn, &log, scope, report).await?;
            let names: Vec<String> = log.aggregates.skills.keys().cloned().collect();
            if !names.is_empty() {
                replace_metrics(txn, backend, log.aggregates.skills, Some(&names)).await?;
            }
        }
        Piece::Skill { name, log } => {
            report.skills_checked += log.aggregates.skills.len();
            if !log.aggregates.skills.is_empty() {
                replace_metrics(txn, backend, log.aggregates.skills, Some(&[name])).await?;
            }
        }
        Piece::Rollups {
            skill,
            from,
            to,
            log,
        } => {
            let scope = RollupScope::Days {
                skill: &skill,
                from,
                to,
            };
            write_rollups(txn, &log, scope, report).await?;
        }
        Piece::Sessions {
            through,
            log,
            stored,
            names,
        } => {
            report.session_skills_checked += log.aggregates.session_skills.len();
            report.sessions_checked += log.sessions.len();
            let kept = stored_pairs(txn, &names, through.is_none()).await?;
            let (gone, write) = compare::session_skill_repairs(&log, kept);
            for keys in gone.chunks(500) {
                txn.execute_raw(stmt(
                    backend,
                    &format!(
                        "DELETE FROM {SESSION_SKILL} WHERE (session_num, skill_name) IN (VALUES {})",
                        placeholders(keys.len(), 2)
                    ),
                    keys.iter()
                        .flat_map(|(num, skill)| [Value::from(*num), Value::from(skill.as_str())])
                        .collect(),
                ))
                .await?;
            }
            for (sql, values) in sessions_of_balances(backend, &log, &names) {
                txn.execute_raw(stmt(backend, &sql, values)).await?;
            }
            upsert_session_skills(txn, backend, SESSION_SKILL, &write).await?;
            for piece in session_repairs(backend, &log, stored) {
                txn.execute_raw(stmt(backend, &piece.0, piece.1)).await?;
            }
        }
    }
    Ok(())
}

/// On SQLite, the statements that write one piece into tables `rebuild`
/// has emptied, every row of them (SQLite stores times as text, D99): no
/// stored row is read, so the same statements serve the store's own
/// connection and the general one.
fn replacement(
    piece: Piece,
    report: &mut VerifyReport,
) -> Result<Vec<crate::write::Piece>, StoreError> {
    let backend = DbBackend::Sqlite;
    let mut out = Vec::new();
    match piece {
        Piece::Range { log, .. } => {
            report.skills_checked += log.aggregates.skills.len();
            out.extend(rollups_sql(&log, report)?);
            out.extend(metrics_rows_sql(backend, log.aggregates.skills));
        }
        Piece::Skill { log, .. } => {
            report.skills_checked += log.aggregates.skills.len();
            out.extend(metrics_rows_sql(backend, log.aggregates.skills));
        }
        Piece::Rollups { log, .. } => out.extend(rollups_sql(&log, report)?),
        Piece::Sessions {
            log, stored, names, ..
        } => {
            report.session_skills_checked += log.aggregates.session_skills.len();
            report.sessions_checked += log.sessions.len();
            out.extend(sessions_of_balances(backend, &log, &names));
            let pairs: BTreeMap<(&str, &str), _> = log
                .aggregates
                .session_skills
                .iter()
                .map(|((session, skill), row)| ((session.as_str(), skill.as_str()), *row))
                .collect();
            out.extend(session_skills_sql(backend, SESSION_SKILL, &pairs));
            out.extend(session_repairs(backend, &log, stored));
        }
    }
    Ok(out)
}

/// On SQLite, the statements that write a piece's hourly rollups and the
/// daily ones they add up to.
fn rollups_sql(
    log: &crate::recompute::Recomputed,
    report: &mut VerifyReport,
) -> Result<Vec<crate::write::Piece>, StoreError> {
    let backend = DbBackend::Sqlite;
    let hours = &log.aggregates.rollups;
    let days = crate::rollups::days_of(hours)?;
    report.rollups_checked += hours.len();
    report.day_rollups_checked += days.len();
    let mut out = crate::rollups::upsert_sql(backend, crate::rollups::ROLLUPS, hours);
    out.extend(crate::rollups::upsert_sql(
        backend,
        crate::rollups::DAYS,
        &days,
    ));
    Ok(out)
}

/// The sessions that only a balance of pruned rows names (`session_skill_
/// pruned` keeps text ids, D83), which no `sessions` row has: each gets
/// one, started at its first pruned invocation, as the upgrade to version
/// 20 gives one (D114), so that its `session_skill` rows, which name their
/// session by number, can be written. The chunk that ends the sweep is the
/// only one to read such balances.
fn sessions_of_balances(
    backend: DbBackend,
    log: &crate::recompute::Recomputed,
    names: &HashMap<i64, String>,
) -> Vec<crate::write::Piece> {
    let known: std::collections::HashSet<&str> = names.values().map(String::as_str).collect();
    let mut started: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for ((session, _), row) in &log.aggregates.session_skills {
        if !known.contains(session.as_str()) {
            let first = started.entry(session).or_insert(row.first_invoked_at);
            *first = (*first).min(row.first_invoked_at);
        }
    }
    started
        .into_iter()
        .map(|(id, at)| {
            (
                "INSERT INTO sessions (id, started_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING"
                    .to_owned(),
                vec![Value::from(id), ts(backend, at)],
            )
        })
        .collect()
}

/// The updates that repair the stored sessions of a chunk where the log
/// contradicts them: a start after the session's first invocation, or no
/// project where an invocation names one.
fn session_repairs(
    backend: DbBackend,
    log: &crate::recompute::Recomputed,
    stored: Vec<entity::sessions::Model>,
) -> Vec<crate::write::Piece> {
    let mut out = Vec::new();
    for session in stored {
        let Some(facts) = log.sessions.get(&session.id) else {
            continue;
        };
        let started = session.started_at.min(facts.earliest);
        let project = session
            .project_path
            .clone()
            .or_else(|| facts.first_project.as_ref().map(|p| p.2.clone()));
        if started != session.started_at || project != session.project_path {
            out.push((
                "UPDATE sessions SET started_at = $1, project_path = $2 WHERE id = $3".to_owned(),
                vec![
                    ts(backend, started),
                    Value::from(project),
                    Value::from(session.id),
                ],
            ));
        }
    }
    out
}
