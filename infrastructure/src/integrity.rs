//! The log is the truth: `rebuild` recomputes every aggregate from it, and
//! `verify` compares what is stored with that recomputation.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{DIGEST_BOUND, Invocation, SessionSkillAggregate, SkillAggregate, exact_percentile};
use entity::{session_skill, sessions, skill_invocation, skill_metrics};
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IsolationLevel, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait, Value,
};
use serde::Serialize;

use crate::balance::load_balances;
use crate::rows::{aggregate_from_model, count_map_from_json, invocation_from_model, merge_skill};
use crate::sql::{stmt, ts};
use crate::write::{upsert_session_skills, write_metrics};
use crate::{SkillMetricsStore, StoreError};

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
    /// Every difference found; empty means the aggregates are exact.
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    /// `true` when nothing differs.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// What the log (and the balances) say the aggregates must be.
#[derive(Default)]
pub(crate) struct Recomputed {
    /// Invocations read.
    pub(crate) read: u64,
    /// Per skill.
    pub(crate) skills: BTreeMap<String, SkillAggregate>,
    /// Per (session, skill).
    pub(crate) pairs: BTreeMap<(String, String), SessionSkillAggregate>,
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
            let name = inv.skill_name.as_str();
            out.skills.entry(name.to_owned()).or_default().fold(&inv);
            if let (Some(all), true, Some(d)) =
                (&mut out.durations, inv.completed, inv.duration_seconds)
            {
                all.entry(name.to_owned()).or_default().push(d);
            }
            if let Some(session) = &inv.session_id {
                let row = SessionSkillAggregate::of(&inv);
                out.pairs
                    .entry((session.as_str().to_owned(), name.to_owned()))
                    .and_modify(|r| r.merge(&row))
                    .or_insert(row);
                out.sessions
                    .entry(session.as_str().to_owned())
                    .and_modify(|f| f.add(&inv))
                    .or_insert_with(|| SessionFacts::of(&inv));
            }
        }
    }
    if only.is_none() {
        for (name, balance) in load_balances(conn, None).await? {
            merge_skill(&name, out.skills.entry(name.clone()).or_default(), &balance)?;
        }
    }
    Ok(out)
}

impl SkillMetricsStore {
    /// Recomputes every aggregate from the log and replaces the stored ones,
    /// in one transaction that keeps writers out until it is done. Sessions
    /// are repaired where the log contradicts them: a start after the
    /// session's first invocation, or no project where an invocation names
    /// one.
    ///
    /// # Errors
    /// A database failure (nothing is changed), or a logged row that breaks
    /// the domain rules (written by another client).
    pub async fn rebuild(&self) -> Result<VerifyReport, StoreError> {
        self.write(|txn| {
            Box::pin(async move {
                let backend = txn.get_database_backend();
                if backend == DbBackend::Postgres {
                    // As lock_out_writers, and `sessions` first, in the order
                    // a record takes them: a record that has upserted its
                    // session waits here, not halfway through (no deadlock
                    // with the session repairs below).
                    txn.execute_unprepared(
                        "LOCK TABLE sessions, skill_invocation IN SHARE ROW EXCLUSIVE MODE",
                    )
                    .await?;
                }
                let log = fold_log(txn, None, false).await?;
                txn.execute_unprepared("DELETE FROM session_skill").await?;
                txn.execute_unprepared("DELETE FROM skill_metrics").await?;
                write_metrics(txn, backend, &log.skills).await?;
                let borrowed: BTreeMap<(&str, &str), SessionSkillAggregate> = log
                    .pairs
                    .iter()
                    .map(|((s, k), v)| ((s.as_str(), k.as_str()), *v))
                    .collect();
                upsert_session_skills(txn, backend, &borrowed).await?;
                let stored = sessions::Entity::find().all(txn).await?;
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
                Ok(VerifyReport {
                    invocations_read: log.read,
                    skills_checked: log.skills.len(),
                    session_skills_checked: log.pairs.len(),
                    sessions_checked: log.sessions.len(),
                    differences: Vec::new(),
                })
            })
        })
        .await
    }

    /// Compares the stored aggregates with a recomputation from the log, on
    /// one consistent snapshot, and lists every difference: every
    /// `skill_metrics` column (durations exactly, percentiles within the
    /// digest's bound of the log's exact ones), every `session_skill` row,
    /// and what the log fixes of each session.
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
        let log = fold_log(&txn, None, true).await?;
        let stored = skill_metrics::Entity::find()
            .all(&txn)
            .await
            .map_err(|e| self.err(e))?;
        let stored_pairs = session_skill::Entity::find()
            .all(&txn)
            .await
            .map_err(|e| self.err(e))?;
        let stored_sessions = sessions::Entity::find()
            .all(&txn)
            .await
            .map_err(|e| self.err(e))?;
        txn.commit().await.map_err(|e| self.err(e))?;

        let mut report = VerifyReport {
            invocations_read: log.read,
            ..Default::default()
        };
        let mut stored: BTreeMap<String, skill_metrics::Model> = stored
            .into_iter()
            .map(|m| (m.skill_name.clone(), m))
            .collect();
        let none = Vec::new();
        let durations = log.durations.unwrap_or_default();
        for (name, want) in &log.skills {
            report.skills_checked += 1;
            match stored.remove(name) {
                Some(model) => {
                    let exact = durations.get(name).unwrap_or(&none);
                    compare_skill(name, &model, want, exact, &mut report.differences);
                }
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
        for (key, want) in &log.pairs {
            report.session_skills_checked += 1;
            let label = format!("{} / {}", key.0, key.1);
            match stored_pairs.remove(key) {
                Some(m) => {
                    let d = &mut report.differences;
                    let t = "session_skill";
                    check(
                        d,
                        t,
                        &label,
                        "invocation_count",
                        m.invocation_count,
                        want.invocation_count,
                    );
                    check(
                        d,
                        t,
                        &label,
                        "first_invoked_at",
                        m.first_invoked_at,
                        want.first_invoked_at,
                    );
                    check(
                        d,
                        t,
                        &label,
                        "last_invoked_at",
                        m.last_invoked_at,
                        want.last_invoked_at,
                    );
                    check(
                        d,
                        t,
                        &label,
                        "total_duration_micros",
                        m.total_duration_micros,
                        want.total_duration_micros,
                    );
                    check(
                        d,
                        t,
                        &label,
                        "total_duration_seconds",
                        m.total_duration_seconds,
                        want.total_duration_seconds(),
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
        let stored_sessions: BTreeMap<String, sessions::Model> = stored_sessions
            .into_iter()
            .map(|m| (m.id.clone(), m))
            .collect();
        for (id, facts) in &log.sessions {
            report.sessions_checked += 1;
            let d = &mut report.differences;
            let Some(m) = stored_sessions.get(id) else {
                d.push(diff("sessions", id, "row", "missing", "present"));
                continue;
            };
            // A session may be started explicitly before its first
            // invocation, never after it.
            if m.started_at > facts.earliest {
                d.push(diff(
                    "sessions",
                    id,
                    "started_at",
                    m.started_at,
                    format!("at most {} (its first invocation)", facts.earliest),
                ));
            }
            if let (None, Some((_, _, project))) = (&m.project_path, &facts.first_project) {
                d.push(diff(
                    "sessions",
                    id,
                    "project_path",
                    "NULL",
                    format!("{project:?} (named by its invocations)"),
                ));
            }
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

/// `stored` is within the digest's bound of the `exact` quantile (1 %
/// relative, or 1 ns absolute), or both are absent.
fn within_bound(stored: Option<f64>, exact: Option<f64>) -> bool {
    match (stored, exact) {
        (Some(a), Some(b)) => (a - b).abs() <= (b.abs() * DIGEST_BOUND).max(1e-9),
        (a, b) => a.is_none() && b.is_none(),
    }
}

fn compare_skill(
    name: &str,
    m: &skill_metrics::Model,
    want: &SkillAggregate,
    durations: &[f64],
    d: &mut Vec<Difference>,
) {
    let t = "skill_metrics";
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
    // Sums are integers of microseconds, so every derived figure is exact.
    check(
        d,
        t,
        name,
        "total_duration_micros",
        m.total_duration_micros,
        want.total_duration_micros,
    );
    check(
        d,
        t,
        name,
        "total_duration_seconds",
        m.total_duration_seconds,
        want.total_duration_seconds(),
    );
    check(
        d,
        t,
        name,
        "min_duration_seconds",
        m.min_duration_seconds,
        want.min_duration_seconds,
    );
    check(
        d,
        t,
        name,
        "max_duration_seconds",
        m.max_duration_seconds,
        want.max_duration_seconds,
    );
    check(
        d,
        t,
        name,
        "avg_duration_seconds",
        m.avg_duration_seconds,
        want.avg_duration_seconds(),
    );
    check(
        d,
        t,
        name,
        "completion_rate",
        m.completion_rate,
        want.completion_rate(),
    );
    check(
        d,
        t,
        name,
        "success_rate",
        m.success_rate,
        Some(want.completion_rate()),
    );
    // Percentiles: the stored columns and the stored digest, each within
    // the digest's bound of the exact quantiles of the logged durations.
    let mut sorted = durations.to_vec();
    sorted.sort_by(f64::total_cmp);
    let have = aggregate_from_model(m);
    if let Err(e) = &have {
        d.push(diff(
            t,
            name,
            "duration_digest",
            format!("unusable: {e}"),
            "a digest of the logged durations",
        ));
    }
    for (field, q, column) in [
        ("p50_duration_seconds", 0.50, m.p50_duration_seconds),
        ("p95_duration_seconds", 0.95, m.p95_duration_seconds),
        ("p99_duration_seconds", 0.99, m.p99_duration_seconds),
    ] {
        let exact = exact_percentile(&sorted, q);
        let bound = || format!("{exact:?} (exact; within {} %)", DIGEST_BOUND * 100.0);
        if !within_bound(column, exact) {
            d.push(diff(t, name, field, format!("{column:?}"), bound()));
        }
        if let Ok(have) = &have {
            let from_digest = have.digest.quantile(q);
            if !within_bound(from_digest, exact) {
                d.push(diff(
                    t,
                    name,
                    &format!("duration_digest (q={q})"),
                    format!("{from_digest:?}"),
                    bound(),
                ));
            }
        }
    }
    if let Ok(have) = &have {
        check(
            d,
            t,
            name,
            "duration_digest",
            have.digest.count(),
            sorted.len() as u64,
        );
    }
    let maps = [
        ("workflow_paths", &m.workflow_paths, &want.workflow_paths),
        ("common_errors", &m.common_errors, &want.common_errors),
        (
            "follow_up_actions",
            &m.follow_up_actions,
            &want.follow_up_actions,
        ),
    ];
    for (field, stored, expected) in maps {
        check(d, t, name, field, &count_map_from_json(stored), expected);
    }
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
