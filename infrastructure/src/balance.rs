//! Opening balances: per-skill counts from a legacy file that its invocation
//! list does not explain. They live in `skill_metrics_balance`, keyed by
//! skill and source file, and every aggregate includes them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use domain::SkillAggregate;
use entity::skill_metrics_balance;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Value};

use crate::maps::replace_metrics;
use crate::recompute::{add_balances, fold_log, load_balances, load_pruned_skills};
use crate::rows::{aggregate_from_balance, count_map_to_json};
use crate::sql::{json, opt_ts, stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// Recomputes the named skills' rows from the log and the balances; a skill
/// left with neither loses its row.
pub(crate) async fn rebuild_skills(
    conn: &impl ConnectionTrait,
    names: &[String],
) -> Result<(), StoreError> {
    let backend = conn.get_database_backend();
    let mut skills = fold_log(conn, names).await?.aggregates.skills;
    add_balances(&mut skills, load_balances(conn, Some(names)).await?)?;
    add_balances(&mut skills, load_pruned_skills(conn, Some(names)).await?)?;
    for name in names {
        if !skills.contains_key(name) {
            conn.execute_raw(stmt(
                backend,
                "DELETE FROM skill_metrics WHERE skill_name = $1",
                vec![Value::from(name.as_str())],
            ))
            .await?;
        }
    }
    replace_metrics(conn, backend, skills, Some(names)).await
}

impl SkillMetricsStore {
    /// Replaces the opening balances that came from `source` with `balances`
    /// and brings the affected skills' aggregates up to date, atomically.
    ///
    /// # Errors
    /// A database failure (nothing is changed).
    pub async fn put_balances(
        &self,
        source: &str,
        balances: BTreeMap<String, SkillAggregate>,
    ) -> Result<(), StoreError> {
        let source = source.to_owned();
        let balances = std::sync::Arc::new(balances);
        self.write(move |txn| {
            let source = source.clone();
            let balances = std::sync::Arc::clone(&balances);
            Box::pin(async move {
                let backend = txn.get_database_backend();
                lock_out_writers(txn).await?;
                let old = skill_metrics_balance::Entity::find()
                    .filter(skill_metrics_balance::Column::Source.eq(source.as_str()))
                    .all(txn)
                    .await?;
                let mut touched: BTreeSet<String> = old.into_iter().map(|m| m.skill_name).collect();
                txn.execute_raw(stmt(backend, "DELETE FROM skill_metrics_balance WHERE source = $1", vec![Value::from(source.as_str())]))
                    .await?;
                let now = Utc::now();
                for (skill, b) in balances.iter().filter(|(_, b)| !is_empty(b)) {
                    touched.insert(skill.clone());
                    txn.execute_raw(stmt(
                        backend,
                        "INSERT INTO skill_metrics_balance (skill_name, source, total_invocations, completed_invocations, \
                         abandoned_invocations, total_duration_seconds, total_duration_micros, workflow_paths, common_errors, \
                         follow_up_actions, first_invoked, last_invoked, imported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        vec![
                            Value::from(skill.as_str()),
                            Value::from(source.as_str()),
                            Value::from(b.total),
                            Value::from(b.completed),
                            Value::from(b.abandoned),
                            Value::from(b.total_duration_seconds()),
                            Value::from(b.total_duration_micros),
                            json(backend, Some(count_map_to_json(&b.workflow_paths))),
                            json(backend, Some(count_map_to_json(&b.common_errors))),
                            json(backend, Some(count_map_to_json(&b.follow_up_actions))),
                            opt_ts(backend, b.first_invoked),
                            opt_ts(backend, b.last_invoked),
                            ts(backend, now),
                        ],
                    ))
                    .await?;
                }
                let names: Vec<String> = touched.into_iter().collect();
                rebuild_skills(txn, &names).await
            })
        })
        .await
    }

    /// Every balance row, for copying a store.
    ///
    /// # Errors
    /// A database failure.
    pub async fn balances(&self) -> Result<Vec<(String, String, SkillAggregate)>, StoreError> {
        let rows = skill_metrics_balance::Entity::find()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|m| {
                (
                    m.skill_name.clone(),
                    m.source.clone(),
                    aggregate_from_balance(m),
                )
            })
            .collect())
    }
}

/// On PostgreSQL, waits for every writer of the log to finish and keeps new
/// ones out until this transaction ends (decision D39). The mode conflicts
/// with the row-exclusive lock an insert takes, and with itself, so
/// `rebuild` and balance imports never interleave with each other or with
/// a record: a record that creates a skill's first row cannot be overwritten
/// by a recomputation that did not see it. Readers go on. SQLite's
/// immediate transaction already holds the one write lock.
pub(crate) async fn lock_out_writers(txn: &impl ConnectionTrait) -> Result<(), StoreError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        // Waits for the writers in flight however long they take (D89).
        txn.execute_unprepared("SET LOCAL lock_timeout = 0").await?;
        txn.execute_unprepared("LOCK TABLE skill_invocation_log IN SHARE ROW EXCLUSIVE MODE")
            .await?;
    }
    Ok(())
}

fn is_empty(b: &SkillAggregate) -> bool {
    b.total == 0
        && b.completed == 0
        && b.abandoned == 0
        && b.total_duration_micros == 0
        && b.workflow_paths.is_empty()
        && b.common_errors.is_empty()
        && b.follow_up_actions.is_empty()
}
