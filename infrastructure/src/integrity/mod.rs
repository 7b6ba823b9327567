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

use crate::maps::replace_metrics;
use crate::sql::{placeholders, stmt, ts};
use crate::sweep::{Piece, PieceSizes, Sweep, skills_between};
use crate::write::{SESSION_SKILL, upsert_session_skills};
use crate::{SkillMetricsStore, StoreError};

mod compare;

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
    /// (of `session_skill`, and on PostgreSQL of the rollups, only the rows
    /// that differ, D99 and D100), in one
    /// transaction that keeps writers out until it is done (each
    /// waits at most its busy timeout, D89). The log is read piece by piece
    /// (D91), so memory stays bounded whatever its length. Sessions are
    /// repaired where the log contradicts them: a start after the session's
    /// first invocation, or no project where an invocation names one.
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
        let direct = self.direct.clone();
        self.write(move |txn| {
            let direct = direct.clone();
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
                // The pieces are read after these deletes: the sweep also
                // looks for stored rows, and finds none of these tables'.
                // `session_skill` (a row per session and skill, the
                // largest) is instead compared chunk by chunk, and only what
                // differs from the log is written (D99); on PostgreSQL the
                // rollups likewise, piece by piece (D100), and the sweep
                // cuts its pieces by them as `verify` does. SQLite empties
                // them: its times are text (D99).
                let emptied: &[&str] = match backend {
                    DbBackend::Postgres => &["skill_map_counts", "skill_metrics"],
                    _ => &[
                        "skill_map_counts",
                        "skill_metrics",
                        "skill_rollups",
                        "skill_rollups_daily",
                    ],
                };
                for table in emptied {
                    txn.execute_unprepared(&format!("DELETE FROM {table}"))
                        .await?;
                }
                // Filled from the log: recorded in the same transaction.
                txn.execute_unprepared("UPDATE skill_rollups_state SET filled = TRUE")
                    .await?;
                let mut report = VerifyReport::default();
                // On a SQLite file the log's rows are read by a connection
                // of the sweep's own: this transaction holds the write lock
                // and changes nothing in the log, so it reads the same log.
                let lite = match &direct {
                    Some(direct) => Some(direct.reader_in_transaction()?),
                    None => None,
                };
                let mut sweep = Sweep::start(txn, sizes, false, lite).await?;
                while let Some(piece) = sweep.next(txn).await? {
                    rewrite(txn, piece, &mut report).await?;
                }
                report.invocations_read = sweep.read;
                Ok(report)
            })
        })
        .await
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

/// Writes a piece's hourly rollups, and the daily ones they add up to. With
/// `stored` (PostgreSQL, D100), those are the piece's stored rows, left as
/// they are where equal to the log's: only rows that differ are written,
/// and rows the log has none of deleted. Without, `rebuild` has emptied
/// both tables and every row is written.
async fn write_rollups(
    txn: &DatabaseTransaction,
    log: &crate::recompute::Recomputed,
    stored: Option<RollupScope<'_>>,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let hours = &log.aggregates.rollups;
    let days = crate::rollups::days_of(hours)?;
    report.rollups_checked += hours.len();
    report.day_rollups_checked += days.len();
    let (stored_hours, stored_days) = match stored {
        Some(scope) => {
            let (h, d) = stored_rollups(txn, scope).await?;
            (Some(h), Some(d))
        }
        None => (None, None),
    };
    for (table, rows, stored) in [
        (crate::rollups::ROLLUPS, hours, stored_hours),
        (crate::rollups::DAYS, &days, stored_days),
    ] {
        let (gone, write) = match stored {
            Some(stored) => compare::rollup_repairs(rows, stored),
            None => (Vec::new(), rows.iter().collect()),
        };
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

/// Writes one piece in place of the rows `rebuild` deleted (on
/// PostgreSQL, of `session_skill` and the rollups only the stored rows
/// that differ from the log, D99 and D100).
async fn rewrite(
    txn: &DatabaseTransaction,
    piece: Piece,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    // On PostgreSQL the rollups were kept and are compared (D100); SQLite
    // has emptied them, as it stores their times as text (D99).
    let keep_equal = backend == DbBackend::Postgres;
    match piece {
        Piece::Range { after, before, log } => {
            report.skills_checked += log.aggregates.skills.len();
            let scope = RollupScope::Skills((after.as_deref(), before.as_deref()));
            write_rollups(txn, &log, keep_equal.then_some(scope), report).await?;
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
            write_rollups(txn, &log, keep_equal.then_some(scope), report).await?;
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
            // SQLite replaces every row (D99): equal decoded times may
            // still be stored in a form its text comparisons misorder.
            let (gone, write) = compare::session_skill_repairs(&log, kept, keep_equal);
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
                    txn.execute_raw(stmt(
                        backend,
                        "UPDATE sessions SET started_at = $1, project_path = $2 WHERE id = $3",
                        vec![
                            ts(backend, started),
                            Value::from(project),
                            Value::from(session.id),
                        ],
                    ))
                    .await?;
                }
            }
        }
    }
    Ok(())
}
