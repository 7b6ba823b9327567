//! Percentiles of durations.
//!
//! The reference is linear interpolation between closest ranks (numpy's
//! default). A [`DurationDigest`] keeps every value while there are few
//! (exact), and a DDSketch always, so that recording one more value costs the
//! same whatever the history, and merging two digests equals building one.
//!
//! The bound, here and in the README: up to 128 values a quantile is exact;
//! beyond, it is within [`DIGEST_BOUND`] (1 %) of the exact quantile,
//! relative, or within 1 ns for quantiles under 1 ns (the sketch counts such
//! values as zero). The sketch itself is built for 0.5 %, so the 1 % leaves
//! room for the interpolation between two sketch values.

use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// Up to this many values the digest keeps them all and answers exactly.
const EXACT_LIMIT: usize = 128;
/// Relative accuracy of the sketch. Interpolating between two sketch values
/// each within this bound stays within it, safely under [`DIGEST_BOUND`].
const SKETCH_ALPHA: f64 = 0.005;
/// The promised accuracy of a quantile beyond 128 values: relative error at
/// most 1 % (absolute at most [`SKETCH_MIN_VALUE`] below it). `verify` checks
/// stored quantiles against the log's exact ones with this bound.
pub const DIGEST_BOUND: f64 = 0.01;
/// Enough bins for 1 µs .. 10⁹ s at this accuracy, so bins never collapse.
const SKETCH_MAX_BINS: u32 = 4096;
/// Values below one nanosecond count as zero.
const SKETCH_MIN_VALUE: f64 = 1e-9;
/// The stored form's version: the first byte of [`DurationDigest::to_bytes`].
/// The sketch crate is pinned to one exact version in `Cargo.toml`, since
/// its serialised fields are part of this format.
const FORMAT_VERSION: u8 = 2;

/// A digest that cannot be read or combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The bytes are not a digest of this program's format.
    #[error("the stored duration digest cannot be decoded: {0}")]
    Undecodable(String),
    /// The digest was written in another format version.
    #[error(
        "the stored duration digest has format version {found}, this program reads versions 1 and {FORMAT_VERSION}"
    )]
    Version {
        /// The version found.
        found: u8,
    },
    /// The two sketches were built with different settings.
    #[error("the duration digests have different sketch settings and cannot be merged")]
    Incompatible,
}

fn sketch_config() -> Config {
    Config::new(SKETCH_ALPHA, SKETCH_MAX_BINS, SKETCH_MIN_VALUE)
}

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
/// to 128 values and within 0.5 % relative error beyond. While it holds at
/// most 128 values it keeps only them; the sketch is built from them when
/// the 129th arrives (a sketch's bins are counts, so building it then
/// equals having added every value to it), which keeps the many small
/// digests of the hourly rollups small in memory and on disk.
#[derive(Clone)]
pub struct DurationDigest {
    count: u64,
    /// All values, ascending, while `count <= EXACT_LIMIT`; then `None`.
    exact: Option<Vec<f64>>,
    /// Once `exact` is `None`: every value.
    sketch: Option<DDSketch>,
}

/// The stored form, version 2: the sketch only once there is one.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u8,
    count: u64,
    exact: Option<Vec<f64>>,
    sketch: Option<DDSketch>,
}

/// The stored form of version 1, which always held a sketch.
#[derive(Deserialize)]
struct StoredV1 {
    _version: u8,
    count: u64,
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
            count: 0,
            exact: Some(Vec::new()),
            sketch: None,
        }
    }
}

fn sketch_of(values: &[f64]) -> DDSketch {
    let mut sketch = DDSketch::new(sketch_config());
    for v in values {
        sketch.add(*v);
    }
    sketch
}

impl DurationDigest {
    /// How many durations it summarises.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sketch of every value: the one kept, or one built from the values.
    fn full_sketch(&self) -> std::borrow::Cow<'_, DDSketch> {
        match (&self.sketch, &self.exact) {
            (Some(s), _) => std::borrow::Cow::Borrowed(s),
            (None, Some(values)) => std::borrow::Cow::Owned(sketch_of(values)),
            (None, None) => std::borrow::Cow::Owned(DDSketch::new(sketch_config())),
        }
    }

    /// Adds one duration (seconds).
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        if let Some(sketch) = &mut self.sketch {
            sketch.add(value);
            return;
        }
        let exact = self.exact.get_or_insert_with(Vec::new);
        if exact.len() < EXACT_LIMIT {
            let at = exact.partition_point(|v| v.total_cmp(&value).is_lt());
            exact.insert(at, value);
        } else {
            let mut sketch = sketch_of(exact);
            sketch.add(value);
            self.sketch = Some(sketch);
            self.exact = None;
        }
    }

    /// Adds every value of `other`.
    ///
    /// # Errors
    /// [`DigestError::Incompatible`] when the sketches' settings differ;
    /// `self` is then unchanged.
    pub fn merge(&mut self, other: &Self) -> Result<(), DigestError> {
        let exact = match (&self.exact, &other.exact) {
            (Some(mine), Some(theirs)) if mine.len() + theirs.len() <= EXACT_LIMIT => {
                let mut all = Vec::with_capacity(mine.len() + theirs.len());
                all.extend_from_slice(mine);
                all.extend_from_slice(theirs);
                all.sort_by(f64::total_cmp);
                Some(all)
            }
            _ => None,
        };
        if let Some(all) = exact {
            self.exact = Some(all);
            self.count += other.count;
            return Ok(());
        }
        let mut sketch = self.full_sketch().into_owned();
        sketch
            .merge(&other.full_sketch())
            .map_err(|_| DigestError::Incompatible)?;
        self.sketch = Some(sketch);
        self.exact = None;
        self.count += other.count;
        Ok(())
    }

    /// The `q`-quantile: exact (linear interpolation) while the digest holds
    /// every value; otherwise the same interpolation between the sketch's
    /// values at the two closest ranks.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if let Some(exact) = &self.exact {
            return exact_percentile(exact, q);
        }
        let sketch = self.sketch.as_ref()?;
        let n = self.count;
        if n == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let lo = pos.floor();
        let frac = pos - lo;
        let at_rank = |rank: f64| -> Option<f64> {
            if rank >= (n - 1) as f64 {
                return sketch.max();
            }
            // DDSketch maps q to rank floor(q·(n−1)); aim at the middle of
            // the rank so rounding cannot land on its neighbour.
            let q = ((rank + 0.5) / (n - 1) as f64).min(1.0);
            sketch.quantile(q).ok().flatten()
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

    /// The stored form (version 2; its first byte is the version).
    pub fn to_bytes(&self) -> Vec<u8> {
        let stored = Stored {
            version: FORMAT_VERSION,
            count: self.count,
            exact: self.exact.clone(),
            sketch: self.sketch.clone(),
        };
        // Serialising plain numbers and vectors into a Vec cannot fail.
        postcard::to_allocvec(&stored).unwrap_or_default()
    }

    /// Reads a stored digest of version 2, or of version 1 (whose sketch is
    /// dropped while the values are all kept: it is rebuilt from them).
    ///
    /// # Errors
    /// [`DigestError`] when the bytes are not a digest of this program's
    /// format, are inconsistent, or their sketch settings differ from this
    /// program's (it could not be merged).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DigestError> {
        let undecodable = |e: postcard::Error| DigestError::Undecodable(e.to_string());
        let digest = match bytes.first() {
            None => return Err(DigestError::Undecodable("no bytes".into())),
            Some(&FORMAT_VERSION) => {
                let s: Stored = postcard::from_bytes(bytes).map_err(undecodable)?;
                Self {
                    count: s.count,
                    exact: s.exact,
                    sketch: s.sketch,
                }
            }
            Some(1) => {
                let s: StoredV1 = postcard::from_bytes(bytes).map_err(undecodable)?;
                if s.sketch.count() as u64 != s.count {
                    return Err(DigestError::Undecodable(format!(
                        "it says {} values but holds {}",
                        s.count,
                        s.sketch.count()
                    )));
                }
                let sketch = s.exact.is_none().then_some(s.sketch);
                Self {
                    count: s.count,
                    exact: s.exact,
                    sketch,
                }
            }
            Some(&found) => return Err(DigestError::Version { found }),
        };
        let held = match (&digest.exact, &digest.sketch) {
            (Some(v), None) => v.len() as u64,
            (None, Some(s)) => s.count() as u64,
            _ => u64::MAX,
        };
        if held != digest.count {
            return Err(DigestError::Undecodable(format!(
                "it says {} values but holds {}",
                digest.count,
                if held == u64::MAX { 0 } else { held }
            )));
        }
        // Settings are checked by merging into a digest of ours that has a sketch.
        if let Some(sketch) = &digest.sketch {
            sketch_of(&[])
                .merge(sketch)
                .map_err(|_| DigestError::Incompatible)?;
        }
        Ok(digest)
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
        assert!(matches!(
            DurationDigest::from_bytes(b"junk"),
            Err(DigestError::Version { found: b'j' })
        ));
        assert!(matches!(
            DurationDigest::from_bytes(&[FORMAT_VERSION, 0xff]),
            Err(DigestError::Undecodable(_))
        ));
        assert!(DurationDigest::from_bytes(&[]).is_err());
    }

    /// Version 1 always stored a sketch; its digests still read, and answer
    /// as before. A small digest now stores only its values.
    #[test]
    fn version_one_digests_still_read_and_small_ones_stay_small() {
        #[derive(Serialize)]
        struct V1 {
            version: u8,
            count: u64,
            exact: Option<Vec<f64>>,
            sketch: DDSketch,
        }
        for n in [0usize, 3, 128, 129, 2_000] {
            let values: Vec<f64> = (0..n).map(|i| 0.5 + (i * 37 % 101) as f64 * 0.3).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let v1 = postcard::to_allocvec(&V1 {
                version: 1,
                count: n as u64,
                exact: (n <= EXACT_LIMIT).then(|| sorted.clone()),
                sketch: sketch_of(&values),
            })
            .unwrap();
            let old = DurationDigest::from_bytes(&v1).unwrap();
            let mut now = DurationDigest::default();
            values.iter().for_each(|v| now.add(*v));
            assert_eq!(old.percentiles(), now.percentiles(), "{n} values");
            assert_eq!(old.count(), now.count());
            let back = DurationDigest::from_bytes(&now.to_bytes()).unwrap();
            assert_eq!(back.percentiles(), now.percentiles());
            if n == 3 {
                assert!(now.to_bytes().len() < 40, "{} bytes", now.to_bytes().len());
                assert!(v1.len() > now.to_bytes().len());
            }
        }
    }

    #[test]
    fn a_sketch_with_other_settings_is_refused_not_merged() {
        let mut foreign = DDSketch::new(Config::new(0.02, 1024, 1e-6));
        for i in 0..200 {
            foreign.add(f64::from(i));
        }
        let other = DurationDigest {
            count: 200,
            exact: None,
            sketch: Some(foreign),
        };
        assert_eq!(
            DurationDigest::from_bytes(&other.to_bytes()).unwrap_err(),
            DigestError::Incompatible
        );
        let mut mine = DurationDigest::default();
        mine.add(1.0);
        assert_eq!(mine.merge(&other), Err(DigestError::Incompatible));
        // Unchanged by the refused merge.
        assert_eq!(mine.count(), 1);
        assert_eq!(mine.quantile(0.5), Some(1.0));
    }

    /// A small deterministic generator (xorshift64*), uniform in (0, 1).
    struct Uniform(u64);

    impl Uniform {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            (bits as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Standard normal (Box-Muller).
        fn normal(&mut self) -> f64 {
            let (u, v) = (self.next(), self.next());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// Checks p50/p95/p99 of `values` against the exact ones at the bound
    /// the module documents (and the README states).
    fn assert_within_bound(name: &str, values: &[f64]) {
        let mut d = DurationDigest::default();
        values.iter().for_each(|v| d.add(*v));
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 0.99] {
            let want = exact_percentile(&sorted, q).unwrap();
            let got = d.quantile(q).unwrap();
            let allowed = (want.abs() * DIGEST_BOUND).max(SKETCH_MIN_VALUE);
            assert!(
                (got - want).abs() <= allowed,
                "{name}: q={q} got {got}, exact {want}, allowed error {allowed}"
            );
        }
    }

    #[test]
    fn skewed_distributions_stay_within_the_stated_bound() {
        for seed in 1..=20u64 {
            let mut r = Uniform(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let n = 5_000;
            let lognormal: Vec<f64> = (0..n).map(|_| (1.0 + 1.5 * r.normal()).exp()).collect();
            assert_within_bound("lognormal", &lognormal);
            // Fast cache hits and slow full runs, three orders of magnitude apart.
            let bimodal: Vec<f64> = (0..n)
                .map(|_| {
                    if r.next() < 0.7 {
                        0.05 + 0.01 * r.normal().abs()
                    } else {
                        60.0 + 10.0 * r.normal().abs()
                    }
                })
                .collect();
            assert_within_bound("bimodal", &bimodal);
            // Pareto with shape 1.1: a tail of rare, very long runs.
            let heavy: Vec<f64> = (0..n).map(|_| 0.5 * r.next().powf(-1.0 / 1.1)).collect();
            assert_within_bound("heavy tail", &heavy);
            // Timer-resolution data: most values exactly equal.
            let equal: Vec<f64> = (0..n)
                .map(|_| if r.next() < 0.9 { 2.0 } else { 2.0 + r.next() })
                .collect();
            assert_within_bound("many equal", &equal);
            // Microsecond-scale calls, some below the sketch's 1 ns floor, and zeros.
            let tiny: Vec<f64> = (0..n)
                .map(|_| match r.next() {
                    x if x < 0.1 => 0.0,
                    x if x < 0.2 => 1e-10 * r.next(),
                    _ => 1e-6 * (1.0 + 100.0 * r.next()),
                })
                .collect();
            assert_within_bound("near zero", &tiny);
        }
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
            left.merge(&right).unwrap();
            let mut all = DurationDigest::default();
            a.iter().chain(&b).for_each(|v| all.add(*v));
            prop_assert_eq!(left.percentiles(), all.percentiles());
            prop_assert_eq!(left.count(), all.count());
        }
    }
}
