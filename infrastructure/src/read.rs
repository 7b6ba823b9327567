//! Reads: metrics, sessions, recent invocations, timelines, search.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use domain::{
    Invocation, Percentiles, RollupAggregate, exact_percentiles, hour_of, parse_search_query,
};
use entity::{session_skill, sessions, skill_invocation, skill_metrics, skill_rollups};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Value,
};
use serde::Serialize;

use crate::rows::invocation_from_model;
use crate::sql::{log_columns, stmt, ts};
use crate::views::{Session, SessionSkill, SessionView, SkillMetrics};
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
type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Filters for [`SkillMetricsStore::recent`].
#[derive(Debug, Clone, Default)]
pub struct RecentFilter {
    /// Only this skill.
    pub skill: Option<String>,
    /// Only this session.
    pub session: Option<String>,
}

fn to_invocations(models: Vec<skill_invocation::Model>) -> Result<Vec<Invocation>, StoreError> {
    models
        .into_iter()
        .map(|m| invocation_from_model(m).map_err(StoreError::from))
        .collect()
}

impl SkillMetricsStore {
    /// The metrics of the named skills (every skill when `names` is empty),
    /// in one query, ordered by name. Unknown names are simply absent.
    ///
    /// # Errors
    /// A database failure.
    pub async fn metrics(&self, names: &[&str]) -> Result<Vec<SkillMetrics>, StoreError> {
        let rows = match &self.direct {
            Some(direct) => direct.metrics(names)?,
            None => {
                let mut query =
                    skill_metrics::Entity::find().order_by_asc(skill_metrics::Column::SkillName);
                if !names.is_empty() {
                    query =
                        query.filter(skill_metrics::Column::SkillName.is_in(names.iter().copied()));
                }
                query.all(&self.db).await.map_err(|e| self.err(e))?
            }
        };
        Ok(rows.into_iter().map(SkillMetrics::from_row).collect())
    }

    /// p50/p95/p99 of each named skill's completed durations computed from
    /// the log (exact, not from the stored distribution), in one query.
    ///
    /// # Errors
    /// A database failure.
    pub async fn exact_percentiles(
        &self,
        names: &[&str],
    ) -> Result<BTreeMap<String, Percentiles>, StoreError> {
        let mut query = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::SkillName)
            .column(skill_invocation::Column::DurationSeconds)
            .filter(skill_invocation::Column::Completed.eq(true))
            .filter(skill_invocation::Column::DurationSeconds.is_not_null());
        if !names.is_empty() {
            query = query.filter(skill_invocation::Column::SkillName.is_in(names.iter().copied()));
        }
        let rows: Vec<(String, f64)> = query
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        let mut by_skill: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (skill, d) in rows {
            by_skill.entry(skill).or_default().push(d);
        }
        Ok(by_skill
            .into_iter()
            .map(|(k, mut v)| (k, exact_percentiles(&mut v)))
            .collect())
    }

    /// A session, its skills and its invocations.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown session; a database failure.
    pub async fn session(&self, id: &str) -> Result<SessionView, StoreError> {
        let session = sessions::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("session {id:?}"),
            })?;
        let skills = session_skill::Entity::find()
            .filter(session_skill::Column::SessionId.eq(id))
            .order_by_asc(session_skill::Column::SkillName)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        let invocations = skill_invocation::Entity::find()
            .filter(skill_invocation::Column::SessionId.eq(id))
            .order_by_asc(skill_invocation::Column::InvokedAt)
            .order_by_asc(skill_invocation::Column::Id)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(SessionView {
            session: Session::from_row(session),
            skills: skills.into_iter().map(SessionSkill::from_row).collect(),
            invocations: to_invocations(invocations)?,
        })
    }

    /// The sessions that started last, newest first, at most `limit`.
    ///
    /// # Errors
    /// A database failure.
    pub async fn recent_sessions(&self, limit: u64) -> Result<Vec<Session>, StoreError> {
        let rows = sessions::Entity::find()
            .order_by_desc(sessions::Column::StartedAt)
            .order_by_desc(sessions::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(Session::from_row).collect())
    }

    /// Starts a session (or widens an existing one's start to `at`).
    ///
    /// # Errors
    /// An invalid id; a database failure.
    pub async fn start_session(
        &self,
        id: &str,
        at: DateTime<Utc>,
        project_path: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = domain::SessionId::parse(id)?;
        let backend = self.backend();
        let statement = stmt(
            backend,
            "INSERT INTO sessions (id, started_at, project_path) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET started_at = CASE WHEN excluded.started_at < sessions.started_at \
             THEN excluded.started_at ELSE sessions.started_at END, \
             project_path = COALESCE(sessions.project_path, excluded.project_path)",
            vec![
                Value::from(id.as_str()),
                ts(backend, domain::truncate_to_micros(at)),
                Value::from(project_path.map(str::to_owned)),
            ],
        );
        self.db
            .execute_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records that a session ended at `at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown session; a database failure.
    pub async fn end_session(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let backend = self.backend();
        let statement = stmt(
            backend,
            "UPDATE sessions SET ended_at = $1 WHERE id = $2",
            vec![ts(backend, domain::truncate_to_micros(at)), Value::from(id)],
        );
        let result = self
            .db
            .execute_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("session {id:?}"),
            });
        }
        Ok(())
    }

    /// The newest invocations first, at most `limit`, optionally of one
    /// skill or one session.
    ///
    /// # Errors
    /// A database failure.
    pub async fn recent(
        &self,
        filter: &RecentFilter,
        limit: u64,
    ) -> Result<Vec<Invocation>, StoreError> {
        let mut query = skill_invocation::Entity::find()
            .order_by_desc(skill_invocation::Column::InvokedAt)
            .order_by_desc(skill_invocation::Column::Id)
            .limit(limit);
        if let Some(skill) = &filter.skill {
            query = query.filter(skill_invocation::Column::SkillName.eq(skill.as_str()));
        }
        if let Some(session) = &filter.session {
            query = query.filter(skill_invocation::Column::SessionId.eq(session.as_str()));
        }
        let models = query.all(&self.db).await.map_err(|e| self.err(e))?;
        to_invocations(models)
    }

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
        let lo = since.map(|s| {
            if hour_of(s) == s {
                s
            } else {
                hour_of(s) + hour
            }
        });
        let hi = until.map(hour_of);
        let mut from_log: Vec<Span> = Vec::new();
        let mut buckets: BTreeMap<DateTime<Utc>, RollupAggregate> = BTreeMap::new();
        if matches!((lo, hi), (Some(l), Some(h)) if l >= h) {
            from_log.push((since, until));
        } else {
            if let (Some(s), Some(l)) = (since, lo)
                && s < l
            {
                from_log.push((Some(s), Some(l)));
            }
            if let (Some(h), Some(u)) = (hi, until)
                && h < u
            {
                from_log.push((Some(h), Some(u)));
            }
            let mut cut = std::collections::BTreeSet::new();
            for row in self.rollups_of(skill, project, lo, hi).await? {
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
            for (at, completed, duration) in self.log_span(skill, project, from, to).await? {
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
        for (at, completed, duration) in self.log_span(skill, project, since, until).await? {
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

    /// `skill`'s rollup rows with an hour in [lo, hi), of `project` (every
    /// project's when `None`).
    async fn rollups_of(
        &self,
        skill: &str,
        project: Option<&str>,
        lo: Option<DateTime<Utc>>,
        hi: Option<DateTime<Utc>>,
    ) -> Result<Vec<skill_rollups::Model>, StoreError> {
        let backend = self.backend();
        let mut query = skill_rollups::Entity::find()
            .filter(skill_rollups::Column::SkillName.eq(skill))
            .order_by_asc(skill_rollups::Column::BucketStart);
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

    /// What a timeline needs of `skill`'s invocations in [from, to), of
    /// `project` (`Some("")`: none) or all.
    async fn log_span(
        &self,
        skill: &str,
        project: Option<&str>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<(DateTime<Utc>, bool, Option<f64>)>, StoreError> {
        let backend = self.backend();
        let mut query = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::InvokedAt)
            .column(skill_invocation::Column::Completed)
            .column(skill_invocation::Column::DurationSeconds)
            .filter(skill_invocation::Column::SkillName.eq(skill));
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

    /// Invocations whose skill name or workflow path hold every word of
    /// `query` (`word*` matches by prefix), the newest written first (decision
    /// D80), at most `limit`, stopping there. Any text is safe:
    /// it is read as literal words, never as query syntax.
    ///
    /// # Errors
    /// A database failure.
    pub async fn search(&self, query: &str, limit: u64) -> Result<Vec<Invocation>, StoreError> {
        let terms = parse_search_query(query);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let backend = self.backend();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = match backend {
            DbBackend::Postgres => {
                let q: Vec<String> = terms
                    .iter()
                    .map(|t| {
                        if t.prefix {
                            format!("{}:*", t.word)
                        } else {
                            t.word.clone()
                        }
                    })
                    .collect();
                // Newest written first: on a common word the planner walks
                // the `seq` index backwards and stops at the limit.
                stmt(
                    backend,
                    &format!(
                        "SELECT {} FROM skill_invocation \
                         WHERE search_vector @@ to_tsquery('simple', $1) ORDER BY seq DESC LIMIT $2",
                        log_columns("")
                    ),
                    vec![Value::from(q.join(" & ")), Value::from(limit)],
                )
            }
            _ => {
                let q: Vec<String> = terms
                    .iter()
                    .map(|t| format!("\"{}\"{}", t.word, if t.prefix { "*" } else { "" }))
                    .collect();
                // The index's entries are numbered by the log's `seq` (D84):
                // FTS5 walks them backwards and stops at the limit, never
                // collecting every match.
                stmt(
                    backend,
                    &format!(
                        "SELECT {} FROM (SELECT rowid AS seq FROM skill_invocation_fts \
                         WHERE skill_invocation_fts MATCH $1 ORDER BY rowid DESC LIMIT $2) f \
                         JOIN skill_invocation i ON i.seq = f.seq ORDER BY i.seq DESC",
                        log_columns("i.")
                    ),
                    vec![Value::from(q.join(" ")), Value::from(limit)],
                )
            }
        };
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .map_err(|e| self.err(e))?;
        let models = rows
            .iter()
            .map(|row| skill_invocation::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        to_invocations(models)
    }
}
