//! Reading what the aggregates must be: the log folded page by page, and
//! the opening balances. `rebuild`, `verify` and balance imports all start
//! here; this module depends on none of them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use domain::{Aggregates, Invocation, SkillAggregate};
use entity::{skill_invocation, skill_metrics_balance, skill_metrics_pruned};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, Select, Value,
};

use crate::StoreError;
use crate::rows::{aggregate_from_balance, aggregate_from_pruned, logged_invocation, merge_skill};
use crate::sql::{log_page_sql, stmt};

/// What the log (and the balances) say the aggregates must be.
#[derive(Default)]
pub(crate) struct Recomputed {
    /// Invocations read.
    pub(crate) read: u64,
    /// Per skill and per (session, skill).
    pub(crate) aggregates: Aggregates<String>,
    /// Per session named in the log.
    pub(crate) sessions: BTreeMap<String, SessionFacts>,
    /// Per skill, every completed duration, when asked for (`verify`).
    pub(crate) durations: Option<BTreeMap<String, Vec<f64>>>,
    /// Skills some of whose durations left the log with a prune: their
    /// quantiles can only be checked against the merged digest (D83).
    pub(crate) pruned_durations: BTreeSet<String>,
}

/// What the log fixes about one session.
#[derive(Debug, Clone)]
pub(crate) struct SessionFacts {
    /// Its earliest invocation.
    pub(crate) earliest: DateTime<Utc>,
    /// The project of its earliest invocation that names one, as
    /// (invoked_at, id, project): the one `rebuild` restores when missing.
    pub(crate) first_project: Option<(DateTime<Utc>, String, String)>,
}

impl SessionFacts {
    pub(crate) fn of(inv: &Invocation) -> Self {
        Self {
            earliest: inv.invoked_at,
            first_project: inv
                .project_path
                .clone()
                .map(|p| (inv.invoked_at, inv.id.to_string(), p)),
        }
    }

    pub(crate) fn add(&mut self, inv: &Invocation) {
        let other = Self::of(inv);
        self.earliest = self.earliest.min(other.earliest);
        self.first_project = match (self.first_project.take(), other.first_project) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

const PAGE: u64 = 10_000;

/// Folds the log rows of the skills `only` page by page in the order of
/// writing. Rows a prune had removed and an import restored are in the
/// prune's balances and are not folded again; callers add the balances
/// themselves. `verify` and `rebuild`, which read every skill, read the log
/// piece by piece instead (`sweep.rs`).
pub(crate) async fn fold_log(
    conn: &impl ConnectionTrait,
    only: &[String],
) -> Result<Recomputed, StoreError> {
    let mut out = Recomputed::default();
    if only.is_empty() {
        return Ok(out);
    }
    let mut after: i64 = 0;
    loop {
        // In the order of writing: on SQLite the table's own order (its
        // rowid), on PostgreSQL the `seq` index; either way one pass.
        let names = (2..only.len() + 2)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = log_page_sql(
            &format!(
                "NOT EXISTS (SELECT 1 FROM pruned_invocations p \
                 WHERE p.id = skill_invocation_log.id) \
                 AND seq > $1 AND skill_name IN ({names})"
            ),
            &[("seq", "")],
            &format!("${}", only.len() + 2),
        );
        let mut values = vec![Value::from(after)];
        values.extend(only.iter().map(|name| Value::from(name.as_str())));
        values.push(Value::from(i64::try_from(PAGE).unwrap_or(i64::MAX)));
        let page = conn
            .query_all_raw(stmt(conn.get_database_backend(), &sql, values))
            .await?
            .iter()
            .map(|row| skill_invocation::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for model in page {
            let inv = logged_invocation(model)?;
            out.read += 1;
            out.aggregates.add(&inv);
        }
    }
    Ok(out)
}

/// Every pruned balance (of `skills` only, when given), per skill.
pub(crate) async fn load_pruned_skills(
    conn: &impl ConnectionTrait,
    skills: Option<&[String]>,
) -> Result<BTreeMap<String, SkillAggregate>, StoreError> {
    let mut query = skill_metrics_pruned::Entity::find();
    if let Some(names) = skills {
        query = query.filter(skill_metrics_pruned::Column::SkillName.is_in(names.iter().cloned()));
    }
    pruned_skills_of(conn, query).await
}

/// The pruned balances `query` selects, per skill.
pub(crate) async fn pruned_skills_of(
    conn: &impl ConnectionTrait,
    query: Select<skill_metrics_pruned::Entity>,
) -> Result<BTreeMap<String, SkillAggregate>, StoreError> {
    query
        .all(conn)
        .await?
        .iter()
        .map(|row| Ok((row.skill_name.clone(), aggregate_from_pruned(row)?)))
        .collect()
}

/// Every balance (of `skills` only, when given), summed per skill.
pub(crate) async fn load_balances(
    conn: &impl ConnectionTrait,
    skills: Option<&[String]>,
) -> Result<BTreeMap<String, SkillAggregate>, StoreError> {
    let mut query = skill_metrics_balance::Entity::find();
    if let Some(names) = skills {
        query = query.filter(skill_metrics_balance::Column::SkillName.is_in(names.iter().cloned()));
    }
    balances_of(conn, query).await
}

/// The balances `query` selects, summed per skill.
pub(crate) async fn balances_of(
    conn: &impl ConnectionTrait,
    query: Select<skill_metrics_balance::Entity>,
) -> Result<BTreeMap<String, SkillAggregate>, StoreError> {
    let mut out: BTreeMap<String, SkillAggregate> = BTreeMap::new();
    for row in query.all(conn).await? {
        let into = out.entry(row.skill_name.clone()).or_default();
        merge_skill(&row.skill_name, into, &aggregate_from_balance(&row))?;
    }
    Ok(out)
}

/// Adds `balances` into the per-skill aggregates `skills`.
///
/// # Errors
/// [`StoreError::Digest`] when a digest cannot be merged.
pub(crate) fn add_balances(
    skills: &mut BTreeMap<String, SkillAggregate>,
    balances: BTreeMap<String, SkillAggregate>,
) -> Result<(), StoreError> {
    for (name, balance) in balances {
        merge_skill(&name, skills.entry(name.clone()).or_default(), &balance)?;
    }
    Ok(())
}
