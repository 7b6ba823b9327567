//! One `skill_metrics` row against the log's aggregate of its skill: every
//! column, the percentiles at the digest's bound, and the maps (D86).

use std::collections::BTreeMap;

use domain::{
    CountMap, DIGEST_BOUND, MAP_LIMIT, MapKind, SkillAggregate, exact_percentile,
    is_bounded_form_of,
};
use entity::skill_metrics;

use super::{check, diff, within_bound};
use crate::integrity::Difference;
use crate::rows::{aggregate_from_model, count_map_from_json};

/// One map of a skill: inline, it must equal the log's; spilled (D86),
/// every key's row must hold the log's count and the stored map must list
/// the largest keys with the exact sum of the rest.
fn compare_map(
    d: &mut Vec<Difference>,
    name: &str,
    kind: MapKind,
    (listed, other): (&CountMap, i64),
    children: Option<&CountMap>,
    want: &CountMap,
) {
    let t = "skill_metrics";
    let none = CountMap::new();
    let children = children.unwrap_or(&none);
    if want.len() <= MAP_LIMIT {
        check(d, t, name, kind.as_str(), listed, want);
        check(d, t, name, &format!("{}_other", kind.as_str()), other, 0);
        if !children.is_empty() {
            d.push(diff(
                "skill_map_counts",
                name,
                kind.as_str(),
                format!("{} keys", children.len()),
                "none (the map is inline)",
            ));
        }
        return;
    }
    let wrong = want
        .iter()
        .filter(|(k, v)| children.get(*k) != Some(*v))
        .count()
        + children.keys().filter(|k| !want.contains_key(*k)).count();
    if wrong > 0 {
        d.push(diff(
            "skill_map_counts",
            name,
            kind.as_str(),
            format!(
                "{wrong} of {} keys with another count or missing",
                want.len()
            ),
            "every key with the log's count",
        ));
    }
    if !is_bounded_form_of(listed, other, want) {
        d.push(diff(
            t,
            name,
            kind.as_str(),
            format!("{} keys listed, {other} in the rest", listed.len()),
            format!(
                "the {MAP_LIMIT} largest of {} keys, the exact sum of the rest",
                want.len()
            ),
        ));
    }
}

pub(super) fn compare_skill(
    name: &str,
    m: &skill_metrics::Model,
    want: &SkillAggregate,
    (durations, pruned): (&[f64], bool),
    children: &BTreeMap<MapKind, CountMap>,
    d: &mut Vec<Difference>,
) {
    let t = "skill_metrics";
    check(
        d,
        t,
        name,
        "total_invocations",
        m.total_invocations,
        want.total,
    );
    check(
        d,
        t,
        name,
        "completed_invocations",
        m.completed_invocations,
        want.completed,
    );
    check(
        d,
        t,
        name,
        "abandoned_invocations",
        m.abandoned_invocations,
        want.abandoned,
    );
    check(
        d,
        t,
        name,
        "duration_count",
        m.duration_count,
        want.duration_count,
    );
    // Sums are integers of microseconds, so every derived figure is exact.
    check(
        d,
        t,
        name,
        "total_duration_micros",
        m.total_duration_micros,
        want.total_duration_micros,
    );
    check(
        d,
        t,
        name,
        "total_duration_seconds",
        m.total_duration_seconds,
        want.total_duration_seconds(),
    );
    check(
        d,
        t,
        name,
        "min_duration_seconds",
        m.min_duration_seconds,
        want.min_duration_seconds,
    );
    check(
        d,
        t,
        name,
        "max_duration_seconds",
        m.max_duration_seconds,
        want.max_duration_seconds,
    );
    check(
        d,
        t,
        name,
        "avg_duration_seconds",
        m.avg_duration_seconds,
        want.avg_duration_seconds(),
    );
    check(
        d,
        t,
        name,
        "completion_rate",
        m.completion_rate,
        want.completion_rate(),
    );
    check(
        d,
        t,
        name,
        "success_rate",
        m.success_rate,
        Some(want.completion_rate()),
    );
    // Percentiles: the stored columns and the stored digest, each within
    // the digest's bound of the exact quantiles of the logged durations.
    let mut sorted = durations.to_vec();
    sorted.sort_by(f64::total_cmp);
    let have = aggregate_from_model(m);
    if let Err(e) = &have {
        d.push(diff(
            t,
            name,
            "duration_digest",
            format!("unusable: {e}"),
            "a digest of the logged durations",
        ));
    }
    for (field, q, column) in [
        ("p50_duration_seconds", 0.50, m.p50_duration_seconds),
        ("p95_duration_seconds", 0.95, m.p95_duration_seconds),
        ("p99_duration_seconds", 0.99, m.p99_duration_seconds),
    ] {
        let (exact, kind) = if pruned {
            (want.digest.quantile(q), "log and pruned balance")
        } else {
            (exact_percentile(&sorted, q), "exact")
        };
        let bound = || format!("{exact:?} ({kind}; within {} %)", DIGEST_BOUND * 100.0);
        if !within_bound(column, exact) {
            d.push(diff(t, name, field, format!("{column:?}"), bound()));
        }
        if let Ok(have) = &have {
            let from_digest = have.digest.quantile(q);
            if !within_bound(from_digest, exact) {
                d.push(diff(
                    t,
                    name,
                    &format!("duration_digest (q={q})"),
                    format!("{from_digest:?}"),
                    bound(),
                ));
            }
        }
    }
    if let Ok(have) = &have {
        check(
            d,
            t,
            name,
            "duration_digest",
            have.digest.count(),
            if pruned {
                want.digest.count()
            } else {
                sorted.len() as u64
            },
        );
    }
    let stored_maps = [
        (&m.workflow_paths, m.workflow_paths_other),
        (&m.common_errors, m.common_errors_other),
        (&m.follow_up_actions, m.follow_up_actions_other),
    ];
    for (kind, (stored, other)) in MapKind::ALL.into_iter().zip(stored_maps) {
        compare_map(
            d,
            name,
            kind,
            (&count_map_from_json(stored), other),
            children.get(&kind),
            want.map(kind),
        );
    }
    check(
        d,
        t,
        name,
        "first_invoked",
        m.first_invoked,
        want.first_invoked,
    );
    check(
        d,
        t,
        name,
        "last_invoked",
        m.last_invoked,
        want.last_invoked,
    );
}
