//! Insights (decision D95): what changed between a window and its baseline,
//! from their rollups alone. Changes in latency, reliability and usage are
//! statistical tests, kept only when Benjamini–Hochberg's adjustment over
//! every test run holds them at the false-discovery rate `alpha` *and* the
//! change is at least the settings' size. New skills, retire candidates and
//! hot spots are facts and rankings, not tests.

mod stats;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use stats::{adjust, counts_differ, proportion_greater, proportions_differ};

use crate::{RollupAggregate, ValidationError, is_tool, parse_timestamp};

/// Parses a length of time such as `90m`, `24h`, `7d` or `2w` (a whole
/// number and its unit: minutes, hours, days or weeks).
///
/// # Errors
/// Anything else, naming `field`.
pub fn parse_length(field: &str, text: &str) -> Result<Duration, ValidationError> {
    let t = text.trim();
    let bad = || {
        ValidationError::new(
            field,
            format!("{text:?} is not a length such as 90m, 24h, 7d or 2w"),
        )
    };
    let unit = t.chars().last().ok_or_else(bad)?;
    let n: i64 = t[..t.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    if n <= 0 || n > 1_000_000 {
        return Err(bad());
    }
    match unit {
        'm' => Ok(Duration::minutes(n)),
        'h' => Ok(Duration::hours(n)),
        'd' => Ok(Duration::days(n)),
        'w' => Ok(Duration::weeks(n)),
        _ => Err(bad()),
    }
}

/// Parses a range `FROM..TO` of two RFC 3339 times: [FROM, TO).
///
/// # Errors
/// Not two times joined by `..`, or FROM not before TO, naming `field`.
pub fn parse_range(
    field: &str,
    text: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ValidationError> {
    let (from, to) = text.split_once("..").ok_or_else(|| {
        ValidationError::new(
            field,
            format!("{text:?} is not `previous` or a range FROM..TO of two RFC 3339 times"),
        )
    })?;
    let (from, to) = (parse_timestamp(field, from)?, parse_timestamp(field, to)?);
    if from >= to {
        return Err(ValidationError::new(
            field,
            format!("{text:?} ends before it starts"),
        ));
    }
    Ok((from, to))
}

/// The thresholds of every finding; [`Default`] gives the documented ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct InsightSettings {
    /// The false-discovery rate the tests are held to, over all of them.
    pub alpha: f64,
    /// The least relative move of a p50 or p95 that is reported (0.25: 25 %).
    pub latency_change: f64,
    /// Completed durations needed on each side to test a p50.
    pub min_p50_samples: i64,
    /// Completed durations needed on each side to test a p95.
    pub min_p95_samples: i64,
    /// Invocations needed on each side to test completion or error rates.
    pub min_invocations: i64,
    /// The least drop of the completion rate reported, in percentage points.
    pub completion_drop_points: f64,
    /// Invocations with an error type needed in the window to test its rate.
    pub min_errors: i64,
    /// The least factor by which an error type's rate must rise.
    pub error_rise: f64,
    /// The least factor by which a rate of use must rise or fall.
    pub usage_factor: f64,
    /// Invocations needed on both sides together to test a change of use.
    pub min_usage: i64,
    /// A skill not invoked for this many days is a retire candidate.
    pub retire_after_days: i64,
    /// A skill invoked fewer times than this in the window (and known for
    /// longer than `retire_after_days`) is a retire candidate.
    pub retire_floor: i64,
    /// How many hot spots of each kind are listed.
    pub hot_spots: usize,
}

impl Default for InsightSettings {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            latency_change: 0.25,
            min_p50_samples: 20,
            min_p95_samples: 100,
            min_invocations: 30,
            completion_drop_points: 5.0,
            min_errors: 5,
            error_rise: 2.0,
            usage_factor: 2.0,
            min_usage: 20,
            retire_after_days: 30,
            retire_floor: 3,
            hot_spots: 5,
        }
    }
}

/// What a finding says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A p50 or p95 rose.
    LatencyRegression,
    /// The completion rate dropped.
    CompletionDrop,
    /// An error type's rate rose (or it is new).
    ErrorRise,
    /// Use rose sharply.
    UsageRise,
    /// Use fell sharply.
    UsageFall,
    /// A p50 or p95 fell.
    LatencyImprovement,
    /// First invoked in the window.
    NewSkill,
    /// Unused for long, or used below the floor.
    RetireCandidate,
    /// Most time spent in the window (completed durations).
    SlowHotSpot,
    /// Most time lost to failures in the window.
    FailingHotSpot,
}

/// One finding with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// What it says.
    pub kind: FindingKind,
    /// The skill or tool.
    pub skill_name: String,
    /// Whether it is an assistant's tool rather than a skill.
    pub is_tool: bool,
    /// What was measured: `p50_duration_seconds`, `p95_duration_seconds`,
    /// `completion_rate`, `error_rate`, `invocations_per_day`,
    /// `time_spent_seconds`, `time_lost_seconds` or `days_since_last_use`.
    pub measure: String,
    /// The error type, for an error rate.
    pub error_type: Option<String>,
    /// The measure over the baseline.
    pub baseline_value: Option<f64>,
    /// The measure over the window.
    pub window_value: Option<f64>,
    /// The sample behind the baseline's value (invocations or durations).
    pub baseline_count: i64,
    /// The sample behind the window's value.
    pub window_count: i64,
    /// window / baseline − 1 (rates and durations), or the difference in
    /// percentage points (completion rate).
    pub change: Option<f64>,
    /// The test used, if any.
    pub test: Option<String>,
    /// Its p-value.
    pub p_value: Option<f64>,
    /// Its Benjamini–Hochberg adjusted p-value: a finding has q ≤ alpha.
    pub q_value: Option<f64>,
    /// When it was last invoked (retire candidates, new skills).
    #[serde(serialize_with = "opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_invoked: Option<DateTime<Utc>>,
    /// Its invocations over all time (retire candidates).
    pub lifetime_invocations: Option<i64>,
    /// One sentence for people.
    pub summary: String,
}

/// Times as the other reads write them: RFC 3339, microseconds, `Z`.
#[allow(clippy::ref_option)] // the signature serde's `serialize_with` calls
fn opt_micros<S: serde::Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        None => s.serialize_none(),
    }
}

/// A stretch of time and what its rollups hold, per skill. Rates of use
/// are per day of `since..until`: a caller clips it to the time the store
/// has data for, so that days before the first record count as unknown,
/// not as days without use.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Start (inclusive).
    pub since: DateTime<Utc>,
    /// End (exclusive).
    pub until: DateTime<Utc>,
    /// Per skill, its invocations in the stretch.
    pub skills: &'a BTreeMap<String, RollupAggregate>,
}

impl Side<'_> {
    /// Its length in days (0 when it ends before it starts).
    fn days(&self) -> f64 {
        (self.until - self.since).num_seconds().max(0) as f64 / 86_400.0
    }
}

/// What the store knows of a skill over all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkillHistory {
    /// Invocations ever counted.
    pub invocations: i64,
    /// The first.
    pub first_invoked: Option<DateTime<Utc>>,
    /// The last.
    pub last_invoked: Option<DateTime<Utc>>,
    /// Its invocations in the window, over every project (what the retire
    /// rule counts, whatever project the comparison is narrowed to).
    pub in_window: i64,
}

/// The findings and how many tests they were chosen from.
#[derive(Debug, Clone, PartialEq)]
pub struct Findings {
    /// Statistical tests run (the family the adjustment covers).
    pub tests_run: usize,
    /// Findings, most important kinds first.
    pub findings: Vec<Finding>,
}

/// A test's finding-to-be, kept when it passes both the adjustment and
/// the size threshold.
struct Tested {
    finding: Finding,
    big_enough: bool,
}

fn finding(kind: FindingKind, skill: &str, measure: &str) -> Finding {
    Finding {
        kind,
        skill_name: skill.to_owned(),
        is_tool: is_tool(skill),
        measure: measure.to_owned(),
        error_type: None,
        baseline_value: None,
        window_value: None,
        baseline_count: 0,
        window_count: 0,
        change: None,
        test: None,
        p_value: None,
        q_value: None,
        last_invoked: None,
        lifetime_invocations: None,
        summary: String::new(),
    }
}

/// A duration for people: ms under a second, else seconds or minutes.
fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// `n` and its noun, singular or plural.
fn times(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn pct(x: f64) -> String {
    format!("{:+.0} %", x * 100.0)
}

fn latency_tests(
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
        let mut f = finding(kind, name, &format!("{label}_duration_seconds"));
        f.baseline_value = Some(vb);
        f.window_value = Some(vw);
        f.baseline_count = nb;
        f.window_count = nw;
        f.change = change.is_finite().then_some(change);
        f.test = Some(format!(
            "quantile test: Fisher's exact test, two-sided, of the durations above the pooled {label} ({above_w} of {nw} against {above_b} of {nb})"
        ));
        f.p_value = Some(p);
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

fn reliability_tests(
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
    let mut f = finding(FindingKind::CompletionDrop, name, "completion_rate");
    f.baseline_value = Some(rb);
    f.window_value = Some(rw);
    f.baseline_count = b.total;
    f.window_count = w.total;
    f.change = Some(rw - rb);
    f.test = Some(format!(
        "Fisher's exact test, one-sided, of the failures ({fw} of {} against {fb} of {})",
        w.total, b.total
    ));
    f.p_value = Some(proportion_greater(fw, w.total, fb, b.total));
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
        let mut f = finding(FindingKind::ErrorRise, name, "error_rate");
        f.error_type = Some(kind.clone());
        f.baseline_value = Some(eb * 100.0);
        f.window_value = Some(ew * 100.0);
        f.baseline_count = b.total;
        f.window_count = w.total;
        f.change = (k0 > 0).then(|| ew / eb - 1.0);
        f.test = Some(format!(
            "Fisher's exact test, one-sided, of the invocations failing with it ({k1} of {} against {k0} of {})",
            w.total, b.total
        ));
        f.p_value = Some(proportion_greater(k1, w.total, k0, b.total));
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

fn usage_test(
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
    let mut f = finding(kind, name, "invocations_per_day");
    f.baseline_value = Some(rb);
    f.window_value = Some(rw);
    f.baseline_count = b;
    f.window_count = a;
    f.change = ratio.is_finite().then_some(ratio - 1.0);
    f.test = Some(format!(
        "exact conditional binomial test, two-sided, of the counts ({a} against {b}) given their sum and the two lengths"
    ));
    f.p_value = Some(p);
    f.summary = format!(
        "use of {name} {} ({rb:.1} → {rw:.1} a day)",
        if rw > rb { "rose" } else { "fell" },
    );
    Some(Tested {
        big_enough: ratio >= s.usage_factor || ratio <= 1.0 / s.usage_factor,
        finding: f,
    })
}

/// Compares `window` with `baseline` (see the module's documentation);
/// `history` is every skill's lifetime, `now` the time the retire rule
/// measures from.
pub fn find(
    window: Side<'_>,
    baseline: Side<'_>,
    history: &BTreeMap<String, SkillHistory>,
    now: DateTime<Utc>,
    s: &InsightSettings,
) -> Findings {
    let empty = RollupAggregate::default();
    let names: BTreeSet<&String> = window.skills.keys().chain(baseline.skills.keys()).collect();
    let is_new = |name: &str| {
        let w = window.skills.get(name).map_or(0, |r| r.total);
        let b = baseline.skills.get(name).map_or(0, |r| r.total);
        let first = history.get(name).and_then(|h| h.first_invoked);
        w > 0 && b == 0 && first.is_none_or(|f| f >= window.since)
    };
    let mut tested = Vec::new();
    for name in &names {
        let w = window.skills.get(*name).unwrap_or(&empty);
        let b = baseline.skills.get(*name).unwrap_or(&empty);
        tested.extend(latency_tests(name, w, b, s));
        tested.extend(reliability_tests(name, w, b, s));
        if !is_new(name) {
            tested.extend(usage_test(name, &window, &baseline, s));
        }
    }
    let p: Vec<f64> = tested
        .iter()
        .map(|t| t.finding.p_value.unwrap_or(1.0))
        .collect();
    let q = adjust(&p);
    let mut findings: Vec<Finding> = tested
        .into_iter()
        .zip(q)
        .filter_map(|(mut t, q)| {
            t.finding.q_value = Some(q);
            (q <= s.alpha && t.big_enough).then_some(t.finding)
        })
        .collect();
    let tests_run = p.len();
    findings.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then_with(|| {
                a.q_value
                    .unwrap_or(1.0)
                    .total_cmp(&b.q_value.unwrap_or(1.0))
            })
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    for name in names.iter().filter(|n| is_new(n)) {
        let w = &window.skills[*name];
        let mut f = finding(FindingKind::NewSkill, name, "invocations_per_day");
        f.window_count = w.total;
        f.window_value = Some(w.total as f64 / window.days());
        f.last_invoked = history.get(*name).and_then(|h| h.last_invoked);
        f.lifetime_invocations = history.get(*name).map(|h| h.invocations);
        f.summary = format!(
            "{name} is new: {} in the window",
            times(w.total, "invocation", "invocations")
        );
        findings.push(f);
    }
    findings.extend(retire_candidates(history, now, s));
    findings.extend(hot_spots(&window, &baseline, s));
    Findings {
        tests_run,
        findings,
    }
}

fn retire_candidates(
    history: &BTreeMap<String, SkillHistory>,
    now: DateTime<Utc>,
    s: &InsightSettings,
) -> Vec<Finding> {
    let quiet_since = now - Duration::days(s.retire_after_days);
    let mut out = Vec::new();
    for (name, h) in history {
        let (Some(first), Some(last)) = (h.first_invoked, h.last_invoked) else {
            continue;
        };
        if is_tool(name) {
            continue;
        }
        // Used after `now` (a window ending in the past): not a candidate
        // as of then.
        if last > now {
            continue;
        }
        let in_window = h.in_window;
        let days = (now - last).num_days();
        let summary = if last < quiet_since {
            format!(
                "{name} was last used {days} days ago ({} invocations in all)",
                h.invocations
            )
        } else if first < quiet_since && in_window < s.retire_floor {
            format!(
                "{name} was used {} in the window, under the floor of {} ({} in all)",
                times(in_window, "time", "times"),
                s.retire_floor,
                h.invocations
            )
        } else {
            continue;
        };
        let mut f = finding(FindingKind::RetireCandidate, name, "days_since_last_use");
        f.window_value = Some(days as f64);
        f.window_count = in_window;
        f.last_invoked = Some(last);
        f.lifetime_invocations = Some(h.invocations);
        f.summary = summary;
        out.push(f);
    }
    out.sort_by(|a, b| {
        a.last_invoked
            .cmp(&b.last_invoked)
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    out
}

fn hot_spots(window: &Side<'_>, baseline: &Side<'_>, s: &InsightSettings) -> Vec<Finding> {
    let mean = |r: &RollupAggregate| {
        (r.duration_count > 0)
            .then(|| r.total_duration_micros as f64 / 1e6 / r.duration_count as f64)
    };
    let mut slow: Vec<(f64, Finding)> = Vec::new();
    let mut failing: Vec<(f64, Finding)> = Vec::new();
    for (name, w) in window.skills {
        let spent = w.total_duration_micros as f64 / 1e6;
        if spent > 0.0 {
            let mut f = finding(FindingKind::SlowHotSpot, name, "time_spent_seconds");
            f.window_value = Some(spent);
            f.window_count = w.duration_count;
            f.summary = format!(
                "{name} took {} in all over {}",
                secs(spent),
                times(
                    w.duration_count,
                    "completed invocation",
                    "completed invocations"
                )
            );
            slow.push((spent, f));
        }
        let failed = w.total - w.completed;
        if failed > 0 {
            // A failure is taken to cost what a completed invocation does
            // on average (the window's, else the baseline's).
            let each = mean(w)
                .or_else(|| baseline.skills.get(name).and_then(mean))
                .unwrap_or(0.0);
            let lost = each * failed as f64;
            let mut f = finding(FindingKind::FailingHotSpot, name, "time_lost_seconds");
            f.window_value = Some(lost);
            f.window_count = failed;
            f.summary = format!(
                "{name} failed {} ({:.1} %), about {} lost",
                times(failed, "time", "times"),
                failed as f64 / w.total as f64 * 100.0,
                secs(lost)
            );
            failing.push((lost + failed as f64 * 1e-9, f));
        }
    }
    let mut out = Vec::new();
    for mut list in [slow, failing] {
        list.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.1.skill_name.cmp(&b.1.skill_name))
        });
        out.extend(list.into_iter().take(s.hot_spots).map(|(_, f)| f));
    }
    out
}

#[cfg(test)]
mod tests;
