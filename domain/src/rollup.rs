//! Time rollups: per skill, project and hour, what the timeline and every
//! other question about a time range needs, kept as the log is written
//! (decision D81). Hours are UTC hours; a day or a week, in any time zone
//! whose offset is whole hours, is a sum of them. UTC days are kept as well
//! (D92), each the merge of its hours, so that long ranges read a day's row
//! instead of its 24 hours'. Each row also counts its invocations' error
//! types (D94), for the insights' error rates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::aggregate::micros;
use crate::{CountMap, DigestError, DurationDigest, Invocation};

/// The most error types one rollup row lists (D94); beyond, the rest are
/// summed in [`RollupAggregate::errors_other`], so a row stays small
/// whatever a skill reports.
pub const ROLLUP_ERROR_TYPES: usize = 32;

/// The UTC hour `at` falls in, for any year `DateTime` holds.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let start = at.timestamp().div_euclid(3600) * 3600;
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// The UTC day `at` falls in, for any year `DateTime` holds.
pub fn day_of(at: DateTime<Utc>) -> DateTime<Utc> {
    let start = at.timestamp().div_euclid(86_400) * 86_400;
    DateTime::from_timestamp(start, 0).unwrap_or(at)
}

/// Rollups keyed (skill, start of the hour or day, project).
pub type Rollups<K> = BTreeMap<(K, DateTime<Utc>, K), RollupAggregate>;

/// Hourly rollups keyed (skill, hour, project) folded into daily ones keyed
/// (skill, UTC day, project).
///
/// # Errors
/// The skill whose digests cannot be merged, and why.
pub fn days_of<'a, K: Ord + Clone + 'a>(
    hours: impl IntoIterator<Item = (&'a (K, DateTime<Utc>, K), &'a RollupAggregate)>,
) -> Result<Rollups<K>, (K, DigestError)> {
    let mut days: Rollups<K> = BTreeMap::new();
    for ((skill, hour, project), agg) in hours {
        days.entry((skill.clone(), day_of(*hour), project.clone()))
            .or_default()
            .merge(agg)
            .map_err(|e| (skill.clone(), e))?;
    }
    Ok(days)
}

/// One skill's invocations of one project within one hour (or one day).
#[derive(Debug, Clone, Default)]
pub struct RollupAggregate {
    /// Invocations counted.
    pub total: i64,
    /// Of which completed.
    pub completed: i64,
    /// Completed invocations with a duration.
    pub duration_count: i64,
    /// Their durations summed, in whole microseconds (D37).
    pub total_duration_micros: i64,
    /// Their distribution, for percentiles within the digest's bound.
    pub digest: DurationDigest,
    /// Invocations per error type (at most [`ROLLUP_ERROR_TYPES`] types).
    pub errors: CountMap,
    /// Invocations with an error type beyond those listed in `errors`.
    pub errors_other: i64,
}

impl RollupAggregate {
    /// Counts one more invocation.
    pub fn fold(&mut self, inv: &Invocation) {
        self.add(
            inv.completed,
            inv.duration_seconds,
            inv.error_type.as_deref(),
        );
    }

    /// Counts one more invocation, given what a rollup needs of it.
    pub fn add(&mut self, completed: bool, duration_seconds: Option<f64>, error: Option<&str>) {
        self.total += 1;
        if let Some(error) = error {
            let full = self.errors.len() >= ROLLUP_ERROR_TYPES;
            match self.errors.get_mut(error) {
                Some(n) => *n += 1,
                // A full row takes no new type one at a time (the types
                // it lists keep their places; a merge re-ranks).
                None if full => self.errors_other += 1,
                None => {
                    self.errors.insert(error.to_owned(), 1);
                }
            }
        }
        if completed {
            self.completed += 1;
            if let Some(d) = duration_seconds {
                self.duration_count += 1;
                self.total_duration_micros = self.total_duration_micros.saturating_add(micros(d));
                self.digest.add(d);
            }
        }
    }

    /// Adds `other` in, as if its invocations had been folded here.
    ///
    /// # Errors
    /// The two digests cannot be merged (`self` is then unchanged).
    pub fn merge(&mut self, other: &Self) -> Result<(), DigestError> {
        self.digest.merge(&other.digest)?;
        self.total += other.total;
        self.completed += other.completed;
        self.duration_count += other.duration_count;
        self.total_duration_micros = self
            .total_duration_micros
            .saturating_add(other.total_duration_micros);
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.errors_other += other.errors_other;
        self.cap_errors();
        Ok(())
    }

    /// Invocations with any error type.
    pub fn errors_total(&self) -> i64 {
        self.errors.values().sum::<i64>() + self.errors_other
    }

    /// Keeps the [`ROLLUP_ERROR_TYPES`] largest counts (ties: the smaller
    /// type), the rest summed in `errors_other`.
    fn cap_errors(&mut self) {
        if self.errors.len() <= ROLLUP_ERROR_TYPES {
            return;
        }
        let mut ranked: Vec<(String, i64)> = std::mem::take(&mut self.errors).into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.errors_other += ranked[ROLLUP_ERROR_TYPES..]
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>();
        ranked.truncate(ROLLUP_ERROR_TYPES);
        self.errors = ranked.into_iter().collect();
    }

    /// The error counts in their stored form (D94): `None` for none, else
    /// a JSON object `{"types": {type: count}, "other": n}`.
    pub fn errors_json(&self) -> Option<String> {
        (self.errors_total() > 0).then(|| {
            serde_json::json!({"types": self.errors, "other": self.errors_other}).to_string()
        })
    }

    /// Reads [`Self::errors_json`]'s form back into `self`.
    ///
    /// # Errors
    /// The text is not that form.
    pub fn set_errors_json(&mut self, text: Option<&str>) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Stored {
            types: CountMap,
            other: i64,
        }
        let Some(text) = text else {
            self.errors.clear();
            self.errors_other = 0;
            return Ok(());
        };
        let stored: Stored = serde_json::from_str(text)
            .map_err(|e| format!("the stored error counts cannot be read: {e}"))?;
        self.errors = stored.types;
        self.errors_other = stored.other;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::SkillName;

    #[test]
    fn an_hour_starts_on_the_hour_in_utc() {
        let at = Utc.with_ymd_and_hms(2025, 3, 30, 1, 59, 59).unwrap();
        assert_eq!(
            hour_of(at),
            Utc.with_ymd_and_hms(2025, 3, 30, 1, 0, 0).unwrap()
        );
        let on = Utc.with_ymd_and_hms(2025, 3, 30, 2, 0, 0).unwrap();
        assert_eq!(hour_of(on), on);
        // Far from 1970 too, where nanosecond arithmetic would overflow.
        let early = Utc.with_ymd_and_hms(1, 1, 1, 0, 59, 1).unwrap();
        assert_eq!(
            hour_of(early),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap()
        );
        let late = Utc.with_ymd_and_hms(2300, 1, 1, 10, 10, 0).unwrap();
        assert_eq!(
            hour_of(late),
            Utc.with_ymd_and_hms(2300, 1, 1, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_day_starts_at_midnight_utc_and_holds_its_hours() {
        let at = Utc.with_ymd_and_hms(2025, 3, 30, 23, 59, 59).unwrap();
        let midnight = Utc.with_ymd_and_hms(2025, 3, 30, 0, 0, 0).unwrap();
        assert_eq!(day_of(at), midnight);
        assert_eq!(day_of(midnight), midnight);
        let early = Utc.with_ymd_and_hms(1, 1, 1, 5, 0, 0).unwrap();
        assert_eq!(
            day_of(early),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap()
        );

        let one = |completed, d| {
            let mut r = RollupAggregate::default();
            r.add(completed, Some(d), None);
            r
        };
        let hours = BTreeMap::from([
            (("s", midnight, "p"), one(true, 1.0)),
            (
                ("s", at - chrono::Duration::minutes(59), "p"),
                one(true, 3.0),
            ),
            (
                ("s", at + chrono::Duration::seconds(1), "p"),
                one(false, 9.0),
            ),
            (("s", midnight, "q"), one(true, 2.0)),
        ]);
        let days = days_of(&hours).unwrap();
        assert_eq!(days.len(), 3);
        let p = &days[&("s", midnight, "p")];
        assert_eq!((p.total, p.completed, p.duration_count), (2, 2, 2));
        assert_eq!(p.total_duration_micros, 4_000_000);
        assert_eq!(p.digest.percentiles().p50, Some(2.0));
        let next = &days[&("s", midnight + chrono::Duration::days(1), "p")];
        assert_eq!((next.total, next.completed), (1, 0));
    }

    #[test]
    fn folding_apart_and_merging_equals_folding_together() {
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let events: Vec<Invocation> = (0..40)
            .map(|i| {
                let mut inv = Invocation::new(SkillName::parse("s").unwrap(), at, i % 3 != 0);
                inv.duration_seconds = (i % 5 != 0).then_some(f64::from(i) * 0.37);
                inv
            })
            .collect();
        let mut whole = RollupAggregate::default();
        events.iter().for_each(|e| whole.fold(e));
        let (mut a, mut b) = (RollupAggregate::default(), RollupAggregate::default());
        events[..17].iter().for_each(|e| a.fold(e));
        events[17..].iter().for_each(|e| b.fold(e));
        a.merge(&b).unwrap();
        assert_eq!(
            (a.total, a.completed, a.duration_count),
            (whole.total, whole.completed, whole.duration_count)
        );
        assert_eq!(a.total_duration_micros, whole.total_duration_micros);
        assert_eq!(a.digest.percentiles(), whole.digest.percentiles());
    }

    #[test]
    fn error_types_are_counted_capped_and_stored() {
        let mut a = RollupAggregate::default();
        for i in 0..40 {
            // Type k seen k + 1 times, for k in 0..40.
            for _ in 0..=i {
                a.add(false, None, Some(&format!("e{i:02}")));
            }
        }
        a.add(true, Some(1.0), None);
        assert_eq!(a.errors.len(), ROLLUP_ERROR_TYPES);
        // All 820 errors are still counted. A full row takes no new type
        // one invocation at a time: e32.. are "other" (a merge re-ranks).
        assert_eq!(a.errors_total(), 820);
        assert_eq!(a.errors_other, (33..=40).sum::<i64>());
        assert_eq!(a.errors["e31"], 32);
        assert!(!a.errors.contains_key("e39"));

        let mut back = RollupAggregate::default();
        back.set_errors_json(a.errors_json().as_deref()).unwrap();
        assert_eq!(
            (back.errors.clone(), back.errors_other),
            (a.errors.clone(), a.errors_other)
        );
        assert_eq!(RollupAggregate::default().errors_json(), None);
        assert!(back.set_errors_json(Some("[1]")).is_err());

        let mut b = RollupAggregate::default();
        b.add(false, None, Some("e31"));
        b.add(false, None, Some("fresh"));
        b.merge(&a).unwrap();
        assert_eq!(b.errors["e31"], 33);
        assert_eq!(b.errors_total(), 822);
        assert_eq!(b.errors.len(), ROLLUP_ERROR_TYPES);
    }
}
