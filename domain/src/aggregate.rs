//! Folding invocations into per-skill and per-session-skill aggregates: what
//! the design's triggers meant, as pure functions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{DigestError, DurationDigest, Invocation, Percentiles};

/// Occurrences per key (workflow path, error type, follow-up action). Keys are
/// ordinary strings: dots, spaces, quotes and any Unicode mean nothing special.
pub type CountMap = BTreeMap<String, i64>;

/// Everything `skill_metrics` holds for one skill, before derived fields.
#[derive(Debug, Clone, Default)]
pub struct SkillAggregate {
    /// Invocations counted.
    pub total: i64,
    /// Of which completed.
    pub completed: i64,
    /// Of which abandoned (`completed = false`).
    pub abandoned: i64,
    /// Sum of the durations of completed invocations that have one, in
    /// whole microseconds: an integer sum is the same in any order, so
    /// batches, backends and `rebuild` agree to the last digit (D37).
    pub total_duration_micros: i64,
    /// How many durations `total_duration_micros` sums.
    pub duration_count: i64,
    /// Shortest of those durations.
    pub min_duration_seconds: Option<f64>,
    /// Longest of those durations.
    pub max_duration_seconds: Option<f64>,
    /// Workflow path → count, over all invocations.
    pub workflow_paths: CountMap,
    /// Error type → count, over all invocations.
    pub common_errors: CountMap,
    /// Follow-up action → count; every action of every invocation counts.
    pub follow_up_actions: CountMap,
    /// Earliest `invoked_at`, whatever order events arrived in.
    pub first_invoked: Option<DateTime<Utc>>,
    /// Latest `invoked_at`.
    pub last_invoked: Option<DateTime<Utc>>,
    /// Distribution of the same durations, for percentiles.
    pub digest: DurationDigest,
    /// Per map, the summed counts of the keys it does not list: 0 while it
    /// lists every key, above 0 once it has outgrown [`crate::MAP_LIMIT`]
    /// (decision D86), in [`crate::MapKind::ALL`] order.
    pub others: [i64; 3],
}

/// A duration in whole microseconds (rounded to the nearest). Durations are
/// validated to at most [`crate::MAX_DURATION_SECONDS`], so this is exact in
/// an `i64` and a sum of nine thousand of the largest still fits.
pub fn micros(seconds: f64) -> i64 {
    (seconds * 1e6).round() as i64
}

/// Whole microseconds as seconds.
pub fn seconds(micros: i64) -> f64 {
    micros as f64 / 1e6
}

fn bump(map: &mut CountMap, key: &str, by: i64) {
    *map.entry(key.to_owned()).or_insert(0) += by;
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn latest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn smaller(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl SkillAggregate {
    /// The aggregate of `invocations`, in any order.
    pub fn from_invocations<'a>(invocations: impl IntoIterator<Item = &'a Invocation>) -> Self {
        let mut agg = Self::default();
        for inv in invocations {
            agg.fold(inv);
        }
        agg
    }

    /// Counts one more invocation.
    pub fn fold(&mut self, inv: &Invocation) {
        self.total += 1;
        if inv.completed {
            self.completed += 1;
            if let Some(d) = inv.duration_seconds {
                self.total_duration_micros = self.total_duration_micros.saturating_add(micros(d));
                self.duration_count += 1;
                self.min_duration_seconds = smaller(self.min_duration_seconds, Some(d));
                self.max_duration_seconds = larger(self.max_duration_seconds, Some(d));
                self.digest.add(d);
            }
        } else {
            self.abandoned += 1;
        }
        if let Some(path) = &inv.workflow_path {
            bump(&mut self.workflow_paths, path, 1);
        }
        if let Some(error) = &inv.error_type {
            bump(&mut self.common_errors, error, 1);
        }
        for action in &inv.follow_up_actions {
            bump(&mut self.follow_up_actions, action, 1);
        }
        self.first_invoked = earliest(self.first_invoked, Some(inv.invoked_at));
        self.last_invoked = latest(self.last_invoked, Some(inv.invoked_at));
    }

    /// Adds `other` in, as if its invocations had been folded here.
    ///
    /// # Errors
    /// The two digests cannot be merged (`self` is then unchanged).
    pub fn merge(&mut self, other: &Self) -> Result<(), DigestError> {
        self.digest.merge(&other.digest)?;
        self.total += other.total;
        self.completed += other.completed;
        self.abandoned += other.abandoned;
        self.total_duration_micros = self
            .total_duration_micros
            .saturating_add(other.total_duration_micros);
        self.duration_count += other.duration_count;
        self.min_duration_seconds = smaller(self.min_duration_seconds, other.min_duration_seconds);
        self.max_duration_seconds = larger(self.max_duration_seconds, other.max_duration_seconds);
        for (map, theirs) in [
            (&mut self.workflow_paths, &other.workflow_paths),
            (&mut self.common_errors, &other.common_errors),
            (&mut self.follow_up_actions, &other.follow_up_actions),
        ] {
            for (k, v) in theirs {
                bump(map, k, *v);
            }
        }
        for (mine, theirs) in self.others.iter_mut().zip(other.others) {
            *mine += theirs;
        }
        self.first_invoked = earliest(self.first_invoked, other.first_invoked);
        self.last_invoked = latest(self.last_invoked, other.last_invoked);
        Ok(())
    }

    /// The map of `kind` and the sum of the counts it does not list.
    pub fn map_mut(&mut self, kind: crate::MapKind) -> (&mut CountMap, &mut i64) {
        let (map, i) = match kind {
            crate::MapKind::WorkflowPaths => (&mut self.workflow_paths, 0),
            crate::MapKind::CommonErrors => (&mut self.common_errors, 1),
            crate::MapKind::FollowUpActions => (&mut self.follow_up_actions, 2),
        };
        (map, &mut self.others[i])
    }

    /// The sum of the counts the map of `kind` does not list.
    pub fn other(&self, kind: crate::MapKind) -> i64 {
        self.others[kind as usize]
    }

    /// The map of `kind`.
    pub fn map(&self, kind: crate::MapKind) -> &CountMap {
        match kind {
            crate::MapKind::WorkflowPaths => &self.workflow_paths,
            crate::MapKind::CommonErrors => &self.common_errors,
            crate::MapKind::FollowUpActions => &self.follow_up_actions,
        }
    }

    /// completed / total × 100, and 0 (never NaN) when nothing is counted.
    pub fn completion_rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.completed as f64 / self.total as f64 * 100.0
        }
    }

    /// The summed durations in seconds.
    pub fn total_duration_seconds(&self) -> f64 {
        seconds(self.total_duration_micros)
    }

    /// Mean of the completed durations; `None` when there are none.
    pub fn avg_duration_seconds(&self) -> Option<f64> {
        (self.duration_count > 0)
            .then(|| self.total_duration_micros as f64 / self.duration_count as f64 / 1e6)
    }

    /// p50/p95/p99 of the completed durations, from the digest.
    pub fn percentiles(&self) -> Percentiles {
        self.digest.percentiles()
    }
}

/// One `session_skill` row: a skill's use within one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionSkillAggregate {
    /// Invocations of the skill in the session.
    pub invocation_count: i64,
    /// Earliest `invoked_at`.
    pub first_invoked_at: DateTime<Utc>,
    /// Latest `invoked_at`.
    pub last_invoked_at: DateTime<Utc>,
    /// Sum of all durations, abandoned included, a missing one counting 0,
    /// in whole microseconds.
    pub total_duration_micros: i64,
}

impl SessionSkillAggregate {
    /// The row for a single invocation.
    pub fn of(inv: &Invocation) -> Self {
        Self {
            invocation_count: 1,
            first_invoked_at: inv.invoked_at,
            last_invoked_at: inv.invoked_at,
            total_duration_micros: inv.duration_seconds.map_or(0, micros),
        }
    }

    /// The summed durations in seconds.
    pub fn total_duration_seconds(&self) -> f64 {
        seconds(self.total_duration_micros)
    }

    /// Adds `other` in.
    pub fn merge(&mut self, other: &Self) {
        self.invocation_count += other.invocation_count;
        self.first_invoked_at = self.first_invoked_at.min(other.first_invoked_at);
        self.last_invoked_at = self.last_invoked_at.max(other.last_invoked_at);
        self.total_duration_micros = self
            .total_duration_micros
            .saturating_add(other.total_duration_micros);
    }
}

#[cfg(test)]
mod tests;
