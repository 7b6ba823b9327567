//! The log is the truth: `rebuild` recomputes every aggregate from it, and
//! `verify` compares what is stored with that recomputation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{CountMap, MapKind};
use entity::{session_skill, skill_map_counts, skill_metrics, skill_rollups, skill_rollups_daily};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    IsolationLevel, QueryFilter, Select, Statement, TransactionTrait, Value,
};
use serde::Serialize;

use crate::maps::{replace_metrics, replace_metrics_sql};
use crate::sql::{placeholders, stmt, ts};
use crate::sweep::{Piece, PieceSizes, Sweep, skills_between};
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
    "session_skill",
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
        self.write(move |txn| {
            Box::pin(async move {
                let backend = txn.get_database_backend();
                if backend == DbBackend::Postgres {
                    // As lock_out_writers, and `sessions` first, in the order
                    // a record takes them: a record that has upserted its
                    // session waits here, not halfway through (no deadlock
                    // with the session repairs below).
                    txn.execute_unprepared("SET LOCAL lock_timeout = 0").await?;
                    txn.execute_unprepared(
                        "LOCK TABLE sessions, skill_invocation IN SHARE ROW EXCLUSIVE MODE",
                    )
                    .await?;
                }
                // The pieces are read after these deletes, in this
                // transaction: the sweep finds none of these tables' rows.
                // PostgreSQL keeps `session_skill` and the rollups and
                // compares them piece by piece, writing only what differs
                // (D99, D100); SQLite empties them (its times are text, D99).
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
                let mut sweep = Sweep::start(txn, sizes, false, None).await?;
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
    /// write lock throughout; the pieces are read as `verify` reads them,
    /// on a snapshot taken under that lock (so the same store the
    /// transaction started from), and none of the emptied rows is read.
    async fn rebuild_file(
        &self,
        direct: &crate::direct::Direct,
        sizes: PieceSizes,
    ) -> Result<VerifyReport, StoreError> {
        let rebuilt = crate::retry::retry(self.busy, || async {
            let writer = direct.long_write().await?;
            let emptied = EMPTIED
                .iter()
                .map(|table| (format!("DELETE FROM {table}"), Vec::new()));
            writer.run(emptied.chain([(FILLED.to_owned(), Vec::new())]))?;
            let txn = self.db.begin().await?;
            // The snapshot starts with the first read.
            txn.query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT COUNT(*) FROM (SELECT 1 FROM skill_invocation LIMIT 1) AS one",
            ))
            .await?;
            let lite = direct.reader_in_transaction()?;
            let mut report = VerifyReport::default();
            let mut sweep = Sweep::start(&txn, sizes, false, Some(lite)).await?;
            while let Some(piece) = sweep.next(&txn).await? {
                writer.run(replacement(piece, &mut report)?)?;
            }
            report.invocations_read = sweep.read;
            txn.rollback().await?;
            writer.commit()?;
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
        let begin = async {
            let txn = match self.backend() {
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
            // The snapshot starts with the first read.
            txn.query_one_raw(Statement::from_string(
                self.backend(),
                "SELECT COUNT(*) FROM (SELECT 1 FROM skill_invocation LIMIT 1) AS one",
            ))
            .await
            .map_err(|e| self.err(e))?;
            Ok(txn)
        };
        // On a SQLite file the log's rows are read by a connection of the
        // sweep's own, whose snapshot starts at the same point (D91).
        let (txn, lite) = match &self.direct {
            Some(direct) => direct.long_reader(begin).await?,
            None => (begin.await?, None),
        };
        let mut report = VerifyReport::default();
        let mut sweep = Sweep::start(&txn, sizes, true, lite).await?;
        while let Some(piece) = sweep.next(&txn).await? {
            check(&txn, piece, &mut report).await?;
        }
        txn.commit().await.map_err(|e| self.err(e))?;
        report.invocations_read = sweep.read;
        Ok(report)
    }
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
            after,
            through,
            log,
            stored,
        } => {
            let pairs = stored_pairs(after.as_deref(), through.as_deref());
            compare::session_skills(&log, pairs.all(txn).await?, report);
            compare::sessions(&log, stored, report);
        }
    }
    Ok(())
}

/// The stored `session_skill` rows of the sessions in `(after, through]`
/// (unbounded where `None`): a range of the unique index's first column.
fn stored_pairs(after: Option<&str>, through: Option<&str>) -> Select<session_skill::Entity> {
    use session_skill::Column as S;
    let mut pairs = session_skill::Entity::find();
    if let Some(after) = after {
        pairs = pairs.filter(S::SessionId.gt(after));
    }
    if let Some(through) = through {
        pairs = pairs.filter(S::SessionId.lte(through));
    }
    pairs
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
            after,
            through,
            log,
            stored,
        } => {
            report.session_skills_checked += log.aggregates.session_skills.len();
            report.sessions_checked += log.sessions.len();
            let kept = stored_pairs(after.as_deref(), through.as_deref())
                .all(txn)
                .await?;
            let (gone, write) = compare::session_skill_repairs(&log, kept);
            for ids in gone.chunks(500) {
                txn.execute_raw(stmt(
                    backend,
                    &format!(
                        "DELETE FROM session_skill WHERE id IN (VALUES {})",
                        placeholders(ids.len(), 1)
                    ),
                    ids.iter().map(|id| Value::from(id.as_str())).collect(),
                ))
                .await?;
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
            let names: Vec<String> = log.aggregates.skills.keys().cloned().collect();
            if !names.is_empty() {
                out.extend(replace_metrics_sql(
                    backend,
                    log.aggregates.skills,
                    Some(&names),
                ));
            }
        }
        Piece::Skill { name, log } => {
            report.skills_checked += log.aggregates.skills.len();
            if !log.aggregates.skills.is_empty() {
                out.extend(replace_metrics_sql(
                    backend,
                    log.aggregates.skills,
                    Some(&[name]),
                ));
            }
        }
        Piece::Rollups { log, .. } => out.extend(rollups_sql(&log, report)?),
        Piece::Sessions { log, stored, .. } => {
            report.session_skills_checked += log.aggregates.session_skills.len();
            report.sessions_checked += log.sessions.len();
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
