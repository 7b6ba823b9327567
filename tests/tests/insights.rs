//! Insights from a store (D95) equal the insights of the same invocations
//! folded straight from the log, on both backends, and find every injected
//! change; a change-free store has no finding of change.

use std::collections::BTreeMap;

use chrono::Duration;
use domain::{FindingKind, InsightSettings, RollupAggregate, Side, SkillHistory};
use infrastructure::Baseline;
use infrastructure::testing::TestStore;
use tests::{insight_end, insight_events, on_both_backends};

/// Retire rules measured in days the fortnight can show.
fn settings() -> InsightSettings {
    InsightSettings {
        retire_after_days: 10,
        ..InsightSettings::default()
    }
}

/// The findings computed from the invocations themselves, not the store.
fn reference(events: &[domain::Invocation]) -> Vec<domain::Finding> {
    let end = insight_end();
    let week = Duration::days(7);
    let (mut window, mut baseline) = (BTreeMap::new(), BTreeMap::new());
    let mut history: BTreeMap<String, SkillHistory> = BTreeMap::new();
    for inv in events {
        let side = if inv.invoked_at >= end - week {
            &mut window
        } else {
            &mut baseline
        };
        side.entry(inv.skill_name.as_str().to_owned())
            .or_insert_with(RollupAggregate::default)
            .fold(inv);
        let h = history
            .entry(inv.skill_name.as_str().to_owned())
            .or_default();
        h.invocations += 1;
        h.in_window += i64::from(inv.invoked_at >= end - week);
        h.first_invoked = Some(
            h.first_invoked
                .map_or(inv.invoked_at, |t| t.min(inv.invoked_at)),
        );
        h.last_invoked = Some(
            h.last_invoked
                .map_or(inv.invoked_at, |t| t.max(inv.invoked_at)),
        );
    }
    domain::find_insights(
        Side {
            since: end - week,
            until: end,
            skills: &window,
        },
        Side {
            // Rates of use count from the store's first invocation.
            since: events.iter().map(|i| i.invoked_at).min().unwrap(),
            until: end - week,
            skills: &baseline,
        },
        &history,
        end,
        &settings(),
    )
    .findings
}

async fn findings_of(store: &TestStore, events: Vec<domain::Invocation>) -> Vec<domain::Finding> {
    for chunk in events.chunks(500) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    let got = store
        .insights(
            Duration::days(7),
            Some(insight_end()),
            Baseline::Previous,
            None,
            &settings(),
        )
        .await
        .unwrap();
    assert_eq!(got.window_since, insight_end() - Duration::days(7));
    assert_eq!(got.baseline_until, got.window_since);
    assert!(got.tests_run > 20, "{}", got.tests_run);
    got.findings
}

fn has(findings: &[domain::Finding], kind: FindingKind, skill: &str, measure: &str) -> bool {
    findings
        .iter()
        .any(|f| f.kind == kind && f.skill_name == skill && f.measure == measure)
}

async fn injected_changes_are_found_as_the_log_says(store: &TestStore) {
    let events = insight_events(7, true);
    let want = reference(&events);
    let got = findings_of(store, events).await;
    assert_eq!(got, want);
    assert!(
        has(
            &got,
            FindingKind::LatencyRegression,
            "render",
            "p95_duration_seconds"
        ),
        "{got:#?}"
    );
    assert!(has(
        &got,
        FindingKind::LatencyRegression,
        "render",
        "p50_duration_seconds"
    ));
    assert!(has(
        &got,
        FindingKind::CompletionDrop,
        "lint",
        "completion_rate"
    ));
    assert!(has(
        &got,
        FindingKind::UsageFall,
        "stale",
        "invocations_per_day"
    ));
    assert!(has(
        &got,
        FindingKind::RetireCandidate,
        "stale",
        "days_since_last_use"
    ));
    assert!(has(
        &got,
        FindingKind::NewSkill,
        "fresh",
        "invocations_per_day"
    ));
    let quota = got
        .iter()
        .find(|f| f.kind == FindingKind::ErrorRise && f.skill_name == "upload")
        .expect("the new error is found");
    assert_eq!(quota.error_type.as_deref(), Some("quota"));
    assert!(quota.q_value.unwrap() <= 0.05 && quota.p_value.unwrap() <= quota.q_value.unwrap());
}

async fn a_change_free_store_has_no_finding_of_change(store: &TestStore) {
    let events = insight_events(11, false);
    let want = reference(&events);
    let got = findings_of(store, events).await;
    assert_eq!(got, want);
    let changes: Vec<_> = got
        .iter()
        .filter(|f| {
            !matches!(
                f.kind,
                FindingKind::SlowHotSpot | FindingKind::FailingHotSpot
            )
        })
        .collect();
    assert!(changes.is_empty(), "{changes:#?}");
    // The rankings are there: six skills spent time, and failed.
    assert_eq!(
        got.iter()
            .filter(|f| f.kind == FindingKind::SlowHotSpot)
            .count(),
        5
    );
    // A project narrows both sides; bad input is refused by name.
    let one = store
        .insights(
            Duration::days(7),
            Some(insight_end()),
            Baseline::Previous,
            Some("/work/p0"),
            &settings(),
        )
        .await
        .unwrap();
    assert!(
        one.window_invocations > 0 && one.window_invocations < 1_800,
        "{}",
        one.window_invocations
    );
    // A project with no invocations: nothing to compare, and the retire
    // rule still counts every project's uses, so no skill is a candidate.
    let nowhere = store
        .insights(
            Duration::days(7),
            Some(insight_end()),
            Baseline::Previous,
            Some("/nowhere"),
            &settings(),
        )
        .await
        .unwrap();
    assert_eq!(nowhere.window_invocations, 0);
    assert!(nowhere.findings.is_empty(), "{:#?}", nowhere.findings);
    for (window, baseline, alpha, field) in [
        (Duration::zero(), Baseline::Previous, 0.05, "window"),
        (Duration::days(400), Baseline::Previous, 0.05, "window"),
        (
            Duration::days(7),
            Baseline::Range(insight_end(), insight_end()),
            0.05,
            "against",
        ),
        (Duration::days(7), Baseline::Previous, 1.5, "alpha"),
        (
            Duration::days(7),
            Baseline::Range(
                insight_end() - Duration::days(10),
                insight_end() - Duration::days(3),
            ),
            0.05,
            "overlaps",
        ),
    ] {
        let s = InsightSettings {
            alpha,
            ..settings()
        };
        let e = store
            .insights(window, Some(insight_end()), baseline, None, &s)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
}

on_both_backends!(
    injected_changes_are_found_as_the_log_says,
    a_change_free_store_has_no_finding_of_change
);
