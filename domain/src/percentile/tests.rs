//! The digest against exact quantiles, its stored forms and its merges.

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

    #[test]
    fn counts_above_a_value_are_right_within_the_bound(
        values in prop::collection::vec(0.001f64..100.0, 1..3000),
        t in 0.001f64..100.0,
    ) {
        let mut d = DurationDigest::default();
        for v in &values { d.add(*v); }
        let above = |x: f64| values.iter().filter(|v| **v > x).count() as u64;
        let got = d.count_above(t);
        if values.len() <= 128 {
            prop_assert_eq!(got, above(t));
        } else {
            // Values within the sketch's accuracy of t may fall either side.
            prop_assert!(above(t * 1.02) <= got && got <= above(t / 1.02),
                "t={t} got={got} exact={}", above(t));
        }
    }
}
