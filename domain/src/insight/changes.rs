//! The tests of change, one skill at a time: latency (a quantile test),
//! reliability (completion and error types) and use (decision D95).

use super::stats::{counts_differ, proportion_greater, proportions_differ};
use super::{Finding, FindingKind, InsightSettings, Side, Tested, finding, pct, secs};
use crate::RollupAggregate;

/// A finding of `kind` about `name`'s `measure`, with the value of each
/// side and the sample behind it: (baseline, window).
fn compared(
    kind: FindingKind,
    name: &str,
    measure: &str,
    (baseline, baseline_count): (f64, i64),
    (window, window_count): (f64, i64),
) -> Finding {
    Finding {
        baseline_value: Some(baseline),
        window_value: Some(window),
        baseline_count,
        window_count,
        ..finding(kind, name, measure)
    }
}

/// `f` with the evidence of its test: the relative or absolute change,
/// the test as a sentence, and its p-value.
fn tested_by(f: Finding, change: Option<f64>, test: String, p: f64) -> Finding {
    Finding {
        change,
        test: Some(test),
        p_value: Some(p),
        ..f
    }
}

pub(super) fn latency_tests(
    name: &str,
    w: &RollupAggregate,
    b: &RollupAggregate,
    s: &InsightSettings,
) -> Vec<Tested> {
    let mut out = Vec::new();
    for (q, label, min) in [
        (0.50, "p50", s.min_p50_samples),
        (0.95, "p95", s.min_p95_samples),
    ] {
        let (nw, nb) = (w.duration_count, b.duration_count);
        if nw < min || nb < min {
            continue;
        }
        let mut pooled = b.digest.clone();
        if pooled.merge(&w.digest).is_err() {
            continue;
        }
        let (Some(t), Some(vw), Some(vb)) = (
            pooled.quantile(q),
            w.digest.quantile(q),
            b.digest.quantile(q),
        ) else {
            continue;
        };
        if vw <= 0.0 && vb <= 0.0 {
            continue;
        }
        // Both sides counted alike: from their values while the pooled
        // digest holds them all, else from their sketches (whose bins put
        // a value at the threshold on the same side for both).
        let (above_w, above_b) = if pooled.is_exact() {
            (w.digest.count_above(t), b.digest.count_above(t))
        } else {
            (
                w.digest.sketched().count_above(t),
                b.digest.sketched().count_above(t),
            )
        };
        let above_w = i64::try_from(above_w).unwrap_or(nw);
        let above_b = i64::try_from(above_b).unwrap_or(nb);
        let p = proportions_differ(above_w, nw, above_b, nb);
        let change = if vb > 0.0 {
            vw / vb - 1.0
        } else {
            f64::INFINITY
        };
        let kind = if vw > vb {
            FindingKind::LatencyRegression
        } else {
            FindingKind::LatencyImprovement
        };
        let measure = format!("{label}_duration_seconds");
        let mut f = tested_by(
            compared(kind, name, &measure, (vb, nb), (vw, nw)),
            change.is_finite().then_some(change),
            format!(
                "quantile test: Fisher's exact test, two-sided, of the durations above the pooled {label} ({above_w} of {nw} against {above_b} of {nb})"
            ),
            p,
        );
        f.summary = format!(
            "{label} of {name} {} {} ({} → {})",
            if vw > vb { "rose" } else { "fell" },
            pct(change),
            secs(vb),
            secs(vw)
        );
        out.push(Tested {
            big_enough: change.abs() >= s.latency_change,
            finding: f,
        });
    }
    out
}

pub(super) fn reliability_tests(
    name: &str,
    w: &RollupAggregate,
    b: &RollupAggregate,
    s: &InsightSettings,
) -> Vec<Tested> {
    let mut out = Vec::new();
    if w.total < s.min_invocations || b.total < s.min_invocations {
        return out;
    }
    let rate = |done: i64, n: i64| done as f64 / n as f64 * 100.0;
    let (rw, rb) = (rate(w.completed, w.total), rate(b.completed, b.total));
    let (fw, fb) = (w.total - w.completed, b.total - b.completed);
    let (on_b, on_w) = ((rb, b.total), (rw, w.total));
    let mut f = tested_by(
        compared(
            FindingKind::CompletionDrop,
            name,
            "completion_rate",
            on_b,
            on_w,
        ),
        Some(rw - rb),
        format!(
            "Fisher's exact test, one-sided, of the failures ({fw} of {} against {fb} of {})",
            w.total, b.total
        ),
        proportion_greater(fw, w.total, fb, b.total),
    );
    f.summary = format!(
        "completion of {name} dropped {:.1} points ({rb:.1} % → {rw:.1} %)",
        rb - rw
    );
    out.push(Tested {
        big_enough: rb - rw >= s.completion_drop_points,
        finding: f,
    });
    // A baseline that summed some types as "other" (D94) has no exact
    // count of any: its types are not tested.
    if b.errors_other > 0 {
        return out;
    }
    for (kind, &k1) in &w.errors {
        let k0 = b.errors.get(kind).copied().unwrap_or(0);
        // Chosen by the total, which the test holds fixed, not by k1 alone.
        if k0 + k1 < s.min_errors {
            continue;
        }
        let (ew, eb) = (k1 as f64 / w.total as f64, k0 as f64 / b.total as f64);
        let (on_b, on_w) = ((eb * 100.0, b.total), (ew * 100.0, w.total));
        let mut f = tested_by(
            compared(FindingKind::ErrorRise, name, "error_rate", on_b, on_w),
            (k0 > 0).then(|| ew / eb - 1.0),
            format!(
                "Fisher's exact test, one-sided, of the invocations failing with it ({k1} of {} against {k0} of {})",
                w.total, b.total
            ),
            proportion_greater(k1, w.total, k0, b.total),
        );
        f.error_type = Some(kind.clone());
        f.summary = if k0 == 0 {
            format!(
                "{name} has a new error, {kind:?}: {:.1} % of invocations",
                ew * 100.0
            )
        } else {
            format!(
                "{name} fails with {kind:?} more often ({:.1} % → {:.1} %)",
                eb * 100.0,
                ew * 100.0
            )
        };
        out.push(Tested {
            big_enough: ew >= s.error_rise * eb,
            finding: f,
        });
    }
    out
}

pub(super) fn usage_test(
    name: &str,
    window: &Side<'_>,
    baseline: &Side<'_>,
    s: &InsightSettings,
) -> Option<Tested> {
    let a = window.skills.get(name).map_or(0, |r| r.total);
    let b = baseline.skills.get(name).map_or(0, |r| r.total);
    if a + b < s.min_usage || window.days() <= 0.0 || baseline.days() <= 0.0 {
        return None;
    }
    let (rw, rb) = (a as f64 / window.days(), b as f64 / baseline.days());
    let p = counts_differ(a, window.days(), b, baseline.days());
    let ratio = if rb > 0.0 { rw / rb } else { f64::INFINITY };
    let kind = if rw > rb {
        FindingKind::UsageRise
    } else {
        FindingKind::UsageFall
    };
    let mut f = tested_by(
        compared(kind, name, "invocations_per_day", (rb, b), (rw, a)),
        ratio.is_finite().then_some(ratio - 1.0),
        format!(
            "exact conditional binomial test, two-sided, of the counts ({a} against {b}) given their sum and the two lengths"
        ),
        p,
    );
    f.summary = format!(
        "use of {name} {} ({rb:.1} → {rw:.1} a day)",
        if rw > rb { "rose" } else { "fell" },
    );
    Some(Tested {
        big_enough: ratio >= s.usage_factor || ratio <= 1.0 / s.usage_factor,
        finding: f,
    })
}
