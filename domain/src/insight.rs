//! Insights (decision D95): what changed between a window and its baseline,
//! from their rollups alone. Changes in latency, reliability and usage are
//! statistical tests, kept only when Benjamini–Hochberg's adjustment over
//! every test run holds them at the false-discovery rate `alpha` *and* the
//! change is at least the settings' size. New skills, retire candidates and
//! hot spots are facts and rankings, not tests.

mod changes;
mod facts;
mod parse;
mod stats;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use changes::{latency_tests, reliability_tests, usage_test};
use facts::{hot_spots, retire_candidates};
pub use parse::{parse_length, parse_range};
use stats::adjust;

use crate::{RollupAggregate, is_tool};

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
    /// Invocations with an error type needed in the window and baseline together to test its rate.
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
    #[serde(serialize_with = "crate::serialize_opt_micros")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_invoked: Option<DateTime<Utc>>,
    /// Its invocations over all time (retire candidates).
    pub lifetime_invocations: Option<i64>,
    /// One sentence for people.
    pub summary: String,
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

#[cfg(test)]
mod tests;
