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
use domain::{Invocation, InvocationId, SessionSkillAggregate, SkillAggregate, search_text};
use entity::skill_metrics;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, FromQueryResult, Value};

use crate::rows::{aggregate_from_model, count_map_to_json};
use crate::sql::{chunk_rows, json, opt_ts, placeholders, stmt, ts};
use crate::{SkillMetricsStore, StoreError};

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
        let batch = Arc::new(vec![invocation]);
        let outcome = self
            .write(|txn| {
                let batch = Arc::clone(&batch);
                Box::pin(async move { apply(txn, &batch).await })
            })
            .await?;
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
        let batch = Arc::new(invocations);
        self.write(|txn| {
            let batch = Arc::clone(&batch);
            Box::pin(async move { apply(txn, &batch).await })
        })
        .await
    }
}

async fn apply(
    txn: &DatabaseTransaction,
    batch: &[Invocation],
) -> Result<BatchOutcome, StoreError> {
    let backend = txn.get_database_backend();
    let mut outcome = BatchOutcome::default();

    // Keep the first of repeated ids; order by id so locks are taken in order.
    let mut seen = HashSet::with_capacity(batch.len());
    let mut fresh: Vec<&Invocation> = Vec::with_capacity(batch.len());
    for inv in batch {
        if seen.insert(inv.id) {
            fresh.push(inv);
        } else {
            outcome.duplicates.push(inv.id);
        }
    }
    fresh.sort_by_key(|inv| inv.id);

    upsert_sessions(txn, backend, &fresh).await?;
    let inserted = insert_log(txn, backend, &fresh).await?;
    let mut skills: BTreeMap<&str, SkillAggregate> = BTreeMap::new();
    let mut pairs: BTreeMap<(&str, &str), SessionSkillAggregate> = BTreeMap::new();
    for inv in &fresh {
        if !inserted.contains(inv.id.as_uuid()) {
            outcome.duplicates.push(inv.id);
            continue;
        }
        outcome.inserted += 1;
        skills.entry(inv.skill_name.as_str()).or_default().fold(inv);
        if let Some(session) = &inv.session_id {
            let row = SessionSkillAggregate::of(inv);
            pairs
                .entry((session.as_str(), inv.skill_name.as_str()))
                .and_modify(|r| r.merge(&row))
                .or_insert(row);
        }
    }
    if outcome.inserted == 0 {
        return Ok(outcome);
    }
    merge_metrics(txn, backend, skills).await?;
    upsert_session_skills(txn, backend, &pairs).await?;
    Ok(outcome)
}

async fn upsert_sessions(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    fresh: &[&Invocation],
) -> Result<(), StoreError> {
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
    for chunk in all.chunks(chunk_rows(3)) {
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
            values.extend([
                Value::from(*id),
                ts(backend, *started),
                Value::from(project.map(str::to_owned)),
            ]);
        }
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

const LOG_COLS: usize = 13;

/// Inserts the events, skipping ids already present; returns the ids inserted.
async fn insert_log(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    fresh: &[&Invocation],
) -> Result<HashSet<uuid::Uuid>, StoreError> {
    let mut inserted = HashSet::with_capacity(fresh.len());
    for chunk in fresh.chunks(chunk_rows(LOG_COLS)) {
        let sql = format!(
            "INSERT INTO skill_invocation (id, skill_name, invoked_at, workflow_path, completed, \
             duration_seconds, error_type, session_id, follow_up_actions, schema_version, \
             project_path, user_context, search_text) VALUES {} \
             ON CONFLICT (id) DO NOTHING RETURNING id",
            placeholders(chunk.len(), LOG_COLS)
        );
        let mut values = Vec::with_capacity(chunk.len() * LOG_COLS);
        for inv in chunk {
            values.extend([
                Value::from(inv.id.to_string()),
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
        for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
            let id: String = row.try_get("", "id")?;
            if let Ok(uuid) = uuid::Uuid::parse_str(&id) {
                inserted.insert(uuid);
            }
        }
    }
    Ok(inserted)
}

const METRICS_COLS: [&str; 22] = [
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
];

/// Locks the skills' rows (creating missing ones), folds the new partial
/// aggregates into them and writes them back.
async fn merge_metrics(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    partials: BTreeMap<&str, SkillAggregate>,
) -> Result<(), StoreError> {
    let names: Vec<&str> = partials.keys().copied().collect();
    let mut stored: BTreeMap<String, SkillAggregate> = BTreeMap::new();
    for chunk in names.chunks(chunk_rows(1)) {
        // One round trip creates missing rows, locks all of them (PostgreSQL
        // row locks; SQLite already holds the write lock) and reads them.
        let sql = format!(
            "INSERT INTO skill_metrics (skill_name) VALUES {} \
             ON CONFLICT (skill_name) DO UPDATE SET skill_name = excluded.skill_name RETURNING *",
            placeholders(chunk.len(), 1)
        );
        let values = chunk.iter().map(|n| Value::from(*n)).collect();
        for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
            let model = skill_metrics::Model::from_query_result(&row, "")?;
            stored.insert(model.skill_name.clone(), aggregate_from_model(&model));
        }
    }
    for (name, partial) in &partials {
        stored.entry((*name).to_owned()).or_default().merge(partial);
    }
    write_metrics(txn, backend, &stored).await
}

/// Writes whole `skill_metrics` rows, derived fields included.
pub(crate) async fn write_metrics(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    rows: &BTreeMap<String, SkillAggregate>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let all: Vec<_> = rows.iter().collect();
    let updates = METRICS_COLS[1..]
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in all.chunks(chunk_rows(METRICS_COLS.len())) {
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
                Value::from(agg.total_duration_seconds),
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
            ]);
        }
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}

/// Adds the batch's per-session-skill partials to `session_skill`.
pub(crate) async fn upsert_session_skills(
    txn: &impl ConnectionTrait,
    backend: DbBackend,
    pairs: &BTreeMap<(&str, &str), SessionSkillAggregate>,
) -> Result<(), StoreError> {
    let all: Vec<_> = pairs.iter().collect();
    for chunk in all.chunks(chunk_rows(7)) {
        let sql = format!(
            "INSERT INTO session_skill (id, session_id, skill_name, invocation_count, \
             first_invoked_at, last_invoked_at, total_duration_seconds) VALUES {} \
             ON CONFLICT (session_id, skill_name) DO UPDATE SET \
               invocation_count = session_skill.invocation_count + excluded.invocation_count, \
               first_invoked_at = CASE WHEN excluded.first_invoked_at < session_skill.first_invoked_at \
                 THEN excluded.first_invoked_at ELSE session_skill.first_invoked_at END, \
               last_invoked_at = CASE WHEN excluded.last_invoked_at > session_skill.last_invoked_at \
                 THEN excluded.last_invoked_at ELSE session_skill.last_invoked_at END, \
               total_duration_seconds = session_skill.total_duration_seconds + excluded.total_duration_seconds",
            placeholders(chunk.len(), 7)
        );
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for ((session, skill), row) in chunk {
            values.extend([
                Value::from(uuid::Uuid::new_v4().to_string()),
                Value::from(*session),
                Value::from(*skill),
                Value::from(row.invocation_count),
                ts(backend, row.first_invoked_at),
                ts(backend, row.last_invoked_at),
                Value::from(row.total_duration_seconds),
            ]);
        }
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    Ok(())
}
