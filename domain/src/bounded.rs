//! Bounded count maps (decision D86). A skill's workflow paths, error types
//! and follow-up actions are kept inline, every key with its count, while a
//! map has at most [`MAP_LIMIT`] keys. Beyond, the stored map lists only the
//! [`MAP_LIMIT`] largest counts, and the exact sum of every other key's
//! count is kept beside it ("other"); each key's exact count then lives in
//! a row of its own, which a write updates by key. So a write costs the same
//! whatever the number of keys a skill has seen.

use std::collections::BTreeMap;

use crate::CountMap;

/// The most keys a stored map lists.
pub const MAP_LIMIT: usize = 100;

/// Which of a skill's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKind {
    /// `workflow_paths`.
    WorkflowPaths,
    /// `common_errors`.
    CommonErrors,
    /// `follow_up_actions`.
    FollowUpActions,
}

impl MapKind {
    /// Every kind, in column order.
    pub const ALL: [Self; 3] = [
        Self::WorkflowPaths,
        Self::CommonErrors,
        Self::FollowUpActions,
    ];

    /// The name stored with a key's count (the map's column name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkflowPaths => "workflow_paths",
            Self::CommonErrors => "common_errors",
            Self::FollowUpActions => "follow_up_actions",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// `all` cut to its [`MAP_LIMIT`] largest counts (ties: the smaller key
/// first) and the sum of the rest.
pub fn top(all: &CountMap) -> (CountMap, i64) {
    if all.len() <= MAP_LIMIT {
        return (all.clone(), 0);
    }
    let mut ranked: Vec<(&String, &i64)> = all.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let listed: CountMap = ranked[..MAP_LIMIT]
        .iter()
        .map(|(k, v)| ((*k).clone(), **v))
        .collect();
    let other = ranked[MAP_LIMIT..].iter().map(|(_, v)| **v).sum();
    (listed, other)
}

/// Whether a stored map (`listed`, `other`) may stay inline after adding
/// `delta`: it has spilled already when `other` is above zero, and spills
/// when the new keys would take it past [`MAP_LIMIT`].
pub fn stays_inline(listed: &CountMap, other: i64, delta: &CountMap) -> bool {
    other == 0
        && listed.len() + delta.keys().filter(|k| !listed.contains_key(*k)).count() <= MAP_LIMIT
}

/// Brings a spilled map up to date: `exact` holds, for every key this write
/// touched, its delta and its exact count after the write. Listed keys take
/// their new counts; the others add their deltas to `other` and replace the
/// smallest listed key when their count passes it (which then joins
/// `other`), so `listed` stays the largest counts and `other` the exact sum
/// of the rest.
pub fn apply_exact(listed: &mut CountMap, other: &mut i64, exact: &BTreeMap<String, (i64, i64)>) {
    for (key, (delta, count)) in exact {
        if let Some(have) = listed.get_mut(key) {
            *have = *count;
            continue;
        }
        if listed.len() < MAP_LIMIT {
            // Only while spilling: the key was counted in `other` before.
            *other -= count - delta;
            listed.insert(key.clone(), *count);
            continue;
        }
        *other += delta;
        let (smallest_key, smallest) = listed
            .iter()
            .min_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(k, v)| (k.clone(), *v))
            .expect("a full map has a smallest entry");
        if *count > smallest {
            listed.remove(&smallest_key);
            listed.insert(key.clone(), *count);
            *other += smallest - count;
        }
    }
}

/// Whether (`listed`, `other`) is a faithful bounded form of `all`: every
/// listed count exact, no unlisted key larger than a listed one, as many
/// keys listed as the limit allows, and `other` the sum of the rest.
pub fn is_bounded_form_of(listed: &CountMap, other: i64, all: &CountMap) -> bool {
    if listed.len() != all.len().min(MAP_LIMIT) {
        return false;
    }
    if listed.iter().any(|(k, v)| all.get(k) != Some(v)) {
        return false;
    }
    let smallest_listed = listed.values().min().copied().unwrap_or(0);
    let largest_unlisted = all
        .iter()
        .filter(|(k, _)| !listed.contains_key(*k))
        .map(|(_, v)| *v)
        .max()
        .unwrap_or(0);
    let rest: i64 = all
        .iter()
        .filter(|(k, _)| !listed.contains_key(*k))
        .map(|(_, v)| *v)
        .sum();
    largest_unlisted <= smallest_listed && rest == other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> String {
        format!("k{i:06}")
    }

    #[test]
    fn a_map_within_the_limit_is_kept_whole() {
        let all: CountMap = (0..MAP_LIMIT).map(|i| (key(i), 1)).collect();
        assert_eq!(top(&all), (all.clone(), 0));
        assert!(stays_inline(&all, 0, &CountMap::from([(key(0), 5)])));
        assert!(!stays_inline(
            &all,
            0,
            &CountMap::from([(key(MAP_LIMIT), 1)])
        ));
    }

    /// Keys arrive in an order where late keys overtake early ones, up to
    /// three in one write; the incremental form is a faithful form of the
    /// exact counts after every write.
    #[test]
    fn incremental_updates_keep_the_largest_counts_and_an_exact_rest() {
        let mut exact = CountMap::new();
        let (mut listed, mut other) = (CountMap::new(), 0i64);
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            x >> 33
        };
        for step in 0..20_000usize {
            let mut delta = CountMap::new();
            for _ in 0..=next() % 3 {
                // Skewed: later keys come more often, so they overtake.
                let i = (next() as usize % 300).max(step / 100 % 300);
                *delta.entry(key(i)).or_default() += 1 + next() as i64 % 3;
            }
            for (k, d) in &delta {
                *exact.entry(k.clone()).or_default() += d;
            }
            if stays_inline(&listed, other, &delta) {
                for (k, d) in &delta {
                    *listed.entry(k.clone()).or_default() += d;
                }
            } else {
                let touched = delta
                    .iter()
                    .map(|(k, d)| (k.clone(), (*d, exact[k])))
                    .collect();
                apply_exact(&mut listed, &mut other, &touched);
            }
            assert!(is_bounded_form_of(&listed, other, &exact), "step {step}");
        }
        assert!(other > 0, "the test spilled");
        let (l, o) = top(&exact);
        assert!(is_bounded_form_of(&l, o, &exact));
    }

    #[test]
    fn a_wrong_form_is_told_apart() {
        let all: CountMap = (0..MAP_LIMIT + 5).map(|i| (key(i), i as i64 + 1)).collect();
        let (listed, other) = top(&all);
        assert!(is_bounded_form_of(&listed, other, &all));
        assert!(!is_bounded_form_of(&listed, other + 1, &all));
        let mut swapped = listed.clone();
        swapped.remove(&key(MAP_LIMIT + 4));
        swapped.insert(key(0), 1);
        assert!(!is_bounded_form_of(&swapped, other, &all));
        assert_eq!(MapKind::parse("common_errors"), Some(MapKind::CommonErrors));
    }
}
