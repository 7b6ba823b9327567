//! Percentiles of durations.
//!
//! The reference is linear interpolation between closest ranks (numpy's
//! default). A [`DurationDigest`] keeps every value while there are few
//! (exact), and a DDSketch always, so that recording one more value costs the
//! same whatever the history, and merging two digests equals building one.

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// Up to this many values the digest keeps them all and answers exactly.
const EXACT_LIMIT: usize = 128;
/// Relative accuracy of the sketch. Interpolating between two sketch values
/// each within this bound stays within it, safely under the promised 1 %.
const SKETCH_ALPHA: f64 = 0.005;
/// Enough bins for 1 µs .. 10⁹ s at this accuracy, so bins never collapse.
const SKETCH_MAX_BINS: u32 = 4096;
/// Values below one nanosecond count as zero.
const SKETCH_MIN_VALUE: f64 = 1e-9;
const FORMAT_VERSION: u8 = 1;

/// p50, p95 and p99 of a set of durations; `None` when the set is empty.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `sorted` by linear interpolation between
/// closest ranks; `None` for an empty slice. `sorted` must be ascending.
pub fn exact_percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// p50/p95/p99 of `values` (any order) by [`exact_percentile`].
pub fn exact_percentiles(values: &mut [f64]) -> Percentiles {
    values.sort_by(f64::total_cmp);
    Percentiles {
        p50: exact_percentile(values, 0.50),
        p95: exact_percentile(values, 0.95),
        p99: exact_percentile(values, 0.99),
    }
}

/// A mergeable summary of durations that answers percentiles exactly for up
/// to 128 values and within 0.5 % relative error beyond.
#[derive(Clone, Serialize, Deserialize)]
pub struct DurationDigest {
    version: u8,
    count: u64,
    /// All values, ascending, while `count <= EXACT_LIMIT`; then `None`.
    exact: Option<Vec<f64>>,
    sketch: DDSketch,
}

impl std::fmt::Debug for DurationDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationDigest")
            .field("count", &self.count)
            .field("exact", &self.exact.as_ref().map(Vec::len))
            .finish()
    }
}

impl Default for DurationDigest {
    fn default() -> Self {
        Self {
            version: FORMAT_VERSION,
            count: 0,
            exact: Some(Vec::new()),
            sketch: DDSketch::new(Config::new(SKETCH_ALPHA, SKETCH_MAX_BINS, SKETCH_MIN_VALUE)),
        }
    }
}

impl DurationDigest {
    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one duration (finite, ≥ 0: the caller validated it).
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sketch.add(value);
        if let Some(exact) = &mut self.exact {
            if exact.len() < EXACT_LIMIT {
                let at = exact.partition_point(|v| v.total_cmp(&value).is_lt());
                exact.insert(at, value);
            } else {
                self.exact = None;
            }
        }
    }

    /// Adds every value of `other`, as if each had been added here.
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        // Both sketches share one configuration, so merging cannot fail.
        let _ = self.sketch.merge(&other.sketch);
        self.exact = match (self.exact.take(), &other.exact) {
            (Some(mut mine), Some(theirs)) if mine.len() + theirs.len() <= EXACT_LIMIT => {
                mine.extend_from_slice(theirs);
                mine.sort_by(f64::total_cmp);
                Some(mine)
            }
            _ => None,
        };
    }

    /// The `q`-quantile: exact while few values are held, otherwise the
    /// interpolation between the sketch's values at the two closest ranks.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if let Some(exact) = &self.exact {
            return exact_percentile(exact, q);
        }
        let n = self.count;
        if n == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let lo = pos.floor();
        let frac = pos - lo;
        let at_rank = |rank: f64| -> Option<f64> {
            if rank >= (n - 1) as f64 {
                return self.sketch.max();
            }
            // DDSketch maps q to rank floor(q·(n−1)); aim at the middle of
            // the rank so rounding cannot land on its neighbour.
            let q = ((rank + 0.5) / (n - 1) as f64).min(1.0);
            self.sketch.quantile(q).ok().flatten()
        };
        let low = at_rank(lo)?;
        if frac == 0.0 {
            return Some(low);
        }
        let high = at_rank(lo + 1.0)?;
        Some(low + (high - low) * frac)
    }

    /// p50, p95 and p99.
    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
        }
    }

    /// Compact binary form for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain numbers and vectors into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Reads [`DurationDigest::to_bytes`] output; `None` when it is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let digest: Self = postcard::from_bytes(bytes).ok()?;
        (digest.version == FORMAT_VERSION).then_some(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_matches_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(exact_percentile(&v, 0.5), Some(2.5));
        assert!((exact_percentile(&v, 0.95).unwrap() - 3.85).abs() < 1e-12);
        assert_eq!(exact_percentile(&[7.0], 0.99), Some(7.0));
        assert_eq!(exact_percentile(&[], 0.5), None);
    }

    #[test]
    fn small_counts_are_exact() {
        let mut d = DurationDigest::default();
        for v in [5.0, 1.0, 3.0] {
            d.add(v);
        }
        assert_eq!(d.quantile(0.5), Some(3.0));
        assert_eq!(d.quantile(0.95), Some(4.8));
    }

    #[test]
    fn survives_a_round_trip_through_bytes() {
        let mut d = DurationDigest::default();
        for i in 0..1000 {
            d.add(i as f64 / 7.0);
        }
        let back = DurationDigest::from_bytes(&d.to_bytes()).unwrap();
        assert_eq!(back.percentiles(), d.percentiles());
        assert!(DurationDigest::from_bytes(b"junk").is_none());
    }

    proptest! {
        #[test]
        fn large_sets_stay_within_one_percent(
            values in prop::collection::vec(0.0f64..100.0, 129..3000),
            q in prop::sample::select(vec![0.5, 0.95, 0.99]),
        ) {
            let mut d = DurationDigest::default();
            for v in &values { d.add(*v); }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let want = exact_percentile(&sorted, q).unwrap();
            let got = d.quantile(q).unwrap();
            prop_assert!((got - want).abs() <= want.abs() * 0.01 + 1e-9, "q={q} got={got} want={want}");
        }

        #[test]
        fn merging_equals_adding_everything(
            a in prop::collection::vec(0.0f64..1e4, 0..300),
            b in prop::collection::vec(0.0f64..1e4, 0..300),
        ) {
            let mut left = DurationDigest::default();
            a.iter().for_each(|v| left.add(*v));
            let mut right = DurationDigest::default();
            b.iter().for_each(|v| right.add(*v));
            left.merge(&right);
            let mut all = DurationDigest::default();
            a.iter().chain(&b).for_each(|v| all.add(*v));
            prop_assert_eq!(left.percentiles(), all.percentiles());
            prop_assert_eq!(left.count(), all.count());
        }
    }
}
