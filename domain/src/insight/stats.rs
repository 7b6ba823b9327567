//! The tests the insights use, as p-values: Fisher's exact test of two
//! proportions, the exact conditional binomial test of two counts, and
//! Benjamini–Hochberg's adjustment for many of them (decision D95).

/// Above this many terms an exact tail is replaced by its normal
/// approximation, which is then accurate to far better than any level a
/// finding uses.
const EXACT_TERMS: i64 = 20_000;

/// P(Z ≥ z) for a standard normal Z.
pub fn normal_upper(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// ln C(n, k).
fn ln_choose(n: i64, k: i64) -> f64 {
    let f = |x: i64| libm::lgamma(x as f64 + 1.0);
    f(n) - f(k) - f(n - k)
}

/// The sum of `pmf(i)` for i in `from..=to`, each given as a logarithm,
/// without overflow.
fn sum_exp(from: i64, to: i64, ln_pmf: impl Fn(i64) -> f64) -> f64 {
    if from > to {
        return 0.0;
    }
    let terms: Vec<f64> = (from..=to).map(ln_pmf).collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return 0.0;
    }
    (top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln())
        .exp()
        .min(1.0)
}

/// P(X ≥ k) for X ~ Binomial(n, p).
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
    if n - k > EXACT_TERMS {
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        return normal_upper((k as f64 - 0.5 - n as f64 * p) / sd);
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    sum_exp(k, n, |i| {
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
    let hi = k.min(n1);
    if hi - k1 > EXACT_TERMS {
        // The pooled two-proportion z-test.
        let pooled = k as f64 / n as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n0 as f64)).sqrt();
        return normal_upper((k1 as f64 / n1 as f64 - k0 as f64 / n0 as f64) / se);
    }
    // X, the first group's count, is hypergeometric given the margins.
    let ln_total = ln_choose(n, n1);
    sum_exp(k1.max(k - n0).max(0), hi, |i| {
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
        // Exact and approximate agree where they meet.
        let exact = binomial_upper(10_300, 20_000, 0.5);
        let approx = normal_upper((10_300.0 - 0.5 - 10_000.0) / 70.710_678);
        assert!(close(exact, approx, 0.05), "{exact} {approx}");
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
        // Far from the exact limit: the z-test's value.
        let p = proportion_greater(30_000, 100_000, 29_000, 100_000);
        assert!(p < 1e-5 && p > 1e-9, "{p}");
    }

    #[test]
    fn benjamini_hochberg_adjusts_like_the_reference() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH")
        let q = adjust(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.02, 0.04, 0.04, 0.02];
        for (a, b) in q.iter().zip(want) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        assert!(adjust(&[]).is_empty());
    }
}
