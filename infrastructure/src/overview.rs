//! The dashboard's overview of a time range in one read (decision D93):
//! the totals, every skill's figures with its invocations per bucket (a
//! sparkline), and all skills' invocations and p95 per bucket, folded from
//! one pass over the daily and hourly rollups (D92).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use domain::{RollupAggregate, is_tool};
use serde::{Deserialize, Serialize};

use crate::range::rate;
use crate::timeline::Bucket;
use crate::{SkillMetricsStore, StoreError};

/// Which invocations an overview counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Every invocation.
    #[default]
    All,
    /// Skills only (not an assistant's tools).
    Skills,
    /// An assistant's tool calls only (`import --tools all`, live events).
    Tools,
}

impl Kind {
    fn keeps(self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Skills => !is_tool(name),
            Self::Tools => is_tool(name),
        }
    }
}

/// One bucket of all the skills counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverviewBucket {
    /// Its start (UTC).
    pub bucket_start: DateTime<Utc>,
    /// Invocations in it.
    pub invocations: i64,
    /// Of which completed.
    pub completed: i64,
    /// 95th percentile completed duration, seconds.
    pub p95_duration_seconds: Option<f64>,
}

/// One skill over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OverviewSkill {
    /// The skill (or tool).
    pub skill_name: String,
    /// Whether it is an assistant's tool rather than a skill.
    pub is_tool: bool,
    /// Invocations in the range.
    pub invocations: i64,
    /// Of which completed.
    pub completed: i64,
    /// completed / invocations × 100.
    pub completion_rate: f64,
    /// Median completed duration, seconds.
    pub p50_duration_seconds: Option<f64>,
    /// 95th percentile.
    pub p95_duration_seconds: Option<f64>,
    /// 99th percentile.
    pub p99_duration_seconds: Option<f64>,
    /// Its most frequent error type over its whole history, if any.
    pub top_error: Option<String>,
    /// Its invocations in each of the overview's buckets, in their order.
    pub series: Vec<i64>,
}

/// A time range at a glance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    /// Start of the range (inclusive); none: the beginning.
    pub since: Option<DateTime<Utc>>,
    /// End of the range (exclusive); none: now and later.
    pub until: Option<DateTime<Utc>>,
    /// The project it is limited to (`""`: invocations with none).
    pub project: Option<String>,
    /// Which invocations are counted.
    pub kind: Kind,
    /// The width of the buckets (UTC hours, days or ISO weeks).
    pub bucket: Bucket,
    /// Invocations in the range.
    pub total_invocations: i64,
    /// Of which completed.
    pub completed_invocations: i64,
    /// completed / invocations × 100 (0 for none).
    pub completion_rate: f64,
    /// How many skills were invoked.
    pub skill_count: usize,
    /// The skill invoked most (ties: the first by name).
    pub busiest_skill: Option<String>,
    /// Every bucket from the range's first to its last, empty ones too.
    pub buckets: Vec<OverviewBucket>,
    /// One row per skill invoked, most invocations first.
    pub skills: Vec<OverviewSkill>,
    /// Every project the store knows of (`""`: none), for a filter.
    pub projects: Vec<String>,
}

/// The bucket an overview of [since, until) uses when none is asked for:
/// hours up to two days, days up to 92, weeks beyond (and for all history).
pub fn bucket_for(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Bucket {
    let until = until.unwrap_or_else(Utc::now);
    match since {
        Some(since) if until - since <= Duration::days(2) => Bucket::Hour,
        Some(since) if until - since <= Duration::days(92) => Bucket::Day,
        _ => Bucket::Week,
    }
}

/// The most buckets an overview answers with.
const MAX_BUCKETS: i64 = 2_000;

impl SkillMetricsStore {
    /// The overview of [since, until) in UTC buckets of `bucket` (chosen by
    /// [`bucket_for`] when `None`), of `project`'s invocations or all, of
    /// skills, tools or both.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the range would need more than 2,000
    /// buckets; a database failure.
    pub async fn overview(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        project: Option<&str>,
        kind: Kind,
        bucket: Option<Bucket>,
    ) -> Result<Overview, StoreError> {
        let bucket = bucket.unwrap_or_else(|| bucket_for(since, until));
        let width = match bucket {
            Bucket::Hour => Duration::hours(1),
            Bucket::Day => Duration::days(1),
            Bucket::Week => Duration::weeks(1),
        };
        let too_many = |first: DateTime<Utc>, last: DateTime<Utc>| {
            ((last - first).num_seconds() / width.num_seconds() + 1 > MAX_BUCKETS).then(|| {
                StoreError::Invalid(domain::ValidationError::new(
                    "bucket",
                    format!(
                        "the range holds more than {MAX_BUCKETS} buckets of a {bucket:?}: choose a wider bucket"
                    ),
                ))
            })
        };
        // An open end is now (or the newest data, if later); an open start
        // is the oldest data, known only once it is read.
        let now = Utc::now();
        let end = until.unwrap_or(now);
        if let Some(since) = since
            && let Some(e) = too_many(
                bucket.start_of(since, Tz::UTC),
                bucket.start_of(end, Tz::UTC),
            )
        {
            return Err(e);
        }
        let tick = Duration::microseconds(1);
        let folded = self
            .fold_span(
                None,
                project,
                (since, until),
                bucket != Bucket::Hour,
                |start, end| bucket.holding(start, end, Tz::UTC),
            )
            .await?;
        let mut per_skill: BTreeMap<String, BTreeMap<DateTime<Utc>, RollupAggregate>> =
            BTreeMap::new();
        for ((skill, start), agg) in folded {
            if kind.keeps(&skill) {
                per_skill.entry(skill).or_default().insert(start, agg);
            }
        }
        // Every bucket start from the first to the last, empty ones too.
        let oldest = per_skill
            .values()
            .filter_map(|b| b.keys().next())
            .min()
            .copied();
        let newest = per_skill
            .values()
            .filter_map(|b| b.keys().last())
            .max()
            .copied();
        let first = since.map(|s| bucket.start_of(s, Tz::UTC)).or(oldest);
        let last = match until {
            Some(u) => Some(bucket.start_of(u - tick, Tz::UTC)),
            None => first.map(|_| bucket.start_of(now, Tz::UTC).max(newest.unwrap_or(now))),
        };
        let mut starts = Vec::new();
        if let (Some(mut at), Some(last)) = (first, last) {
            if let Some(e) = too_many(at, last) {
                return Err(e);
            }
            while at <= last {
                starts.push(at);
                at += width;
            }
        }
        let index: BTreeMap<DateTime<Utc>, usize> =
            starts.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut all: Vec<RollupAggregate> = vec![RollupAggregate::default(); starts.len()];
        let names: Vec<&str> = per_skill.keys().map(String::as_str).collect();
        // No name would mean every skill's metrics: ask only when some.
        let known = if names.is_empty() {
            Vec::new()
        } else {
            self.metrics(&names).await?
        };
        let errors: BTreeMap<String, String> = known
            .into_iter()
            .filter_map(|m| {
                let top = m
                    .common_errors
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(k, _)| k.clone())?;
                Some((m.skill_name, top))
            })
            .collect();
        let mut skills = Vec::with_capacity(per_skill.len());
        for (name, buckets) in per_skill {
            let mut whole = RollupAggregate::default();
            let mut series = vec![0; starts.len()];
            for (start, agg) in &buckets {
                let merge = |into: &mut RollupAggregate| {
                    into.merge(agg)
                        .map_err(|e| crate::rows::digest_err(&name, &e))
                };
                merge(&mut whole)?;
                if let Some(&i) = index.get(start) {
                    series[i] = agg.total;
                    merge(&mut all[i])?;
                }
            }
            let p = whole.digest.percentiles();
            skills.push(OverviewSkill {
                is_tool: is_tool(&name),
                top_error: errors.get(&name).cloned(),
                skill_name: name,
                invocations: whole.total,
                completed: whole.completed,
                completion_rate: rate(whole.completed, whole.total),
                p50_duration_seconds: p.p50,
                p95_duration_seconds: p.p95,
                p99_duration_seconds: p.p99,
                series,
            });
        }
        skills.sort_by(|a, b| {
            b.invocations
                .cmp(&a.invocations)
                .then_with(|| a.skill_name.cmp(&b.skill_name))
        });
        let total = skills.iter().map(|s| s.invocations).sum();
        let completed = skills.iter().map(|s| s.completed).sum();
        let projects = self.projects().await?;
        Ok(Overview {
            since,
            until,
            project: project.map(str::to_owned),
            kind,
            bucket,
            total_invocations: total,
            completed_invocations: completed,
            completion_rate: rate(completed, total),
            skill_count: skills.len(),
            busiest_skill: skills.first().map(|s| s.skill_name.clone()),
            buckets: starts
                .into_iter()
                .zip(all)
                .map(|(bucket_start, agg)| OverviewBucket {
                    bucket_start,
                    invocations: agg.total,
                    completed: agg.completed,
                    p95_duration_seconds: agg.digest.percentiles().p95,
                })
                .collect(),
            skills,
            projects,
        })
    }

    /// Every project the daily rollups name (`""`: invocations with none),
    /// in the database's order.
    ///
    /// # Errors
    /// A database failure.
    pub async fn projects(&self) -> Result<Vec<String>, StoreError> {
        use entity::skill_rollups_daily::{Column, Entity};
        use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
        Entity::find()
            .select_only()
            .column(Column::ProjectPath)
            .distinct()
            .order_by_asc(Column::ProjectPath)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))
    }
}
