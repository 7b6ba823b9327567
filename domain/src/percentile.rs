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

    /// Whether it still holds every value (and answers exactly).
    pub fn is_exact(&self) -> bool {
        self.sketch.is_none()
    }

    /// The same values in the sketch alone, as a digest of more than 128
    /// values keeps them: to count two digests above one threshold alike
    /// when either has outgrown its exact values.
    pub fn sketched(&self) -> Self {
        Self {
            count: self.count,
            exact: None,
            sketch: Some(self.full_sketch().into_owned()),
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
        let theirs = other.full_sketch();
        // A sketch's merge checks the settings before it changes anything,
        // so a refused merge leaves `self` as it was.
        if let Some(sketch) = &mut self.sketch {
            sketch
                .merge(&theirs)
                .map_err(|_| DigestError::Incompatible)?;
        } else {
            let mut sketch = self.full_sketch().into_owned();
            sketch
                .merge(&theirs)
                .map_err(|_| DigestError::Incompatible)?;
            self.sketch = Some(sketch);
        }
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

    /// How many of the values exceed `t`: exact while the digest holds
    /// every value; otherwise the rank at which [`Self::quantile`] passes
    /// `t`, found by bisection, so within the sketch's accuracy.
    pub fn count_above(&self, t: f64) -> u64 {
        if let Some(exact) = &self.exact {
            return exact.iter().filter(|v| **v > t).count() as u64;
        }
        let n = self.count;
        let at_most = |q: f64| self.quantile(q).is_some_and(|v| v <= t);
        if n == 0 || !at_most(0.0) {
            return n;
        }
        if at_most(1.0) {
            return 0;
        }
        // The largest position with quantile ≤ t lies in [lo, hi).
        let gaps = (n - 1) as f64;
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        for _ in 0..64 {
            if (lo * gaps).floor() == (hi * gaps).floor() {
                break;
            }
            let mid = (lo + hi) / 2.0;
            if at_most(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let at_or_below = (lo * gaps).floor() as u64 + 1;
        n - at_or_below.min(n)
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
mod tests;
