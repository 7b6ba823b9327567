//! Time ranges: a skill's timeline, from the hourly rollups and the log at
//! its edges (decision D82), and the log-only reference it is tested against.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use domain::{Percentiles, RollupAggregate, exact_percentiles, hour_of};
use entity::{skill_invocation, skill_metrics, skill_rollups};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

use crate::sql::ts;
use crate::{SkillMetricsStore, StoreError};

/// Width of a timeline bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One day.
    Day,
    /// One ISO week, Monday to Sunday.
    Week,
}

impl Bucket {
    /// The start of the bucket holding `at`, with hours, days and weeks as
    /// the clock in `tz` shows them. A local start that a clock change
    /// skipped is read with the offset from before the change.
    fn start_of(self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&tz).naive_local();
        if self == Self::Hour {
            // The local clock's minutes back: exact in every zone, and the
            // hour a clock repeats when it goes back stays two buckets.
            let into_hour = Duration::minutes(i64::from(local.minute()))
                + Duration::seconds(i64::from(local.second()))
                + Duration::nanoseconds(i64::from(local.nanosecond()));
            return at - into_hour;
        }
        let start = match self {
            Self::Hour => None,
            Self::Day => local.date().and_hms_opt(0, 0, 0),
            Self::Week => (local.date()
                - Duration::days(i64::from(local.weekday().num_days_from_monday())))
            .and_hms_opt(0, 0, 0),
        };
        let Some(start) = start else { return at };
        match tz.from_local_datetime(&start) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
            // In a gap: the instant the local clock jumped over `start`.
            LocalResult::None => tz
                .from_local_datetime(&(start - Duration::hours(1)))
                .earliest()
                .map_or(at, |t| t.with_timezone(&Utc) + Duration::hours(1)),
        }
    }
}

/// One bucket of a skill's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineBucket {
    /// Start of the bucket (UTC).
    pub bucket_start: DateTime<Utc>,
    /// Invocations in it.
    pub invocations: i64,
    /// Of which completed.
    pub completed: i64,
    /// completed / invocations × 100.
    pub completion_rate: f64,
    /// Median completed duration.
    pub p50_duration_seconds: Option<f64>,
    /// 95th percentile completed duration.
    pub p95_duration_seconds: Option<f64>,
}

impl TimelineBucket {
    fn new(bucket_start: DateTime<Utc>, invocations: i64, completed: i64, p: Percentiles) -> Self {
        Self {
            bucket_start,
            invocations,
            completed,
            completion_rate: if invocations == 0 {
                0.0
            } else {
                completed as f64 / invocations as f64 * 100.0
            },
            p50_duration_seconds: p.p50,
            p95_duration_seconds: p.p95,
        }
    }
}

/// A stretch of time, open where `None`: [from, to).
pub(crate) type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// [since, until) as the whole UTC hours inside it, if any (what the
/// rollups answer), and the part-hours at its edges (what the log answers).
pub(crate) fn split_hours(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (Option<Span>, Vec<Span>) {
    let hour = Duration::hours(1);
    let lo = since.map(|s| {
        if hour_of(s) == s {
            s
        } else {
            hour_of(s) + hour
        }
    });
    let hi = until.map(hour_of);
    if matches!((lo, hi), (Some(l), Some(h)) if l >= h) {
        return (None, vec![(since, until)]);
    }
    let mut edges = Vec::new();
    if let (Some(s), Some(l)) = (since, lo)
        && s < l
    {
        edges.push((Some(s), Some(l)));
    }
    if let (Some(h), Some(u)) = (hi, until)
        && h < u
    {
        edges.push((Some(h), Some(u)));
    }
    (Some((lo, hi)), edges)
}

impl SkillMetricsStore {
    /// A skill's invocations per UTC bucket between `since` (inclusive) and
    /// `until` (exclusive): count, completion rate, p50 and p95 (exact).
    ///
    /// # Errors
    /// A database failure.
    pub async fn timeline(
        &self,
        skill: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        bucket: Bucket,
    ) -> Result<Vec<TimelineBucket>, StoreError> {
        self.timeline_in(skill, since, until, bucket, Tz::UTC).await
    }

    /// [`timeline`](Self::timeline) with hours, days and weeks as the clock
    /// in `tz` shows them (a day in `Europe/Berlin` starts at 23:00 or 22:00
    /// UTC); each bucket's start is still given as an instant in UTC.
    ///
    /// # Errors
    /// A database failure.
    pub async fn timeline_in(
        &self,
        skill: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        bucket: Bucket,
        tz: Tz,
    ) -> Result<Vec<TimelineBucket>, StoreError> {
        self.timeline_of_project(skill, None, since, until, bucket, tz)
            .await
    }

    /// [`timeline_in`](Self::timeline_in) of one project's invocations
    /// only (`Some("")`: those with no project), or of all (`None`).
    ///
    /// # Errors
    /// A database failure.
    pub async fn timeline_of_project(
        &self,
        skill: &str,
        project: Option<&str>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        bucket: Bucket,
        tz: Tz,
    ) -> Result<Vec<TimelineBucket>, StoreError> {
        let hour = Duration::hours(1);
        // The whole UTC hours inside [since, until) come from the rollups;
        // the part-hours at either edge, and any hour a bucket boundary of
        // `tz` cuts (zones whose offset is not whole hours), from the log
        // (decision D82).
        let (whole, mut from_log) = split_hours(since, until);
        let mut buckets: BTreeMap<DateTime<Utc>, RollupAggregate> = BTreeMap::new();
        if let Some((lo, hi)) = whole {
            let mut cut = std::collections::BTreeSet::new();
            for row in self.rollups_of(Some(skill), project, lo, hi).await? {
                let ((_, start, _), agg) = crate::rollups::from_model(row)?;
                let first = bucket.start_of(start, tz);
                if first == bucket.start_of(start + hour - Duration::microseconds(1), tz) {
                    buckets
                        .entry(first)
                        .or_default()
                        .merge(&agg)
                        .map_err(|e| crate::rows::digest_err(skill, &e))?;
                } else {
                    cut.insert(start);
                }
            }
            // Neighbouring cut hours are read as one span.
            for h in cut {
                match from_log.last_mut() {
                    Some((_, Some(end))) if *end == h => *end = h + hour,
                    _ => from_log.push((Some(h), Some(h + hour))),
                }
            }
        }
        for (from, to) in from_log {
            for (_, at, completed, duration) in
                self.log_span(Some(skill), project, from, to).await?
            {
                buckets
                    .entry(bucket.start_of(at, tz))
                    .or_default()
                    .add(completed, duration);
            }
        }
        Ok(buckets
            .into_iter()
            .map(|(start, agg)| {
                TimelineBucket::new(start, agg.total, agg.completed, agg.digest.percentiles())
            })
            .collect())
    }

    /// The timeline computed from the log alone, with exact percentiles:
    /// what [`Self::timeline_in`] answered before the rollups, kept as the
    /// reference the rollups are tested against. It reads every invocation
    /// of the skill in the range.
    ///
    /// # Errors
    /// A database failure.
    #[doc(hidden)]
    pub async fn timeline_from_log(
        &self,
        skill: &str,
        project: Option<&str>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        bucket: Bucket,
        tz: Tz,
    ) -> Result<Vec<TimelineBucket>, StoreError> {
        let mut buckets: BTreeMap<DateTime<Utc>, (i64, i64, Vec<f64>)> = BTreeMap::new();
        for (_, at, completed, duration) in
            self.log_span(Some(skill), project, since, until).await?
        {
            let entry = buckets.entry(bucket.start_of(at, tz)).or_default();
            entry.0 += 1;
            if completed {
                entry.1 += 1;
                entry.2.extend(duration);
            }
        }
        Ok(buckets
            .into_iter()
            .map(|(start, (n, done, mut durations))| {
                TimelineBucket::new(start, n, done, exact_percentiles(&mut durations))
            })
            .collect())
    }

    /// The rollup rows of `skill` (of every skill when `None`) with an hour
    /// in [lo, hi), of `project` (every project's when `None`): one index
    /// range on (skill, hour) per skill.
    pub(crate) async fn rollups_of(
        &self,
        skill: Option<&str>,
        project: Option<&str>,
        lo: Option<DateTime<Utc>>,
        hi: Option<DateTime<Utc>>,
    ) -> Result<Vec<skill_rollups::Model>, StoreError> {
        let backend = self.backend();
        let mut query =
            skill_rollups::Entity::find().order_by_asc(skill_rollups::Column::BucketStart);
        query = match skill {
            Some(skill) => query.filter(skill_rollups::Column::SkillName.eq(skill)),
            None => {
                let names: Vec<String> = skill_metrics::Entity::find()
                    .select_only()
                    .column(skill_metrics::Column::SkillName)
                    .into_tuple()
                    .all(&self.db)
                    .await
                    .map_err(|e| self.err(e))?;
                query.filter(skill_rollups::Column::SkillName.is_in(names))
            }
        };
        if let Some(project) = project {
            query = query.filter(skill_rollups::Column::ProjectPath.eq(project));
        }
        if let Some(lo) = lo {
            query = query.filter(skill_rollups::Column::BucketStart.gte(ts(backend, lo)));
        }
        if let Some(hi) = hi {
            query = query.filter(skill_rollups::Column::BucketStart.lt(ts(backend, hi)));
        }
        query.all(&self.db).await.map_err(|e| self.err(e))
    }

    /// What a time range needs of `skill`'s invocations (every skill's
    /// when `None`) in [from, to), of `project` (`Some("")`: none) or all:
    /// skill, time, completed, duration.
    pub(crate) async fn log_span(
        &self,
        skill: Option<&str>,
        project: Option<&str>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<(String, DateTime<Utc>, bool, Option<f64>)>, StoreError> {
        let backend = self.backend();
        let mut query = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::SkillName)
            .column(skill_invocation::Column::InvokedAt)
            .column(skill_invocation::Column::Completed)
            .column(skill_invocation::Column::DurationSeconds);
        if let Some(skill) = skill {
            query = query.filter(skill_invocation::Column::SkillName.eq(skill));
        }
        match project {
            Some("") => query = query.filter(skill_invocation::Column::ProjectPath.is_null()),
            Some(project) => {
                query = query.filter(skill_invocation::Column::ProjectPath.eq(project))
            }
            None => {}
        }
        if let Some(from) = from {
            query = query.filter(skill_invocation::Column::InvokedAt.gte(ts(backend, from)));
        }
        if let Some(to) = to {
            query = query.filter(skill_invocation::Column::InvokedAt.lt(ts(backend, to)));
        }
        query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))
    }
}
