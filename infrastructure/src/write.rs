//! The write path: one transaction inserts events, their sessions and search
//! entries, and brings `skill_metrics` and `session_skill` up to date.
//!
//! A single `record` and a batch share this code: a record is a batch of one.
//! Locks are always taken in the same order — sessions, log, skill_metrics,
//! session_skill, each sorted by key — so concurrent batches cannot deadlock
//! on PostgreSQL; on SQLite the immediate transaction holds the write lock.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Aggregates, Invocation, InvocationId, SkillAggregate, search_text};
use entity::skill_metrics;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Value};
use uuid::Uuid;

use crate::maps::{self, Spill, merge_bounded};

mod tables;
use crate::rollups;
use crate::rows::{aggregate_from_model, count_map_to_json};
use crate::sql::{chunk_rows, json, opt_ts, placeholders, stmt, ts};
use crate::{SkillMetricsStore, StoreError};
pub(crate) use tables::{
    SESSION_SKILL, SESSION_SKILL_PRUNED, session_skills_sql, upsert_session_skills, write_rollups,
};

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Invocations added to the log and counted.
    pub inserted: usize,
    /// Ids already in the log (or repeated within the batch): not counted again.
    pub duplicates: Vec<InvocationId>,
}

impl SkillMetricsStore {
    /// Records one invocation and updates every aggregate, atomically.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use domain::{Invocation, SkillName};
    /// use infrastructure::{SkillMetricsStore, StoreError};
    ///
    /// let store = SkillMetricsStore::connect("sqlite::memory:").await?;
    /// let mut inv = Invocation::new(SkillName::parse("crackerjack-run")?, chrono::Utc::now(), true);
    /// inv.duration_seconds = Some(12.5);
    /// let id = store.record(inv.clone()).await?;
    /// // The same id again is a distinct error and is not counted twice.
    /// assert!(matches!(store.record(inv).await, Err(StoreError::Duplicate { .. })));
    /// assert_eq!(store.metrics(&["crackerjack-run"]).await?[0].total_invocations, 1);
    /// # let _ = id;
    /// # Ok::<(), StoreError>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the field, [`StoreError::Duplicate`]
    /// when the id is already recorded, or a database failure; in every
    /// case nothing is written.
    pub async fn record(&self, invocation: Invocation) -> Result<InvocationId, StoreError> {
        invocation.validate()?;
        let id = invocation.id;
        let outcome = if let Some(direct) = &self.direct {
            direct.record(invocation).await?
        } else {
            self.apply_batch(Arc::new(vec![invocation])).await?
        };
        if outcome.inserted == 0 {
            return Err(StoreError::Duplicate { id: id.to_string() });
        }
        Ok(id)
    }

    /// Records many invocations in one transaction: all or nothing. Ids
    /// already present are skipped and reported, never counted twice.
    ///
    /// # Errors
    /// The first invalid invocation (nothing written), or a database failure.
    pub async fn record_batch(
        &self,
        invocations: Vec<Invocation>,
    ) -> Result<BatchOutcome, StoreError> {
        for inv in &invocations {
            inv.validate()?;
        }
        if invocations.is_empty() {
            return Ok(BatchOutcome::default());
        }
        if let Some(direct) = &self.direct {
            return direct.record_batch(invocations).await;
        }
        self.apply_batch(Arc::new(invocations)).await
    }

    /// The general path: one transaction, rolled back when every event was
    /// already present (so a batch of duplicates writes nothing at all).
    async fn apply_batch(&self, batch: Arc<Vec<Invocation>>) -> Result<BatchOutcome, StoreError> {
        self.write_if(
            |txn| {
                let batch = Arc::clone(&batch);
                Box::pin(async move { apply(txn, &batch).await })
            },
            |outcome| outcome.inserted > 0,
        )
        .await
    }
}

/// One statement to run: SQL with `$n` placeholders and its values.
pub(crate) type Piece = (String, Vec<Value>);

/// The batch's distinct invocations in time order (then id), so that their
/// `seq` follows time within a batch, and the repeated ids.
pub(crate) fn distinct(batch: &[Invocation]) -> (Vec<&Invocation>, Vec<InvocationId>) {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut fresh: Vec<&Invocation> = Vec::with_capacity(batch.len());
    let mut repeated = Vec::new();
    for inv in batch {
        if seen.insert(inv.id) {
            fresh.push(inv);
        } else {
            repeated.push(inv.id);
        }
    }
    fresh.sort_by_key(|inv| (inv.invoked_at, inv.id));
    (fresh, repeated)
}

async fn apply(
    txn: &DatabaseTransaction,
    batch: &[Invocation],
) -> Result<BatchOutcome, StoreError> {
    let backend = txn.get_database_backend();
    let (fresh, repeated) = distinct(batch);
    let mut outcome = BatchOutcome {
        inserted: 0,
        duplicates: repeated,
    };

    for (sql, values) in sessions_sql(backend, &fresh) {
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    let mut inserted = HashSet::with_capacity(fresh.len());
    for (sql, values) in log_sql(backend, &fresh, true) {
        for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
            let id: Uuid = row.try_get("", "id")?;
            inserted.insert(id);
        }
    }
    let kept = settle(&fresh, &inserted, &mut outcome);
    let mut restored = HashSet::new();
    for (sql, values) in restored_sql(&kept) {
        for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
            restored.insert(row.try_get::<Uuid>("", "id")?);
        }
    }
    let kept = uncounted(kept, &restored);
    if kept.is_empty() {
        // Nothing new to count: the caller rolls back when nothing was
        // logged either (the session upserts are undone too).
        return Ok(outcome);
    }
    let folded = Aggregates::<&str>::of(kept);
    let names: Vec<&str> = folded.skills.keys().copied().collect();
    let mut stored: BTreeMap<String, SkillAggregate> = BTreeMap::new();
    for (sql, values) in lock_metrics_sql(&names) {
        for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
            let model = skill_metrics::Model::from_query_result(&row, "")?;
            stored.insert(model.skill_name.clone(), aggregate_from_model(&model)?);
        }
    }
    let mut spill = Spill::default();
    for (name, partial) in &folded.skills {
        merge_bounded(
            name,
            stored.entry((*name).to_owned()).or_default(),
            partial,
            &mut spill,
        )?;
    }
    if !spill.is_empty() {
        for (sql, values) in maps::seed_sql(&spill) {
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
        let mut counts = Vec::new();
        for (sql, values) in maps::add_sql(&spill) {
            for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
                counts.push((
                    row.try_get("", "skill_name")?,
                    row.try_get("", "kind")?,
                    row.try_get("", "item")?,
                    row.try_get("", "count")?,
                ));
            }
        }
        maps::finish(&mut stored, &spill, counts)?;
    }
    write_metrics(txn, backend, &stored).await?;
    upsert_session_skills(txn, backend, SESSION_SKILL, &folded.session_skills).await?;
    write_rollups(txn, backend, rollups::ROLLUPS, &folded.rollups).await?;
    let days = rollups::days_of(&folded.rollups)?;
    write_rollups(txn, backend, rollups::DAYS, &days).await?;
    Ok(outcome)
}

/// The events the log took (their ids in `inserted`); the rest are
/// reported as duplicates.
pub(crate) fn settle<'a>(
    fresh: &[&'a Invocation],
    inserted: &HashSet<Uuid>,
    outcome: &mut BatchOutcome,
) -> Vec<&'a Invocation> {
    let (kept, skipped): (Vec<&Invocation>, Vec<&Invocation>) = fresh
        .iter()
        .partition(|inv| inserted.contains(inv.id.as_uuid()));
    outcome.duplicates.extend(skipped.iter().map(|inv| inv.id));
    outcome.inserted = kept.len();
    kept
}

pub(crate) fn sessions_sql(backend: DbBackend, fresh: &[&Invocation]) -> Vec<Piece> {
    let mut sessions: BTreeMap<&str, (DateTime<Utc>, Option<&str>)> = BTreeMap::new();
    for inv in fresh {
        let Some(id) = &inv.session_id else { continue };
        let entry = sessions
            .entry(id.as_str())
            .or_insert((inv.invoked_at, None));
        entry.0 = entry.0.min(inv.invoked_at);
        entry.1 = entry.1.or(inv.project_path.as_deref());
    }
    let all: Vec<_> = sessions.into_iter().collect();
    all.chunks(chunk_rows(3))
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO sessions (id, started_at, project_path) VALUES {} \
                 ON CONFLICT (id) DO UPDATE SET \
                   started_at = CASE WHEN excluded.started_at < sessions.started_at THEN excluded.started_at ELSE sessions.started_at END, \
                   project_path = COALESCE(sessions.project_path, excluded.project_path) \
                 WHERE excluded.started_at < sessions.started_at \
                    OR (sessions.project_path IS NULL AND excluded.project_path IS NOT NULL)",
                placeholders(chunk.len(), 3)
            );
            let mut values = Vec::with_capacity(chunk.len() * 3);
            for (id, (started, project)) in chunk {
                values.extend([Value::from(*id), ts(backend, *started), Value::from(project.map(str::to_owned))]);
            }
            (sql, values)
        })
        .collect()
}

const LOG_COLS: usize = 13;

/// Where a row of `log_sql` holds its session. The text id is bound there,
/// and the row stores the session's number (D112), read from the
/// `sessions` row that the same write upserted just before.
const SESSION_SLOT: usize = 7;

/// `rows` rows of `log_sql`'s values, numbered placeholders in order, and
/// the select list that reads them (`columnN`, both backends' names for a
/// `VALUES` list's columns) with the session's number in place of its id.
/// The subquery is written once, correlated with each row of the list: a
/// subquery written into each row would keep a cursor per row open on
/// SQLite, and each insert walks every open cursor.
fn log_rows(rows: usize) -> (String, String) {
    let select = (1..=LOG_COLS)
        .map(|c| {
            if c == SESSION_SLOT + 1 {
                format!("(SELECT num FROM sessions WHERE id = v.column{c})")
            } else {
                format!("v.column{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    (select, placeholders(rows, LOG_COLS))
}

/// Inserts of the events, skipping ids already present; with `returning`,
/// each statement returns the ids it inserted.
pub(crate) fn log_sql(backend: DbBackend, fresh: &[&Invocation], returning: bool) -> Vec<Piece> {
    fresh
        .chunks(chunk_rows(LOG_COLS))
        .map(|chunk| {
            let (select, values) = log_rows(chunk.len());
            // `WHERE true`: SQLite's parser needs a WHERE before an upsert
            // clause after a SELECT.
            let sql = format!(
                "INSERT INTO skill_invocation_log (id, skill_name, invoked_at, workflow_path, \
                 completed, duration_seconds, error_type, session_num, follow_up_actions, \
                 schema_version, project_path, user_context, search_text) \
                 SELECT {select} FROM (VALUES {values}) AS v WHERE true \
                 ON CONFLICT (id) DO NOTHING{}",
                if returning { " RETURNING id" } else { "" }
            );
            let mut values = Vec::with_capacity(chunk.len() * LOG_COLS);
            for inv in chunk {
                values.extend([
                    Value::from(*inv.id.as_uuid()),
                    Value::from(inv.skill_name.as_str()),
                    ts(backend, inv.invoked_at),
                    Value::from(inv.workflow_path.clone()),
                    Value::from(inv.completed),
                    Value::from(inv.duration_seconds),
                    Value::from(inv.error_type.clone()),
                    Value::from(inv.session_id.as_ref().map(|s| s.as_str().to_owned())),
                    json(
                        backend,
                        Some(serde_json::Value::from(inv.follow_up_actions.clone())),
                    ),
                    Value::from(1i32),
                    Value::from(inv.project_path.clone()),
                    json(
                        backend,
                        inv.user_context.clone().map(serde_json::Value::Object),
                    ),
                    Value::from(search_text(
                        inv.skill_name.as_str(),
                        inv.workflow_path.as_deref(),
                    )),
                ]);
            }
            (sql, values)
        })
        .collect()
}

/// Which of `kept` (just logged) a prune removed before: their ids are in
/// `pruned_invocations`, and the prune's balances count them already (D83).
pub(crate) fn restored_sql(kept: &[&Invocation]) -> Vec<Piece> {
    kept.chunks(chunk_rows(1))
        .map(|chunk| {
            (
                format!(
                    "SELECT id FROM pruned_invocations WHERE id IN ({})",
                    (1..=chunk.len())
                        .map(|i| format!("${i}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                chunk
                    .iter()
                    .map(|inv| Value::from(*inv.id.as_uuid()))
                    .collect(),
            )
        })
        .collect()
}

/// `kept` without the `restored` ones: what this write adds to the aggregates.
pub(crate) fn uncounted<'a>(
    kept: Vec<&'a Invocation>,
    restored: &HashSet<Uuid>,
) -> Vec<&'a Invocation> {
    if restored.is_empty() {
        return kept;
    }
    kept.into_iter()
        .filter(|inv| !restored.contains(inv.id.as_uuid()))
        .collect()
}

/// Creates missing `skill_metrics` rows, locks them all (PostgreSQL row
/// locks; SQLite already holds the write lock) and returns them, in one
/// statement per chunk.
fn lock_metrics_sql(names: &[&str]) -> Vec<Piece> {
    names
        .chunks(chunk_rows(1))
        .map(|chunk| {
            let sql = format!(
                // The no-op assignment must not touch the key: re-setting
                // skill_name makes SQLite re-check every session_skill row
                // that references it, a cost that grows with the history.
                "INSERT INTO skill_metrics (skill_name) VALUES {} \
                 ON CONFLICT (skill_name) DO UPDATE SET schema_version = skill_metrics.schema_version RETURNING *",
                placeholders(chunk.len(), 1)
            );
            (sql, chunk.iter().map(|n| Value::from(*n)).collect())
        })
        .collect()
}

pub(crate) const METRICS_COLS: [&str; 26] = [
    "skill_name",
    "total_invocations",
    "completed_invocations",
    "abandoned_invocations",
    "total_duration_seconds",
    "min_duration_seconds",
    "max_duration_seconds",
    "p50_duration_seconds",
    "p95_duration_seconds",
    "p99_duration_seconds",
    "workflow_paths",
    "common_errors",
    "follow_up_actions",
    "first_invoked",
    "last_invoked",
    "completion_rate",
    "avg_duration_seconds",
    "schema_version",
    "last_aggregated_at",
    "duration_count",
    "duration_digest",
    "success_rate",
    "total_duration_micros",
    "workflow_paths_other",
    "common_errors_other",
    "follow_up_actions_other",
];

/// Whole `skill_metrics` rows, derived fields included.
pub(crate) fn metrics_sql(
    backend: DbBackend,
    rows: &BTreeMap<String, SkillAggregate>,
) -> Vec<Piece> {
    let now = Utc::now();
    let all: Vec<_> = rows.iter().collect();
    let updates = METRICS_COLS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    all.chunks(chunk_rows(METRICS_COLS.len()))
        .map(|chunk| {
            let sql = format!(
                "INSERT INTO skill_metrics ({}) VALUES {} ON CONFLICT (skill_name) DO UPDATE SET {updates}",
                METRICS_COLS.join(", "),
                placeholders(chunk.len(), METRICS_COLS.len())
            );
            let mut values = Vec::with_capacity(chunk.len() * METRICS_COLS.len());
            for (name, agg) in chunk {
                let p = agg.percentiles();
                let rate = agg.completion_rate();
                values.extend([
                    Value::from(name.as_str()),
                    Value::from(agg.total),
                    Value::from(agg.completed),
                    Value::from(agg.abandoned),
                    Value::from(agg.total_duration_seconds()),
                    Value::from(agg.min_duration_seconds),
                    Value::from(agg.max_duration_seconds),
                    Value::from(p.p50),
                    Value::from(p.p95),
                    Value::from(p.p99),
                    json(backend, Some(count_map_to_json(&agg.workflow_paths))),
                    json(backend, Some(count_map_to_json(&agg.common_errors))),
                    json(backend, Some(count_map_to_json(&agg.follow_up_actions))),
                    opt_ts(backend, agg.first_invoked),
                    opt_ts(backend, agg.last_invoked),
                    Value::from(rate),
                    Value::from(agg.avg_duration_seconds()),
                    Value::from(1i32),
                    ts(backend, now),
                    Value::from(agg.duration_count),
                    Value::from(Some(agg.digest.to_bytes())),
                    Value::from(Some(rate)),
                    Value::from(agg.total_duration_micros),
                    Value::from(agg.others[0]),
                    Value::from(agg.others[1]),
                    Value::from(agg.others[2]),
                ]);
            }
            (sql, values)
        })
        .collect()
}

/// Writes whole `skill_metrics` rows, derived fields included.
pub(crate) async fn write_metrics(
    conn: &impl ConnectionTrait,
    backend: DbBackend,
    rows: &BTreeMap<String, SkillAggregate>,
) -> Result<(), StoreError> {
    for (sql, values) in metrics_sql(backend, rows) {
        conn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}
