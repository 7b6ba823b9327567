//! The tests the insights use, as p-values: Fisher's exact test of two
//! proportions, the exact conditional binomial test of two counts, and
//! Benjamini–Hochberg's adjustment for many of them (decision D95). Every
//! tail is summed exactly, outward from where it starts until its terms
//! vanish, so there is no normal approximation to go wrong on small rates.

/// ln C(n, k).
fn ln_choose(n: i64, k: i64) -> f64 {
    let f = |x: i64| libm::lgamma(x as f64 + 1.0);
    f(n) - f(k) - f(n - k)
}

/// The sum of a unimodal distribution's probabilities (given as
/// logarithms) from `from` outward to `end`, away from its mode, where
/// every term is smaller than the one before: the sum stops once a term
/// no longer changes it, so a tail costs what it holds, not its length.
fn tail(from: i64, end: i64, ln_pmf: impl Fn(i64) -> f64) -> f64 {
    let step = if end >= from { 1 } else { -1 };
    let first = ln_pmf(from);
    let mut sum = 0.0_f64;
    let mut i = from;
    loop {
        let term = (ln_pmf(i) - first).exp();
        sum += term;
        if i == end || term < sum * 1e-17 {
            break;
        }
        i += step;
    }
    (first.exp() * sum).min(1.0)
}

/// P(X ≥ k) for X of a unimodal distribution on [lo, hi] with mode `mode`:
/// summed from k up when k is past the mode, else 1 − P(X ≤ k − 1) summed
/// from k − 1 down, so each sum runs away from the mode.
fn upper(k: i64, lo: i64, hi: i64, mode: i64, ln_pmf: impl Fn(i64) -> f64) -> f64 {
    if k <= lo {
        return 1.0;
    }
    if k > hi {
        return 0.0;
    }
    if k > mode {
        tail(k, hi, ln_pmf)
    } else {
        (1.0 - tail(k - 1, lo, ln_pmf)).max(0.0)
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p), exact.
pub fn binomial_upper(k: i64, n: i64, p: f64) -> f64 {
    if k <= 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mode = (((n + 1) as f64) * p).floor() as i64;
    upper(k, 0, n, mode.min(n), |i| {
        ln_choose(n, i) + i as f64 * lp + (n - i) as f64 * lq
    })
}

/// P(X ≤ k) for X ~ Binomial(n, p).
pub fn binomial_lower(k: i64, n: i64, p: f64) -> f64 {
    // X ≤ k is n − X ≥ n − k, and n − X ~ Binomial(n, 1 − p).
    binomial_upper(n - k, n, 1.0 - p)
}

/// The two-sided exact conditional test of two counts: `a` events in an
/// exposure of `ea` against `b` in `eb`, under one rate for both. Given
/// a + b, `a` is Binomial(a + b, ea / (ea + eb)); the p-value doubles the
/// smaller tail.
pub fn counts_differ(a: i64, ea: f64, b: i64, eb: f64) -> f64 {
    let n = a + b;
    let p = ea / (ea + eb);
    (2.0 * binomial_upper(a, n, p).min(binomial_lower(a, n, p))).min(1.0)
}

/// Fisher's exact test, one-sided: the p-value of `k1` of `n1` against
/// `k0` of `n0` when the first proportion is no larger than the second
/// (small when `k1 / n1` is larger).
pub fn proportion_greater(k1: i64, n1: i64, k0: i64, n0: i64) -> f64 {
    let (n, k) = (n0 + n1, k0 + k1);
    if n1 <= 0 || n0 <= 0 || k <= 0 || k >= n {
        return 1.0;
    }
    // X, the first group's count, is hypergeometric given the margins.
    let ln_total = ln_choose(n, n1);
    let (lo, hi) = ((k - n0).max(0), k.min(n1));
    let mode = (((n1 + 1) as f64) * ((k + 1) as f64) / ((n + 2) as f64)).floor() as i64;
    upper(k1, lo, hi, mode.clamp(lo, hi), |i| {
        ln_choose(k, i) + ln_choose(n - k, n1 - i) - ln_total
    })
}

/// Fisher's exact test, two-sided (the smaller one-sided tail doubled).
pub fn proportions_differ(k1: i64, n1: i64, k0: i64, n0: i64) -> f64 {
    let greater = proportion_greater(k1, n1, k0, n0);
    let smaller = proportion_greater(n1 - k1, n1, n0 - k0, n0);
    (2.0 * greater.min(smaller)).min(1.0)
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the order given: a
/// test is a finding at false-discovery rate α when its q-value is ≤ α.
pub fn adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[b].total_cmp(&p_values[a]));
    let mut q = vec![1.0; m];
    let mut running = 1.0_f64;
    for (i, &at) in order.iter().enumerate() {
        // `at` has rank m − i among the p-values, ascending.
        let rank = (m - i) as f64;
        running = running.min(p_values[at] * m as f64 / rank);
        q[at] = running.min(1.0);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(Z ≥ z) for a standard normal Z.
    fn normal_upper(z: f64) -> f64 {
        0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn normal_tails_are_the_tables() {
        assert!(close(normal_upper(0.0), 0.5, 1e-12));
        assert!(close(normal_upper(1.959_963_985), 0.025, 1e-6));
        assert!(close(normal_upper(3.0), 0.001_349_898, 1e-5));
    }

    #[test]
    fn binomial_tails_match_direct_sums() {
        // P(X ≥ 8), X ~ Bin(10, 0.5) = (45 + 10 + 1) / 1024.
        assert!(close(binomial_upper(8, 10, 0.5), 56.0 / 1024.0, 1e-9));
        assert!(close(binomial_lower(2, 10, 0.5), 56.0 / 1024.0, 1e-9));
        assert_eq!(binomial_upper(0, 10, 0.3), 1.0);
        assert_eq!(binomial_upper(11, 10, 0.3), 0.0);
        // Large n: close to the normal tail (with continuity correction).
        let exact = binomial_upper(10_300, 20_000, 0.5);
        let approx = normal_upper((10_300.0 - 0.5 - 10_000.0) / 70.710_678);
        assert!(close(exact, approx, 0.05), "{exact} {approx}");
        // Below the mode the tail is the complement: P(X ≥ 3), Bin(10, ½).
        assert!(close(binomial_upper(3, 10, 0.5), 1.0 - 56.0 / 1024.0, 1e-9));
        // A small rate over a long exposure (where a normal approximation
        // is too small): P(X ≥ 3), Bin(200, 0.002) = 1 − Σ_{i<3}.
        let p: f64 = 0.002;
        let below: f64 = (0..3)
            .map(|i| {
                let c = [1.0, 200.0, 19_900.0][i as usize];
                c * p.powi(i) * (1.0 - p).powi(200 - i)
            })
            .sum();
        assert!(close(binomial_upper(3, 200, p), 1.0 - below, 1e-9));
        assert!(close(counts_differ(10, 1.0, 10, 1.0), 1.0, 1e-12));
        // 30 against 10 in equal exposures: 2 · P(X ≥ 30 | n = 40, ½).
        assert!(close(
            counts_differ(30, 1.0, 10, 1.0),
            2.0 * binomial_upper(30, 40, 0.5),
            1e-12
        ));
    }

    #[test]
    fn fisher_matches_the_textbook_tea_tasting() {
        // Fisher's lady tasting tea: 3 of 4 right, one-sided p = 17/70.
        assert!(close(proportion_greater(3, 4, 1, 4), 17.0 / 70.0, 1e-9));
        assert!(close(proportion_greater(4, 4, 0, 4), 1.0 / 70.0, 1e-9));
        assert_eq!(proportion_greater(0, 10, 0, 10), 1.0);
        assert!(close(proportions_differ(4, 4, 0, 4), 2.0 / 70.0, 1e-9));
        // Large counts: near the pooled z-test's value (z = 4.9, p ≈ 5e-7).
        let p = proportion_greater(30_000, 100_000, 29_000, 100_000);
        assert!(p < 1e-5 && p > 1e-8, "{p}");
        // Below the mode: the complement, summed the other way.
        assert!(close(
            proportion_greater(1, 4, 3, 4),
            1.0 - 1.0 / 70.0,
            1e-9
        ));
    }

    #[test]
    fn benjamini_hochberg_adjusts_by_its_definition() {
        // By the definition: sorted 0.005, 0.01, 0.03, 0.04 give
        // 0.005·4/1, 0.01·4/2, 0.03·4/3, 0.04·4/4, then the running minimum
        // from the largest down.
        let q = adjust(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        assert!(adjust(&[]).is_empty());
    }
}
