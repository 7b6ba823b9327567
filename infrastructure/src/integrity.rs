//! The log is the truth: `rebuild` recomputes every aggregate from it, and
//! `verify` compares what is stored with that recomputation.

use std::collections::BTreeMap;

use domain::{SessionSkillAggregate, SkillAggregate};
use entity::{session_skill, skill_invocation, skill_metrics};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IsolationLevel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use serde::Serialize;

use crate::balance::load_balances;
use crate::rows::{aggregate_from_model, invocation_from_model};
use crate::write::{upsert_session_skills, write_metrics};
use crate::{SkillMetricsStore, StoreError};

/// One difference between stored aggregates and a recomputation from the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// `skill_metrics` or `session_skill`.
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
    /// Every difference found; empty means the aggregates are exact.
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// `true` when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

type Recomputed = (
    u64,
    BTreeMap<String, SkillAggregate>,
    BTreeMap<(String, String), SessionSkillAggregate>,
);

const PAGE: u64 = 10_000;

/// Folds the log (of `only` those skills, when given) page by page in id
/// order, in bounded memory per page. Folding every skill also adds the
/// opening balances; callers folding some skills add theirs themselves.
pub(crate) async fn fold_log(
    conn: &impl ConnectionTrait,
    only: Option<&[String]>,
) -> Result<Recomputed, StoreError> {
    let mut skills: BTreeMap<String, SkillAggregate> = BTreeMap::new();
    let mut pairs: BTreeMap<(String, String), SessionSkillAggregate> = BTreeMap::new();
    let mut read = 0u64;
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
            read += 1;
            skills
                .entry(inv.skill_name.as_str().to_owned())
                .or_default()
                .fold(&inv);
            if let Some(session) = &inv.session_id {
                let row = SessionSkillAggregate::of(&inv);
                pairs
                    .entry((
                        session.as_str().to_owned(),
                        inv.skill_name.as_str().to_owned(),
                    ))
                    .and_modify(|r| r.merge(&row))
                    .or_insert(row);
            }
        }
    }
    if only.is_none() {
        for (name, balance) in load_balances(conn, None).await? {
            skills.entry(name).or_default().merge(&balance);
        }
    }
    Ok((read, skills, pairs))
}

impl SkillMetricsStore {
    /// Recomputes every aggregate from the log and replaces the stored ones,
    /// in one transaction that keeps writers out until it is done.
    ///
    /// # Errors
    /// A database failure (nothing is changed), or a logged row that breaks
    /// the domain rules (written by another client).
    pub async fn rebuild(&self) -> Result<VerifyReport, StoreError> {
        self.write(|txn| {
            Box::pin(async move {
                let backend = txn.get_database_backend();
                if backend == DbBackend::Postgres {
                    // Writers wait; readers go on.
                    txn.execute_unprepared("LOCK TABLE skill_invocation IN SHARE MODE")
                        .await?;
                }
                let (read, skills, pairs) = fold_log(txn, None).await?;
                txn.execute_unprepared("DELETE FROM session_skill").await?;
                txn.execute_unprepared("DELETE FROM skill_metrics").await?;
                write_metrics(txn, backend, &skills).await?;
                let borrowed: BTreeMap<(&str, &str), SessionSkillAggregate> = pairs
                    .iter()
                    .map(|((s, k), v)| ((s.as_str(), k.as_str()), *v))
                    .collect();
                upsert_session_skills(txn, backend, &borrowed).await?;
                Ok(VerifyReport {
                    invocations_read: read,
                    skills_checked: skills.len(),
                    session_skills_checked: pairs.len(),
                    differences: Vec::new(),
                })
            })
        })
        .await
    }

    /// Compares the stored aggregates with a recomputation from the log, on
    /// one consistent snapshot, and lists every difference.
    ///
    /// # Errors
    /// A database failure.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
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
        let (read, expected, expected_pairs) = fold_log(&txn, None).await?;
        let stored = skill_metrics::Entity::find()
            .all(&txn)
            .await
            .map_err(|e| self.err(e))?;
        let stored_pairs = session_skill::Entity::find()
            .all(&txn)
            .await
            .map_err(|e| self.err(e))?;
        txn.commit().await.map_err(|e| self.err(e))?;

        let mut report = VerifyReport {
            invocations_read: read,
            ..Default::default()
        };
        let mut stored: BTreeMap<String, skill_metrics::Model> = stored
            .into_iter()
            .map(|m| (m.skill_name.clone(), m))
            .collect();
        for (name, want) in &expected {
            report.skills_checked += 1;
            match stored.remove(name) {
                Some(model) => compare_skill(name, &model, want, &mut report.differences),
                None => report.differences.push(diff(
                    "skill_metrics",
                    name,
                    "row",
                    "missing",
                    "present",
                )),
            }
        }
        for name in stored.keys() {
            report.differences.push(diff(
                "skill_metrics",
                name,
                "row",
                "present",
                "missing (no invocations)",
            ));
        }
        let mut stored_pairs: BTreeMap<(String, String), session_skill::Model> = stored_pairs
            .into_iter()
            .map(|m| ((m.session_id.clone(), m.skill_name.clone()), m))
            .collect();
        for (key, want) in &expected_pairs {
            report.session_skills_checked += 1;
            let label = format!("{} / {}", key.0, key.1);
            match stored_pairs.remove(key) {
                Some(m) => {
                    let d = &mut report.differences;
                    check(
                        d,
                        "session_skill",
                        &label,
                        "invocation_count",
                        m.invocation_count,
                        want.invocation_count,
                    );
                    check(
                        d,
                        "session_skill",
                        &label,
                        "first_invoked_at",
                        m.first_invoked_at,
                        want.first_invoked_at,
                    );
                    check(
                        d,
                        "session_skill",
                        &label,
                        "last_invoked_at",
                        m.last_invoked_at,
                        want.last_invoked_at,
                    );
                    check_f(
                        d,
                        "session_skill",
                        &label,
                        "total_duration_seconds",
                        Some(m.total_duration_seconds),
                        Some(want.total_duration_seconds),
                    );
                }
                None => report.differences.push(diff(
                    "session_skill",
                    &label,
                    "row",
                    "missing",
                    "present",
                )),
            }
        }
        for (s, k) in stored_pairs.keys() {
            report.differences.push(diff(
                "session_skill",
                &format!("{s} / {k}"),
                "row",
                "present",
                "missing",
            ));
        }
        Ok(report)
    }
}

fn diff(
    table: &str,
    key: &str,
    field: &str,
    stored: impl ToString,
    expected: impl ToString,
) -> Difference {
    Difference {
        table: table.to_owned(),
        key: key.to_owned(),
        field: field.to_owned(),
        stored: stored.to_string(),
        expected: expected.to_string(),
    }
}

fn check<T: PartialEq + std::fmt::Debug>(
    d: &mut Vec<Difference>,
    table: &str,
    key: &str,
    field: &str,
    stored: T,
    expected: T,
) {
    if stored != expected {
        d.push(diff(
            table,
            key,
            field,
            format!("{stored:?}"),
            format!("{expected:?}"),
        ));
    }
}

/// Floats compare with a relative tolerance: sums depend on the order events arrived in.
fn check_f(
    d: &mut Vec<Difference>,
    table: &str,
    key: &str,
    field: &str,
    stored: Option<f64>,
    expected: Option<f64>,
) {
    let same = match (stored, expected) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (a, b) => a == b,
    };
    if !same {
        d.push(diff(
            table,
            key,
            field,
            format!("{stored:?}"),
            format!("{expected:?}"),
        ));
    }
}

fn compare_skill(
    name: &str,
    m: &skill_metrics::Model,
    want: &SkillAggregate,
    d: &mut Vec<Difference>,
) {
    let t = "skill_metrics";
    let have = aggregate_from_model(m);
    let p = want.percentiles();
    check(
        d,
        t,
        name,
        "total_invocations",
        m.total_invocations,
        want.total,
    );
    check(
        d,
        t,
        name,
        "completed_invocations",
        m.completed_invocations,
        want.completed,
    );
    check(
        d,
        t,
        name,
        "abandoned_invocations",
        m.abandoned_invocations,
        want.abandoned,
    );
    check(
        d,
        t,
        name,
        "duration_count",
        m.duration_count,
        want.duration_count,
    );
    check_f(
        d,
        t,
        name,
        "total_duration_seconds",
        Some(m.total_duration_seconds),
        Some(want.total_duration_seconds),
    );
    check_f(
        d,
        t,
        name,
        "min_duration_seconds",
        m.min_duration_seconds,
        want.min_duration_seconds,
    );
    check_f(
        d,
        t,
        name,
        "max_duration_seconds",
        m.max_duration_seconds,
        want.max_duration_seconds,
    );
    check_f(
        d,
        t,
        name,
        "avg_duration_seconds",
        m.avg_duration_seconds,
        want.avg_duration_seconds(),
    );
    check_f(
        d,
        t,
        name,
        "completion_rate",
        Some(m.completion_rate),
        Some(want.completion_rate()),
    );
    check_f(
        d,
        t,
        name,
        "success_rate",
        m.success_rate,
        Some(want.completion_rate()),
    );
    check_f(
        d,
        t,
        name,
        "p50_duration_seconds",
        m.p50_duration_seconds,
        p.p50,
    );
    check_f(
        d,
        t,
        name,
        "p95_duration_seconds",
        m.p95_duration_seconds,
        p.p95,
    );
    check_f(
        d,
        t,
        name,
        "p99_duration_seconds",
        m.p99_duration_seconds,
        p.p99,
    );
    check(
        d,
        t,
        name,
        "duration_digest",
        have.digest.count(),
        want.digest.count(),
    );
    check(
        d,
        t,
        name,
        "workflow_paths",
        &have.workflow_paths,
        &want.workflow_paths,
    );
    check(
        d,
        t,
        name,
        "common_errors",
        &have.common_errors,
        &want.common_errors,
    );
    check(
        d,
        t,
        name,
        "follow_up_actions",
        &have.follow_up_actions,
        &want.follow_up_actions,
    );
    check(
        d,
        t,
        name,
        "first_invoked",
        m.first_invoked,
        want.first_invoked,
    );
    check(
        d,
        t,
        name,
        "last_invoked",
        m.last_invoked,
        want.last_invoked,
    );
}
