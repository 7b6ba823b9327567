//! Answering a time range from the cheapest rows that hold it exactly
//! (decisions D82, D92): whole UTC days from the daily rollups, the whole
//! hours left at either end from the hourly rollups, and the part-hours at
//! the range's edges from the log. A day or an hour that a caller's bucket
//! boundary cuts (a time zone whose days start off midnight UTC, or whose
//! offset is not whole hours) is read again at the next finer level.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use domain::{RollupAggregate, day_of, hour_of};
use entity::{skill_invocation, skill_rollups};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Value};

use crate::rollups::{DAYS, ROLLUP_COLS, ROLLUPS};
use crate::sql::{stmt, ts};
use crate::{SkillMetricsStore, StoreError};

/// A stretch of time, open where `None`: [from, to).
pub(crate) type Span = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// [since, until) cut at `unit`s (of which `start_of` gives the start): the
/// whole units inside it, if any, and the parts at its edges.
fn split(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    unit: Duration,
    start_of: fn(DateTime<Utc>) -> DateTime<Utc>,
) -> (Option<Span>, Vec<Span>) {
    let lo = since.map(|s| {
        if start_of(s) == s {
            s
        } else {
            start_of(s) + unit
        }
    });
    let hi = until.map(start_of);
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

/// [since, until) as the whole UTC hours inside it, if any (what the
/// rollups answer), and the part-hours at its edges (what the log answers).
pub(crate) fn split_hours(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> (Option<Span>, Vec<Span>) {
    split(since, until, Duration::hours(1), hour_of)
}

/// Whole hours [lo, hi) as the whole UTC days inside them, if any, and the
/// hours left at either end.
pub(crate) fn split_days(
    lo: Option<DateTime<Utc>>,
    hi: Option<DateTime<Utc>>,
) -> (Option<Span>, Vec<Span>) {
    split(lo, hi, Duration::days(1), day_of)
}

/// Adds `start` (a stretch of `width`) to `spans`, joined to the last one
/// when they meet. `starts` must come in order.
fn coalesce(starts: BTreeSet<DateTime<Utc>>, width: Duration, spans: &mut Vec<Span>) {
    for start in starts {
        match spans.last_mut() {
            Some((_, Some(end))) if *end == start => *end = start + width,
            _ => spans.push((Some(start), Some(start + width))),
        }
    }
}

/// What a range needs of one invocation: skill, time, completed, duration,
/// error type.
pub(crate) type LogRow = (String, DateTime<Utc>, bool, Option<f64>, Option<String>);

/// What a range's figures are folded into: per skill, the place `T` a
/// stretch of time belongs to.
pub(crate) type Folded<T> = BTreeMap<(String, T), RollupAggregate>;

impl SkillMetricsStore {
    /// The invocations of `skill` (every skill's when `None`) of `project`
    /// (`Some("")`: those with none; every project's when `None`) in
    /// [since, until), folded per skill and `place`. `place(start, end)`
    /// names where the invocations of [start, end) go, or `None` when that
    /// stretch straddles two places (the stretch is then read at a finer
    /// level, down to single invocations, for which it must answer). With
    /// `days` false, no daily row is read (every day would straddle).
    ///
    /// # Errors
    /// A database failure, or a stored digest that cannot be read.
    pub(crate) async fn fold_span<T: Ord + Copy>(
        &self,
        skill: Option<&str>,
        project: Option<&str>,
        (since, until): Span,
        days: bool,
        place: impl Fn(DateTime<Utc>, DateTime<Utc>) -> Option<T>,
    ) -> Result<Folded<T>, StoreError> {
        let mut out: Folded<T> = BTreeMap::new();
        let (whole_hours, mut from_log) = split_hours(since, until);
        let Some((lo, hi)) = whole_hours else {
            self.fold_log(skill, project, from_log, &place, &mut out)
                .await?;
            return Ok(out);
        };
        let mut hour_spans = Vec::new();
        if days {
            let (whole_days, edges) = split_days(lo, hi);
            hour_spans = edges;
            if let Some(span) = whole_days {
                let cut = self
                    .fold_rollups(
                        DAYS,
                        skill,
                        project,
                        span,
                        Duration::days(1),
                        &place,
                        &mut out,
                    )
                    .await?;
                coalesce(cut, Duration::days(1), &mut hour_spans);
            }
        } else {
            hour_spans.push((lo, hi));
        }
        let mut cut_hours = BTreeSet::new();
        for span in hour_spans {
            cut_hours.extend(
                self.fold_rollups(
                    ROLLUPS,
                    skill,
                    project,
                    span,
                    Duration::hours(1),
                    &place,
                    &mut out,
                )
                .await?,
            );
        }
        coalesce(cut_hours, Duration::hours(1), &mut from_log);
        self.fold_log(skill, project, from_log, &place, &mut out)
            .await?;
        Ok(out)
    }

    /// Folds the rows of rollup `table` (of stretches of `width`) in `span`
    /// into `out`; returns the starts of the rows `place` refused.
    #[allow(clippy::too_many_arguments)]
    async fn fold_rollups<T: Ord + Copy>(
        &self,
        table: &str,
        skill: Option<&str>,
        project: Option<&str>,
        (lo, hi): Span,
        width: Duration,
        place: &impl Fn(DateTime<Utc>, DateTime<Utc>) -> Option<T>,
        out: &mut Folded<T>,
    ) -> Result<BTreeSet<DateTime<Utc>>, StoreError> {
        let mut cut = BTreeSet::new();
        for row in self.rollup_rows(table, skill, project, lo, hi).await? {
            let ((name, start, _), agg) = crate::rollups::from_model(row)?;
            let Some(at) = place(start, start + width) else {
                cut.insert(start);
                continue;
            };
            let key = (name, at);
            match out.get_mut(&key) {
                Some(slot) => slot
                    .merge(&agg)
                    .map_err(|e| crate::rows::digest_err(&key.0, &e))?,
                None => {
                    out.insert(key, agg);
                }
            }
        }
        Ok(cut)
    }

    /// Folds the log's invocations in `spans` into `out`, one by one.
    async fn fold_log<T: Ord + Copy>(
        &self,
        skill: Option<&str>,
        project: Option<&str>,
        spans: Vec<Span>,
        place: &impl Fn(DateTime<Utc>, DateTime<Utc>) -> Option<T>,
        out: &mut Folded<T>,
    ) -> Result<(), StoreError> {
        let tick = Duration::microseconds(1);
        for (from, to) in spans {
            for (name, at, completed, duration, error) in
                self.log_span(skill, project, from, to).await?
            {
                if let Some(t) = place(at, at + tick) {
                    out.entry((name, t))
                        .or_default()
                        .add(completed, duration, error.as_deref());
                }
            }
        }
        Ok(())
    }

    /// The rows of rollup `table` of `skill` (of every skill `skill_metrics`
    /// names when `None`: one index range per skill) starting in [lo, hi),
    /// of `project` (every project's when `None`).
    async fn rollup_rows(
        &self,
        table: &str,
        skill: Option<&str>,
        project: Option<&str>,
        lo: Option<DateTime<Utc>>,
        hi: Option<DateTime<Utc>>,
    ) -> Result<Vec<skill_rollups::Model>, StoreError> {
        let backend = self.backend();
        let mut conditions = Vec::new();
        if skill.is_none() {
            conditions.push("skill_name IN (SELECT skill_name FROM skill_metrics)".to_owned());
        }
        let mut values: Vec<Value> = Vec::new();
        for (condition, value) in [
            skill.map(|s| ("skill_name =", Value::from(s))),
            project.map(|p| ("project_path =", Value::from(p))),
            lo.map(|t| ("bucket_start >=", ts(backend, t))),
            hi.map(|t| ("bucket_start <", ts(backend, t))),
        ]
        .into_iter()
        .flatten()
        {
            values.push(value);
            conditions.push(format!("{condition} ${}", values.len()));
        }
        let sql = format!(
            "SELECT {} FROM {table} WHERE {}",
            ROLLUP_COLS.join(", "),
            conditions.join(" AND ")
        );
        skill_rollups::Model::find_by_statement(stmt(backend, &sql, values))
            .all(&self.db)
            .await
            .map_err(|e| self.err(e))
    }

    /// What a time range needs of `skill`'s invocations (every skill's
    /// when `None`) in [from, to), of `project` (`Some("")`: none) or all:
    /// skill, time, completed, duration, error type.
    pub(crate) async fn log_span(
        &self,
        skill: Option<&str>,
        project: Option<&str>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<LogRow>, StoreError> {
        let backend = self.backend();
        let mut query = skill_invocation::Entity::find()
            .select_only()
            .column(skill_invocation::Column::SkillName)
            .column(skill_invocation::Column::InvokedAt)
            .column(skill_invocation::Column::Completed)
            .column(skill_invocation::Column::DurationSeconds)
            .column(skill_invocation::Column::ErrorType);
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, d, h, m, 0).unwrap()
    }

    #[test]
    fn a_range_splits_into_days_then_hours_then_the_log() {
        let (hours, log) = split_hours(Some(t(1, 22, 30)), Some(t(4, 1, 15)));
        assert_eq!(hours, Some((Some(t(1, 23, 0)), Some(t(4, 1, 0)))));
        assert_eq!(
            log,
            vec![
                (Some(t(1, 22, 30)), Some(t(1, 23, 0))),
                (Some(t(4, 1, 0)), Some(t(4, 1, 15)))
            ]
        );
        let (lo, hi) = hours.unwrap();
        let (days, edges) = split_days(lo, hi);
        assert_eq!(days, Some((Some(t(2, 0, 0)), Some(t(4, 0, 0)))));
        assert_eq!(
            edges,
            vec![
                (Some(t(1, 23, 0)), Some(t(2, 0, 0))),
                (Some(t(4, 0, 0)), Some(t(4, 1, 0)))
            ]
        );
        // Open ends stay open; a range inside one day has no whole day.
        assert_eq!(split_days(None, None), (Some((None, None)), vec![]));
        let (days, edges) = split_days(Some(t(2, 3, 0)), Some(t(2, 9, 0)));
        assert_eq!(days, None);
        assert_eq!(edges, vec![(Some(t(2, 3, 0)), Some(t(2, 9, 0)))]);
    }

    #[test]
    fn refused_stretches_join_when_they_meet() {
        let mut spans = vec![(Some(t(1, 0, 0)), Some(t(1, 5, 0)))];
        let starts = BTreeSet::from([t(1, 5, 0), t(1, 6, 0), t(1, 9, 0)]);
        coalesce(starts, Duration::hours(1), &mut spans);
        assert_eq!(
            spans,
            vec![
                (Some(t(1, 0, 0)), Some(t(1, 7, 0))),
                (Some(t(1, 9, 0)), Some(t(1, 10, 0)))
            ]
        );
    }
}
