//! A skill's timeline, from the daily and hourly rollups and the log at its
//! edges (decisions D82, D92), and the log-only reference it is tested
//! against.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use domain::{Percentiles, exact_percentiles};
use serde::Serialize;

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
    /// The start of the one bucket that holds all of [start, end), or
    /// `None` when a boundary of `tz`'s buckets falls inside it.
    pub(crate) fn holding(
        self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        let first = self.start_of(start, tz);
        (first == self.start_of(end - Duration::microseconds(1), tz)).then_some(first)
    }

    pub(crate) fn start_of(self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
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
        // Whole UTC days and hours from the rollups, part-hours from the log;
        // a day or an hour that a bucket boundary of `tz` cuts is read at the
        // next finer level (decisions D82, D92).
        let folded = self
            .fold_span(
                Some(skill),
                project,
                (since, until),
                bucket != Bucket::Hour,
                |start, end| bucket.holding(start, end, tz),
            )
            .await?;
        Ok(folded
            .into_iter()
            .map(|((_, start), agg)| {
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
        for (_, at, completed, duration, _) in
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
}
