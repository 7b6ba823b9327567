//! A summary over a time range (issue 18): per skill, what the daily
//! rollups hold for the whole UTC days inside the range, the hourly ones for
//! the whole hours left, and the log's rows in the part-hours at its edges
//! (decisions D81, D82, D85, D92), so that its cost follows the days asked
//! for and its edges are exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{exact_percentiles, seconds};
use serde::Serialize;

use crate::{SkillMetricsStore, StoreError};

/// One skill's invocations in a time range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeSkill {
    /// The skill.
    pub skill_name: String,
    /// Invocations in the range.
    pub invocations: i64,
    /// Of which completed.
    pub completed: i64,
    /// completed / invocations × 100.
    pub completion_rate: f64,
    /// Mean completed duration.
    pub avg_duration_seconds: Option<f64>,
    /// Median completed duration (within the digest's bound).
    pub p50_duration_seconds: Option<f64>,
    /// 95th percentile completed duration.
    pub p95_duration_seconds: Option<f64>,
    /// 99th percentile completed duration.
    pub p99_duration_seconds: Option<f64>,
}

/// Every skill's invocations in a time range, busiest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RangeSummary {
    /// Start of the range (inclusive); none: the beginning.
    pub since: Option<DateTime<Utc>>,
    /// End of the range (exclusive); none: now and later.
    pub until: Option<DateTime<Utc>>,
    /// The project it is limited to (`""`: invocations with none).
    pub project: Option<String>,
    /// Invocations in the range.
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// completed / invocations × 100 (0 for none).
    pub completion_rate: f64,
    /// The skill invoked most (ties: the first by name).
    pub busiest_skill: Option<String>,
    /// One row per skill invoked in the range, most invocations first.
    pub skills: Vec<RangeSkill>,
}

/// completed / total × 100, 0 for none.
pub(crate) fn rate(completed: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        completed as f64 / total as f64 * 100.0
    }
}

impl RangeSummary {
    fn of(
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        project: Option<&str>,
        skills: impl IntoIterator<Item = RangeSkill>,
    ) -> Self {
        let mut skills: Vec<RangeSkill> = skills.into_iter().collect();
        skills.sort_by(|a, b| {
            b.invocations
                .cmp(&a.invocations)
                .then_with(|| a.skill_name.cmp(&b.skill_name))
        });
        let total = skills.iter().map(|s| s.invocations).sum();
        let completed = skills.iter().map(|s| s.completed).sum();
        Self {
            since,
            until,
            project: project.map(str::to_owned),
            total_invocations: total,
            completed_invocations: completed,
            completion_rate: rate(completed, total),
            busiest_skill: skills.first().map(|s| s.skill_name.clone()),
            skills,
        }
    }
}

impl SkillMetricsStore {
    /// Every skill's invocations between `since` (inclusive) and `until`
    /// (exclusive), of `project` (`Some("")`: those with none) or all:
    /// counts, completion, mean and p50/p95/p99 duration. Whole days and
    /// hours are read from the rollups, the part-hours at the edges from
    /// the log.
    ///
    /// # Errors
    /// A database failure, or a stored digest that cannot be read.
    pub async fn summary_between(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        project: Option<&str>,
    ) -> Result<RangeSummary, StoreError> {
        let per_skill = self
            .fold_span(None, project, (since, until), true, |_, _| Some(()))
            .await?;
        Ok(RangeSummary::of(
            since,
            until,
            project,
            per_skill.into_iter().map(|((skill_name, ()), agg)| {
                let p = agg.digest.percentiles();
                RangeSkill {
                    completion_rate: rate(agg.completed, agg.total),
                    avg_duration_seconds: (agg.duration_count > 0)
                        .then(|| seconds(agg.total_duration_micros) / agg.duration_count as f64),
                    skill_name,
                    invocations: agg.total,
                    completed: agg.completed,
                    p50_duration_seconds: p.p50,
                    p95_duration_seconds: p.p95,
                    p99_duration_seconds: p.p99,
                }
            }),
        ))
    }

    /// [`Self::summary_between`] computed from the log alone, with exact
    /// percentiles: the reference the rollups are tested against. It reads
    /// every invocation in the range.
    ///
    /// # Errors
    /// A database failure.
    #[doc(hidden)]
    pub async fn summary_between_from_log(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        project: Option<&str>,
    ) -> Result<RangeSummary, StoreError> {
        let mut per_skill: BTreeMap<String, (i64, i64, Vec<f64>)> = BTreeMap::new();
        for (skill, _, completed, duration, _) in self.log_span(None, project, since, until).await?
        {
            let entry = per_skill.entry(skill).or_default();
            entry.0 += 1;
            if completed {
                entry.1 += 1;
                entry.2.extend(duration);
            }
        }
        Ok(RangeSummary::of(
            since,
            until,
            project,
            per_skill
                .into_iter()
                .map(|(skill_name, (n, done, mut durations))| {
                    let total: i64 = durations.iter().map(|d| domain::micros(*d)).sum();
                    let count = durations.len();
                    let p = exact_percentiles(&mut durations);
                    RangeSkill {
                        skill_name,
                        invocations: n,
                        completed: done,
                        completion_rate: rate(done, n),
                        avg_duration_seconds: (count > 0).then(|| seconds(total) / count as f64),
                        p50_duration_seconds: p.p50,
                        p95_duration_seconds: p.p95,
                        p99_duration_seconds: p.p99,
                    }
                }),
        ))
    }
}
