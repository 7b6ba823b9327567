//! The dashboard summary (`skill_metrics_summary`), computed from per-skill
//! aggregates rather than by scanning the log.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::CountMap;

/// What the summary needs from one skill's aggregate.
#[derive(Debug, Clone, Copy)]
pub struct SummaryInput<'a> {
    /// The skill.
    pub skill_name: &'a str,
    /// Its invocations.
    pub total: i64,
    /// Its completed invocations.
    pub completed: i64,
    /// Its summed completed durations, in whole microseconds.
    pub total_duration_micros: i64,
    /// Its workflow path counts.
    pub workflow_paths: &'a CountMap,
    /// Its error type counts.
    pub common_errors: &'a CountMap,
}

/// One row of `skill_metrics_summary` (without its refresh time).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// Skills with a metrics row.
    pub total_skills: i64,
    /// Invocations over all skills.
    pub total_invocations: i64,
    /// completed / total × 100 over all skills; 0 when empty.
    pub overall_completion_rate: f64,
    /// The skill with most invocations, ties broken alphabetically.
    pub most_used_skill: Option<String>,
    /// Its invocation count (0 when empty).
    pub most_used_count: i64,
    /// Total duration ÷ completed invocations, as the design defines it; 0 when none.
    pub avg_duration_seconds: f64,
    /// The ten most frequent error types across all skills, most frequent
    /// first (ties by name); serialised as a `{name: count}` object in that order.
    #[serde(serialize_with = "ranked_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, i64>))]
    pub top_error_types: Vec<(String, i64)>,
    /// The ten most frequent workflow paths across all skills, likewise.
    #[serde(serialize_with = "ranked_object")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, i64>))]
    pub top_workflow_paths: Vec<(String, i64)>,
}

fn ranked_object<S: Serializer>(items: &[(String, i64)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(items.len()))?;
    for (k, v) in items {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Orders `{name: count}` pairs as the summary ranks them: most frequent
/// first, ties by name.
pub fn rank(items: &mut [(String, i64)]) {
    items.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

const TOP: usize = 10;

fn top(maps: impl Iterator<Item = (String, i64)>) -> Vec<(String, i64)> {
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    for (k, v) in maps {
        *merged.entry(k).or_insert(0) += v;
    }
    let mut ranked: Vec<_> = merged.into_iter().collect();
    rank(&mut ranked);
    ranked.truncate(TOP);
    ranked
}

impl Summary {
    /// Summarises per-skill aggregates.
    pub fn compute<'a>(skills: impl IntoIterator<Item = SummaryInput<'a>> + Clone) -> Self {
        let mut s = Self::default();
        let mut completed = 0i64;
        let mut duration = 0i64;
        for k in skills.clone() {
            s.total_skills += 1;
            s.total_invocations += k.total;
            completed += k.completed;
            duration = duration.saturating_add(k.total_duration_micros);
            let better = k.total > s.most_used_count
                || (k.total == s.most_used_count
                    && s.most_used_skill
                        .as_deref()
                        .is_none_or(|m| k.skill_name < m));
            if better {
                s.most_used_skill = Some(k.skill_name.to_owned());
                s.most_used_count = k.total;
            }
        }
        if s.total_invocations > 0 {
            s.overall_completion_rate = completed as f64 / s.total_invocations as f64 * 100.0;
        }
        if completed > 0 {
            s.avg_duration_seconds = duration as f64 / completed as f64 / 1e6;
        }
        s.top_error_types = top(skills
            .clone()
            .into_iter()
            .flat_map(|k| k.common_errors.iter().map(|(e, c)| (e.clone(), *c))));
        s.top_workflow_paths = top(skills
            .into_iter()
            .flat_map(|k| k.workflow_paths.iter().map(|(p, c)| (p.clone(), *c))));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_gives_zeros() {
        assert_eq!(
            Summary::compute(Vec::<SummaryInput>::new()),
            Summary::default()
        );
    }

    #[test]
    fn merges_maps_and_breaks_ties_alphabetically() {
        let e1: CountMap = [("T".to_string(), 2), ("a.b".to_string(), 1)].into();
        let e2: CountMap = [("T".to_string(), 3)].into();
        let p: CountMap = [("daily".to_string(), 4)].into();
        let none = CountMap::new();
        let rows = vec![
            SummaryInput {
                skill_name: "zeta",
                total: 4,
                completed: 2,
                total_duration_micros: 10_000_000,
                workflow_paths: &p,
                common_errors: &e1,
            },
            SummaryInput {
                skill_name: "alpha",
                total: 4,
                completed: 3,
                total_duration_micros: 5_000_000,
                workflow_paths: &none,
                common_errors: &e2,
            },
        ];
        let s = Summary::compute(rows);
        assert_eq!(s.total_skills, 2);
        assert_eq!(s.total_invocations, 8);
        assert_eq!(s.overall_completion_rate, 62.5);
        assert_eq!(s.most_used_skill.as_deref(), Some("alpha"));
        assert_eq!(s.most_used_count, 4);
        assert_eq!(s.avg_duration_seconds, 3.0);
        assert_eq!(
            s.top_error_types,
            vec![("T".to_string(), 5), ("a.b".to_string(), 1)]
        );
        assert_eq!(s.top_workflow_paths, vec![("daily".to_string(), 4)]);
    }
}
