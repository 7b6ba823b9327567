//! The insights on generated windows, over many seeds: every injected
//! change of the stated size is found, and change-free stores stay within
//! the stated false-finding level.

use chrono::{Duration, TimeZone};

use super::*;

/// A small deterministic generator (SplitMix64), so a seed is a store.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// Poisson by its normal approximation (the means here are large).
    fn count(&mut self, mean: f64) -> i64 {
        (mean + mean.sqrt() * self.normal()).round().max(0.0) as i64
    }
}

/// How one skill behaves over one side.
#[derive(Clone, Copy)]
struct Behaviour {
    per_day: f64,
    completion: f64,
    /// Median duration, seconds; durations are log-normal around it.
    median: f64,
    /// The share of durations drawn from a tail four times longer.
    slow_tail: f64,
    /// The share of invocations that fail with the error "quota" (beside
    /// the usual failures, which carry "timeout" or "denied").
    new_error: f64,
}

const SKILLS: usize = 12;
const DAYS: i64 = 7;

fn side(rng: &mut Rng, b: Behaviour) -> RollupAggregate {
    let mut r = RollupAggregate::default();
    for _ in 0..rng.count(b.per_day * DAYS as f64) {
        let quota = rng.unit() < b.new_error;
        let completed = !quota && rng.unit() < b.completion;
        let tail = if rng.unit() < b.slow_tail { 4.0 } else { 1.0 };
        let duration = tail * b.median * (0.8 * rng.normal()).exp();
        let error = if quota {
            Some("quota")
        } else if !completed {
            Some(if rng.unit() < 0.6 {
                "timeout"
            } else {
                "denied"
            })
        } else {
            None
        };
        r.add(completed, Some(duration), error);
    }
    r
}

/// Which change a store carries, if any.
#[derive(Clone, Copy, PartialEq)]
enum Inject {
    Nothing,
    Changes,
}

struct Store {
    window: BTreeMap<String, RollupAggregate>,
    baseline: BTreeMap<String, RollupAggregate>,
    history: BTreeMap<String, SkillHistory>,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

/// The skills (and one tool) a change is injected into.
const CHANGED: [&str; 6] = ["skill-0", "skill-1", "skill-2", "skill-3", "skill-4", TOOL];

/// The assistant's tool among the generated names.
const TOOL: &str = "Bash";

/// 11 skills and a tool used 60–140 times a day; with `Changes`, in the
/// window: skill-0's durations double (so its p50 and p95 do), skill-1
/// completes 80 % instead of 95 %, skill-2 is no longer used, skill-3 and
/// the tool fail 8 % of the time more with a new error, and a quarter of
/// skill-4's durations come from a tail four times longer (its p95
/// doubles while its p50 rises by about a third).
fn store(seed: u64, inject: Inject) -> Store {
    let mut rng = Rng(seed);
    let (mut window, mut baseline, mut history) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for i in 0..SKILLS {
        let name = if i == SKILLS - 1 {
            TOOL.to_owned()
        } else {
            format!("skill-{i}")
        };
        let before = Behaviour {
            per_day: 60.0 + 80.0 * rng.unit(),
            completion: if i == 1 {
                0.95
            } else {
                0.9 + 0.08 * rng.unit()
            },
            median: 0.5 + 20.0 * rng.unit(),
            slow_tail: 0.0,
            new_error: 0.0,
        };
        let mut after = before;
        if inject == Inject::Changes {
            match i {
                0 => after.median *= 2.0,
                1 => after.completion = 0.80,
                2 => after.per_day = 0.0,
                i if i == 3 || i == SKILLS - 1 => after.new_error = 0.08,
                4 => after.slow_tail = 0.25,
                _ => {}
            }
        }
        let b = side(&mut rng, before);
        let w = side(&mut rng, after);
        let last = if w.total > 0 {
            now()
        } else {
            now() - Duration::days(DAYS) - Duration::hours(3)
        };
        history.insert(
            name.clone(),
            SkillHistory {
                invocations: 5_000 + b.total + w.total,
                first_invoked: Some(now() - Duration::days(400)),
                last_invoked: Some(last),
                in_window: w.total,
            },
        );
        baseline.insert(name.clone(), b);
        if w.total > 0 {
            window.insert(name, w);
        }
    }
    Store {
        window,
        baseline,
        history,
    }
}

fn findings_of(store: &Store) -> Findings {
    let window = Side {
        since: now() - Duration::days(DAYS),
        until: now(),
        skills: &store.window,
    };
    let baseline = Side {
        since: now() - Duration::days(2 * DAYS),
        until: now() - Duration::days(DAYS),
        skills: &store.baseline,
    };
    find(
        window,
        baseline,
        &store.history,
        now(),
        &InsightSettings::default(),
    )
}

fn is_test(kind: FindingKind) -> bool {
    !matches!(
        kind,
        FindingKind::NewSkill
            | FindingKind::RetireCandidate
            | FindingKind::SlowHotSpot
            | FindingKind::FailingHotSpot
    )
}

const SEEDS: u64 = 200;

#[test]
fn every_injected_change_is_found_in_every_seed() {
    let (mut all, mut false_findings) = (0, 0);
    for seed in 0..SEEDS {
        let found = findings_of(&store(seed, Inject::Changes));
        let has = |kind: FindingKind, skill: &str, measure: &str| {
            found
                .findings
                .iter()
                .any(|f| f.kind == kind && f.skill_name == skill && f.measure == measure)
        };
        assert!(
            has(
                FindingKind::LatencyRegression,
                "skill-0",
                "p95_duration_seconds"
            ),
            "seed {seed}: p95 doubling missed: {:#?}",
            found.findings
        );
        assert!(
            has(
                FindingKind::LatencyRegression,
                "skill-0",
                "p50_duration_seconds"
            ),
            "seed {seed}"
        );
        assert!(
            has(FindingKind::CompletionDrop, "skill-1", "completion_rate"),
            "seed {seed}"
        );
        assert!(
            has(
                FindingKind::LatencyRegression,
                "skill-4",
                "p95_duration_seconds"
            ),
            "seed {seed}: a longer tail missed: {:#?}",
            found.findings
        );
        assert!(
            has(FindingKind::UsageFall, "skill-2", "invocations_per_day"),
            "seed {seed}"
        );
        let retired = found
            .findings
            .iter()
            .find(|f| f.kind == FindingKind::RetireCandidate && f.skill_name == "skill-2")
            .unwrap_or_else(|| panic!("seed {seed}: no retire candidate"));
        assert_eq!(retired.window_count, 0);
        assert!(retired.last_invoked.is_some() && retired.lifetime_invocations.unwrap() > 5_000);
        for failing in ["skill-3", TOOL] {
            let error = found
                .findings
                .iter()
                .find(|f| f.kind == FindingKind::ErrorRise && f.skill_name == failing)
                .unwrap_or_else(|| {
                    panic!(
                        "seed {seed}: {failing}'s new error missed: {:#?}",
                        found.findings
                    )
                });
            assert_eq!(error.error_type.as_deref(), Some("quota"));
            assert!(error.is_tool == (failing == TOOL), "seed {seed}: {failing}");
        }
        // Findings about anything else are false: count them.
        let tested: Vec<_> = found.findings.iter().filter(|f| is_test(f.kind)).collect();
        all += tested.len();
        false_findings += tested
            .iter()
            .filter(|f| !CHANGED.contains(&f.skill_name.as_str()))
            .count();
    }
    // Benjamini–Hochberg holds the expected share of false findings among
    // the findings to alpha.
    let share = false_findings as f64 / all as f64;
    eprintln!("{false_findings} of {all} findings false over {SEEDS} seeds with changes");
    assert!(
        share <= InsightSettings::default().alpha,
        "{false_findings} of {all} findings were false"
    );
}

#[test]
fn change_free_stores_stay_within_the_false_finding_level() {
    let alpha = InsightSettings::default().alpha;
    let mut with_any = 0;
    let mut tests = 0;
    for seed in 0..SEEDS {
        let found = findings_of(&store(1_000_000 + seed, Inject::Nothing));
        tests += found.tests_run;
        let false_findings: Vec<_> = found.findings.iter().filter(|f| is_test(f.kind)).collect();
        if !false_findings.is_empty() {
            with_any += 1;
        }
        // No facts of change either: every skill is old and in use.
        assert!(
            found
                .findings
                .iter()
                .all(|f| !matches!(f.kind, FindingKind::NewSkill | FindingKind::RetireCandidate)),
            "seed {seed}"
        );
    }
    // Under no change, Benjamini–Hochberg bounds the chance of any finding
    // by alpha; the size thresholds only lower it.
    eprintln!("{with_any} of {SEEDS} change-free stores had a finding ({tests} tests)");
    assert!(tests > 60 * SEEDS as usize, "{tests}");
    assert!(
        (with_any as f64) <= alpha * SEEDS as f64,
        "{with_any} of {SEEDS} change-free stores had a finding"
    );
}

/// Without the adjustment or the size thresholds, each test alone is
/// calibrated: about 5 % of change-free comparisons have p < 0.05.
#[test]
fn each_test_alone_rejects_about_alpha_of_change_free_comparisons() {
    let mut rejections: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for seed in 0..SEEDS {
        let s = store(2_000_000 + seed, Inject::Nothing);
        for (name, w) in &s.window {
            let b = &s.baseline[name];
            let settings = InsightSettings::default();
            for t in latency_tests(name, w, b, &settings)
                .into_iter()
                .chain(reliability_tests(name, w, b, &settings))
            {
                let slot = rejections.entry(t.finding.measure.clone()).or_default();
                slot.1 += 1;
                if t.finding.p_value.unwrap() < 0.05 {
                    slot.0 += 1;
                }
            }
        }
    }
    for (measure, (rejected, of)) in rejections {
        let rate = rejected as f64 / of as f64;
        eprintln!("{measure}: {rejected} of {of} change-free comparisons had p < 0.05");
        assert!(of >= 400, "{measure}: {of}");
        // Fisher's test is conservative; the sketch's counts may blur a
        // little. Never far above the nominal 5 %.
        assert!(rate <= 0.07, "{measure}: {rejected} of {of} rejected");
    }
}

#[test]
fn facts_and_rankings_read_as_they_should() {
    let quiet = RollupAggregate::default();
    let mut busy = RollupAggregate::default();
    for i in 0..10 {
        busy.add(i % 5 != 0, Some(60.0), (i % 5 == 0).then_some("boom"));
    }
    let mut fresh = RollupAggregate::default();
    fresh.add(true, Some(1.0), None);
    let window = BTreeMap::from([
        ("busy".to_owned(), busy),
        ("fresh".to_owned(), fresh),
        ("Bash".to_owned(), quiet.clone()),
    ]);
    let baseline = BTreeMap::new();
    let old = now() - Duration::days(90);
    let history = BTreeMap::from([
        (
            "busy".to_owned(),
            SkillHistory {
                invocations: 40,
                first_invoked: Some(old),
                last_invoked: Some(now()),
                in_window: 10,
            },
        ),
        (
            "fresh".to_owned(),
            SkillHistory {
                invocations: 1,
                first_invoked: Some(now() - Duration::hours(1)),
                last_invoked: Some(now() - Duration::hours(1)),
                in_window: 1,
            },
        ),
        (
            "gone".to_owned(),
            SkillHistory {
                invocations: 7,
                first_invoked: Some(old),
                last_invoked: Some(now() - Duration::days(45)),
                in_window: 0,
            },
        ),
        (
            // Used after the window's end: as of then, not a candidate.
            "later".to_owned(),
            SkillHistory {
                invocations: 7,
                first_invoked: Some(old),
                last_invoked: Some(now() + Duration::days(3)),
                in_window: 0,
            },
        ),
        (
            "Read".to_owned(),
            SkillHistory {
                invocations: 7,
                first_invoked: Some(old),
                last_invoked: Some(old),
                in_window: 0,
            },
        ),
    ]);
    let found = find(
        Side {
            since: now() - Duration::days(7),
            until: now(),
            skills: &window,
        },
        Side {
            since: now() - Duration::days(14),
            until: now() - Duration::days(7),
            skills: &baseline,
        },
        &history,
        now(),
        &InsightSettings::default(),
    );
    let kinds: Vec<(FindingKind, &str)> = found
        .findings
        .iter()
        .map(|f| (f.kind, f.skill_name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (FindingKind::NewSkill, "fresh"),
            (FindingKind::RetireCandidate, "gone"),
            (FindingKind::SlowHotSpot, "busy"),
            (FindingKind::SlowHotSpot, "fresh"),
            (FindingKind::FailingHotSpot, "busy"),
        ]
    );
    let gone = &found.findings[1];
    assert_eq!(gone.window_value, Some(45.0));
    assert_eq!(gone.lifetime_invocations, Some(7));
    // busy: 8 completed of 60 s; 2 failures at 60 s each.
    assert_eq!(found.findings[2].window_value, Some(480.0));
    assert_eq!(found.findings[4].window_value, Some(120.0));
    assert!(
        found.findings[4]
            .summary
            .contains("failed 2 times (20.0 %)"),
        "{}",
        found.findings[4].summary
    );
}

#[test]
fn zero_durations_and_days_without_data_find_nothing() {
    // Every duration 0 on both sides: no latency finding (nor "+inf %").
    let zero = || {
        let mut r = RollupAggregate::default();
        for _ in 0..300 {
            r.add(true, Some(0.0), None);
        }
        r
    };
    let window = BTreeMap::from([("Read".to_owned(), zero())]);
    let baseline = BTreeMap::from([("Read".to_owned(), zero())]);
    let history = BTreeMap::new();
    let week = Duration::days(7);
    let side = |since, until, skills| Side {
        since,
        until,
        skills,
    };
    let nothing_changes = |baseline: Side<'_>| {
        let found = find(
            side(now() - week, now(), &window),
            baseline,
            &history,
            now(),
            &InsightSettings::default(),
        );
        assert!(
            found.findings.iter().all(|f| !is_test(f.kind)),
            "{:#?}",
            found.findings
        );
    };
    nothing_changes(side(now() - week - week, now() - week, &baseline));
    // A baseline with no time the store has data for (clipped to nothing):
    // use is not compared at all.
    let none = BTreeMap::new();
    nothing_changes(side(now() - week, now() - week, &none));
}

#[test]
fn tied_durations_count_alike_on_both_sides() {
    // Whole seconds, all 3 s: one side small enough to keep its values,
    // the other a sketch. Counted alike, nothing moved, even with no size
    // threshold at all.
    let of = |n: usize| {
        let mut r = RollupAggregate::default();
        for _ in 0..n {
            r.add(true, Some(3.0), None);
        }
        r
    };
    let (w, b) = (of(120), of(500));
    assert!(w.digest.is_exact() && !b.digest.is_exact());
    let settings = InsightSettings {
        latency_change: 0.0,
        ..InsightSettings::default()
    };
    for t in latency_tests("s", &w, &b, &settings) {
        assert!(t.finding.p_value.unwrap() > 0.5, "{:#?}", t.finding);
    }
}
