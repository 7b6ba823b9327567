//! Retention (decision D83): the one path that deletes from the log. What
//! the removed rows contributed moves into the pruned balances, which every
//! recomputation adds, so the aggregates and rollups stay what they were;
//! their ids stay in `pruned_invocations`, so importing them again (from
//! the archive, say) restores the rows without counting them twice.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use domain::{Aggregates, Invocation, RollupAggregate, SessionSkillAggregate, SkillAggregate};
use entity::skill_invocation;
use sea_orm::{ConnectionTrait, DatabaseTransaction, FromQueryResult, Value};

use crate::balance::lock_out_writers;
use crate::data::{ExportFilter, export_sql};
use crate::recompute::{add_balances, load_pruned_skills};
use crate::rollups::ROLLUPS_PRUNED;
use crate::rows::{count_map_to_json, invocation_from_model};
use crate::sql::{json, opt_ts, stmt, ts};
use crate::write::{SESSION_SKILL_PRUNED, restored_sql, upsert_session_skills, write_rollups};
use crate::{SkillMetricsStore, StoreError};

/// Log rows read per page while folding what a prune removes.
const PAGE: u64 = 5000;

/// What one prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Rows removed from the log.
    pub removed: u64,
    /// Of which a previous prune had counted already (they had been
    /// restored from its archive): no balance changed for them.
    pub counted_before: u64,
    /// The largest `seq` the prune considered: rows written after it were
    /// left in the log whatever their time.
    pub through_seq: i64,
}

impl SkillMetricsStore {
    /// Removes every logged invocation with `invoked_at` before `before`
    /// (and, when `through_seq` is given, a `seq` up to it: the last row an
    /// archive of them read, see [`Self::export_page`]), moving what they
    /// contributed into the pruned balances, in one transaction that keeps
    /// writers out until it is done. Aggregates, rollups and `session_skill`
    /// rows do not change, and `verify` and `rebuild` include the balances.
    ///
    /// # Errors
    /// A database failure (nothing is removed), or a logged row that breaks
    /// the domain rules.
    pub async fn prune(
        &self,
        before: DateTime<Utc>,
        through_seq: Option<i64>,
    ) -> Result<PruneReport, StoreError> {
        self.write(move |txn| Box::pin(async move { prune_in(txn, before, through_seq).await }))
            .await
    }
}

async fn prune_in(
    txn: &DatabaseTransaction,
    before: DateTime<Utc>,
    through_seq: Option<i64>,
) -> Result<PruneReport, StoreError> {
    let backend = txn.get_database_backend();
    lock_out_writers(txn).await?;
    let through = match through_seq {
        Some(seq) => seq,
        None => {
            let row = txn
                .query_one_raw(stmt(
                    backend,
                    "SELECT COALESCE(MAX(seq), 0) AS seq FROM skill_invocation_log",
                    vec![],
                ))
                .await?;
            row.map_or(Ok(0), |r| r.try_get::<i64>("", "seq"))?
        }
    };
    let mut report = PruneReport {
        through_seq: through,
        ..PruneReport::default()
    };
    let folded = fold_doomed(txn, before, through, &mut report).await?;
    write_balances(txn, folded).await?;

    let doomed = || vec![ts(backend, before), Value::from(through)];
    txn.execute_raw(stmt(
        backend,
        "INSERT INTO pruned_invocations (id) SELECT id FROM skill_invocation_log \
         WHERE invoked_at < $1 AND seq <= $2 ON CONFLICT (id) DO NOTHING",
        doomed(),
    ))
    .await?;
    txn.execute_unprepared("INSERT INTO log_prune_gate (id) VALUES (1)")
        .await?;
    let deleted = txn
        .execute_raw(stmt(
            backend,
            "DELETE FROM skill_invocation_log WHERE invoked_at < $1 AND seq <= $2",
            doomed(),
        ))
        .await?
        .rows_affected();
    txn.execute_unprepared("DELETE FROM log_prune_gate").await?;
    if deleted != report.removed {
        return Err(StoreError::Unsupported {
            what: format!(
                "pruning (it read {} rows to remove and found {deleted})",
                report.removed
            ),
            hint: "another process wrote to the log without the store's locks; run it again".into(),
        });
    }
    Ok(report)
}

/// Reads the rows to remove page by page and folds those no prune has
/// counted yet.
async fn fold_doomed(
    txn: &DatabaseTransaction,
    before: DateTime<Utc>,
    through: i64,
    report: &mut PruneReport,
) -> Result<Aggregates<String>, StoreError> {
    let backend = txn.get_database_backend();
    let sql = export_sql(&ExportFilter {
        skill: None,
        since: None,
        until: Some(before),
    });
    let mut folded = Aggregates::<String>::default();
    let mut after = 0i64;
    while after < through {
        let rows = txn
            .query_all_raw(stmt(
                backend,
                &sql,
                vec![Value::from(after), ts(backend, before), Value::from(PAGE)],
            ))
            .await?;
        let models = rows
            .iter()
            .map(|row| skill_invocation::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = models.last() else { break };
        after = last.seq;
        let full = models.len() as u64 == PAGE;
        let page = models
            .into_iter()
            .filter(|m| m.seq <= through)
            .map(|m| invocation_from_model(m).map_err(StoreError::from))
            .collect::<Result<Vec<Invocation>, _>>()?;
        let refs: Vec<&Invocation> = page.iter().collect();
        let mut counted: HashSet<uuid::Uuid> = HashSet::new();
        for (sql, values) in restored_sql(&refs) {
            for row in txn.query_all_raw(stmt(backend, &sql, values)).await? {
                counted.insert(row.try_get("", "id")?);
            }
        }
        for inv in &page {
            report.removed += 1;
            if counted.contains(inv.id.as_uuid()) {
                report.counted_before += 1;
            } else {
                folded.add(inv);
            }
        }
        if !full {
            break;
        }
    }
    Ok(folded)
}

/// Adds `folded` into the three pruned balances.
async fn write_balances(
    txn: &DatabaseTransaction,
    folded: Aggregates<String>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    let names: Vec<String> = folded.skills.keys().cloned().collect();
    let mut skills = load_pruned_skills(txn, Some(&names)).await?;
    add_balances(&mut skills, folded.skills)?;
    for (name, agg) in &skills {
        put_pruned_skill(txn, name, agg).await?;
    }
    let pairs: BTreeMap<(&str, &str), SessionSkillAggregate> = folded
        .session_skills
        .iter()
        .map(|((s, k), v)| ((s.as_str(), k.as_str()), *v))
        .collect();
    upsert_session_skills(txn, backend, SESSION_SKILL_PRUNED, &pairs).await?;
    let hours: BTreeMap<(&str, DateTime<Utc>, &str), RollupAggregate> = folded
        .rollups
        .iter()
        .map(|((s, h, p), v)| ((s.as_str(), *h, p.as_str()), v.clone()))
        .collect();
    write_rollups(txn, backend, ROLLUPS_PRUNED, &hours).await
}

/// Writes `name`'s pruned balance, in place of any it had.
pub(crate) async fn put_pruned_skill(
    txn: &DatabaseTransaction,
    name: &str,
    agg: &SkillAggregate,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    txn.execute_raw(stmt(
        backend,
        PRUNED_SKILL_UPSERT,
        pruned_skill_values(backend, name, agg),
    ))
    .await?;
    Ok(())
}

const PRUNED_SKILL_UPSERT: &str = "INSERT INTO skill_metrics_pruned (skill_name, total_invocations, \
     completed_invocations, abandoned_invocations, total_duration_micros, duration_count, \
     min_duration_seconds, max_duration_seconds, workflow_paths, common_errors, follow_up_actions, \
     first_invoked, last_invoked, duration_digest) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (skill_name) DO UPDATE SET total_invocations = excluded.total_invocations, \
     completed_invocations = excluded.completed_invocations, \
     abandoned_invocations = excluded.abandoned_invocations, \
     total_duration_micros = excluded.total_duration_micros, duration_count = excluded.duration_count, \
     min_duration_seconds = excluded.min_duration_seconds, max_duration_seconds = excluded.max_duration_seconds, \
     workflow_paths = excluded.workflow_paths, common_errors = excluded.common_errors, \
     follow_up_actions = excluded.follow_up_actions, first_invoked = excluded.first_invoked, \
     last_invoked = excluded.last_invoked, duration_digest = excluded.duration_digest";

fn pruned_skill_values(
    backend: sea_orm::DbBackend,
    name: &str,
    agg: &SkillAggregate,
) -> Vec<Value> {
    vec![
        Value::from(name),
        Value::from(agg.total),
        Value::from(agg.completed),
        Value::from(agg.abandoned),
        Value::from(agg.total_duration_micros),
        Value::from(agg.duration_count),
        Value::from(agg.min_duration_seconds),
        Value::from(agg.max_duration_seconds),
        json(backend, Some(count_map_to_json(&agg.workflow_paths))),
        json(backend, Some(count_map_to_json(&agg.common_errors))),
        json(backend, Some(count_map_to_json(&agg.follow_up_actions))),
        opt_ts(backend, agg.first_invoked),
        opt_ts(backend, agg.last_invoked),
        Value::from((agg.duration_count > 0).then(|| agg.digest.to_bytes())),
    ]
}
