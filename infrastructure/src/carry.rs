//! What prunes left, carried from one store to another (decision D102):
//! `copy` of a pruned store brings the ids the prunes removed and their
//! balances, so that the copy counts what the original counts.

use entity::{
    pruned_invocations, session_skill_pruned, skill_metrics_pruned, skill_rollups_pruned,
};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    EntityTrait, IsolationLevel, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, Value,
};

use crate::balance::lock_out_writers;
use crate::prune::put_pruned_skill;
use crate::recompute::load_pruned_skills;
use crate::rollups::{ROLLUPS_PRUNED, from_pruned_model, upsert_sql};
use crate::sql::{placeholders, stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// Rows read and written per statement.
const PAGE: u64 = 2000;

impl SkillMetricsStore {
    /// Whether a prune has left anything here: a removed id or a balance.
    ///
    /// # Errors
    /// A database failure.
    pub async fn has_pruned(&self) -> Result<bool, StoreError> {
        any_pruned(&self.db).await.map_err(|e| self.err(e))
    }

    /// Carries what prunes left in this store (the ids they removed and the
    /// three pruned balances) into `to`, in one transaction of `to`'s that
    /// keeps its writers out, then rebuilds `to`'s aggregates so that they
    /// count the balances (D102). Returns the ids carried; 0, and nothing
    /// written, when this store was never pruned.
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] when `to` has been pruned itself (its
    /// balances and these could count the same invocation twice; nothing
    /// is written), or a database failure: of the carry (nothing is
    /// carried), or of the rebuild after it (the carry stays, and `to`'s
    /// aggregates count the balances only after a [`Self::rebuild`];
    /// [`Self::has_pruned`] on `to` then answers true).
    pub async fn copy_pruned_into(&self, to: &SkillMetricsStore) -> Result<u64, StoreError> {
        if !self.has_pruned().await? {
            return Ok(0);
        }
        let source = self.db.clone();
        let carried = to
            .write(move |txn| {
                let source = source.clone();
                Box::pin(async move { carry(&source, txn).await })
            })
            .await?;
        to.rebuild().await?;
        Ok(carried)
    }
}

async fn any_pruned(conn: &impl ConnectionTrait) -> Result<bool, sea_orm::DbErr> {
    Ok(pruned_invocations::Entity::find()
        .one(conn)
        .await?
        .is_some()
        || skill_metrics_pruned::Entity::find()
            .one(conn)
            .await?
            .is_some())
}

/// Copies the source's pruned ids and balances into `txn`, from one
/// snapshot of the source.
async fn carry(source: &DatabaseConnection, txn: &DatabaseTransaction) -> Result<u64, StoreError> {
    lock_out_writers(txn).await?;
    if any_pruned(txn).await? {
        return Err(StoreError::Unsupported {
            what: "copying a pruned store into a store that has been pruned itself".into(),
            hint: "copy into a new store, or into one never pruned".into(),
        });
    }
    let src = match source.get_database_backend() {
        DbBackend::Postgres => {
            source
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        }
        _ => source.begin().await?,
    };
    let backend = txn.get_database_backend();
    let mut carried = 0u64;

    // The removed ids, in pages by id.
    let mut after: Option<uuid::Uuid> = None;
    loop {
        let mut query = pruned_invocations::Entity::find();
        if let Some(after) = after {
            query = query.filter(pruned_invocations::Column::Id.gt(after));
        }
        let page = query
            .order_by_asc(pruned_invocations::Column::Id)
            .limit(PAGE)
            .all(&src)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        carried += page.len() as u64;
        let sql = format!(
            "INSERT INTO pruned_invocations (id) VALUES {}",
            placeholders(page.len(), 1)
        );
        let values = page.into_iter().map(|m| Value::from(m.id)).collect();
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }

    // Each skill's balance, and its hours. A prune writes both from one
    // fold, so every pruned hour has its skill's balance; an hour without
    // one would otherwise be left behind without a word.
    let skills = load_pruned_skills(&src, None).await?;
    let stray: i64 = src
        .query_one_raw(stmt(
            src.get_database_backend(),
            "SELECT COUNT(*) AS stray FROM skill_rollups_pruned r WHERE NOT EXISTS \
             (SELECT 1 FROM skill_metrics_pruned m WHERE m.skill_name = r.skill_name)",
            vec![],
        ))
        .await?
        .map_or(Ok(0), |r| r.try_get("", "stray"))?;
    if stray > 0 {
        return Err(StoreError::Unsupported {
            what: format!("copying {stray} pruned hourly rows of skills with no pruned balance"),
            hint: "run `skill-metrics verify` on the store copied from".into(),
        });
    }
    for (name, agg) in &skills {
        put_pruned_skill(txn, name, agg).await?;
        let hours = skill_rollups_pruned::Entity::find()
            .filter(skill_rollups_pruned::Column::SkillName.eq(name.as_str()))
            .all(&src)
            .await?
            .into_iter()
            .map(from_pruned_model)
            .collect::<Result<Vec<_>, _>>()?;
        for (sql, values) in upsert_sql(backend, ROLLUPS_PRUNED, hours.iter().map(|(k, a)| (k, a)))
        {
            txn.execute_raw(stmt(backend, &sql, values)).await?;
        }
    }
    // The session-skill balances, in pages by id.
    let mut after: Option<String> = None;
    loop {
        let mut query = session_skill_pruned::Entity::find();
        if let Some(after) = &after {
            query = query.filter(session_skill_pruned::Column::Id.gt(after.as_str()));
        }
        let page = query
            .order_by_asc(session_skill_pruned::Column::Id)
            .limit(PAGE)
            .all(&src)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let sql = format!(
            "INSERT INTO session_skill_pruned (id, session_id, skill_name, invocation_count, \
             first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
             VALUES {}",
            placeholders(page.len(), 8)
        );
        let mut values = Vec::with_capacity(page.len() * 8);
        for m in page {
            values.extend([
                Value::from(m.id),
                Value::from(m.session_id),
                Value::from(m.skill_name),
                Value::from(m.invocation_count),
                ts(backend, m.first_invoked_at),
                ts(backend, m.last_invoked_at),
                Value::from(m.total_duration_seconds),
                Value::from(m.total_duration_micros),
            ]);
        }
        txn.execute_raw(stmt(backend, &sql, values)).await?;
    }
    src.commit().await?;
    Ok(carried)
}
