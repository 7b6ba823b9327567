//! Reading what the aggregates must be: the log folded page by page, and
//! the opening balances. `rebuild`, `verify` and balance imports all start
//! here; this module depends on none of them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{Aggregates, Invocation, SkillAggregate};
use entity::{skill_invocation, skill_metrics_balance};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::StoreError;
use crate::rows::{aggregate_from_balance, invocation_from_model, merge_skill};

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
    fn of(inv: &Invocation) -> Self {
        Self {
            earliest: inv.invoked_at,
            first_project: inv
                .project_path
                .clone()
                .map(|p| (inv.invoked_at, inv.id.to_string(), p)),
        }
    }

    fn add(&mut self, inv: &Invocation) {
        let other = Self::of(inv);
        self.earliest = self.earliest.min(other.earliest);
        self.first_project = match (self.first_project.take(), other.first_project) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

const PAGE: u64 = 10_000;

/// Folds the log (of `only` those skills, when given) page by page in id
/// order, in bounded memory per page, plus, with `keep_durations`, every
/// completed duration (8 bytes each: `verify` needs them for exact
/// quantiles). Folding every skill also adds the opening balances;
/// callers folding some skills add theirs themselves.
pub(crate) async fn fold_log(
    conn: &impl ConnectionTrait,
    only: Option<&[String]>,
    keep_durations: bool,
) -> Result<Recomputed, StoreError> {
    let mut out = Recomputed {
        durations: keep_durations.then(BTreeMap::new),
        ..Recomputed::default()
    };
    let mut after: Option<String> = None;
    loop {
        let mut query = skill_invocation::Entity::find()
            .order_by_asc(skill_invocation::Column::Id)
            .limit(PAGE);
        if let Some(names) = only {
            query = query.filter(skill_invocation::Column::SkillName.is_in(names.iter().cloned()));
        }
        if let Some(last) = &after {
            query = query.filter(skill_invocation::Column::Id.gt(last.clone()));
        }
        let page = query.all(conn).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for model in page {
            let id = model.id.clone();
            let inv = invocation_from_model(model).map_err(|e| {
                StoreError::Invalid(domain::ValidationError::new(
                    e.field,
                    format!(
                        "{} (in logged invocation {id}, written by another client)",
                        e.reason
                    ),
                ))
            })?;
            out.read += 1;
            out.aggregates.add(&inv);
            if let (Some(all), true, Some(d)) =
                (&mut out.durations, inv.completed, inv.duration_seconds)
            {
                all.entry(inv.skill_name.as_str().to_owned())
                    .or_default()
                    .push(d);
            }
            if let Some(session) = &inv.session_id {
                out.sessions
                    .entry(session.as_str().to_owned())
                    .and_modify(|f| f.add(&inv))
                    .or_insert_with(|| SessionFacts::of(&inv));
            }
        }
    }
    if only.is_none() {
        add_balances(&mut out.aggregates.skills, load_balances(conn, None).await?)?;
    }
    Ok(out)
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
