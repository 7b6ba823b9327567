//! Time rollups: per skill, project and hour, what the timeline and every
//! other question about a time range needs, kept as the log is written
//! (decision D81). Hours are UTC hours; a day or a week, in any time zone
//! whose offset is whole hours, is a sum of them. UTC days are kept as well
//! (D92), each the merge of its hours, so that long ranges read a day's row
//! instead of its 24 hours'.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::aggregate::micros;
use crate::{DigestError, DurationDigest, Invocation};

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
}

impl RollupAggregate {
    /// Counts one more invocation.
    pub fn fold(&mut self, inv: &Invocation) {
        self.add(inv.completed, inv.duration_seconds);
    }

    /// Counts one more invocation, given what a rollup needs of it.
    pub fn add(&mut self, completed: bool, duration_seconds: Option<f64>) {
        self.total += 1;
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
            r.add(completed, Some(d));
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
}
