use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::SkillName;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn inv(completed: bool, duration: Option<f64>, secs: i64) -> Invocation {
    let mut i = Invocation::new(SkillName::parse("s").unwrap(), at(secs), completed);
    i.duration_seconds = duration;
    i
}

#[test]
fn hand_computed_example() {
    let mut a = inv(true, Some(10.0), 5);
    a.workflow_path = Some("ci/deploy-prod.v2".into());
    a.follow_up_actions = vec!["git commit".into(), "git commit".into(), "a.b".into()];
    let mut b = inv(false, Some(99.0), 1);
    b.error_type = Some("module.Error".into());
    b.workflow_path = Some("ci/deploy-prod.v2".into());
    let c = inv(true, Some(20.0), 3);
    let d = inv(true, None, 9);
    let agg = SkillAggregate::from_invocations([&a, &b, &c, &d]);
    assert_eq!((agg.total, agg.completed, agg.abandoned), (4, 3, 1));
    assert_eq!(agg.total_duration_micros, 30_000_000);
    assert_eq!(agg.duration_count, 2);
    assert_eq!(agg.avg_duration_seconds(), Some(15.0));
    assert_eq!(
        (agg.min_duration_seconds, agg.max_duration_seconds),
        (Some(10.0), Some(20.0))
    );
    assert_eq!(agg.completion_rate(), 75.0);
    assert_eq!(agg.percentiles().p50, Some(15.0));
    assert_eq!(agg.workflow_paths["ci/deploy-prod.v2"], 2);
    assert_eq!(agg.common_errors["module.Error"], 1);
    assert_eq!(agg.follow_up_actions["git commit"], 2);
    assert_eq!(agg.follow_up_actions["a.b"], 1);
    assert_eq!(agg.first_invoked, Some(at(1)));
    assert_eq!(agg.last_invoked, Some(at(9)));
}

#[test]
fn an_empty_aggregate_has_a_zero_rate() {
    let agg = SkillAggregate::default();
    assert_eq!(agg.completion_rate(), 0.0);
    assert_eq!(agg.avg_duration_seconds(), None);
    assert_eq!(agg.percentiles(), Percentiles::default());
}

#[test]
fn session_rows_count_abandoned_durations() {
    let mut row = SessionSkillAggregate::of(&inv(true, Some(2.0), 10));
    row.merge(&SessionSkillAggregate::of(&inv(false, Some(3.0), 4)));
    row.merge(&SessionSkillAggregate::of(&inv(false, None, 20)));
    assert_eq!(row.invocation_count, 3);
    assert_eq!(row.total_duration_micros, 5_000_000);
    assert_eq!((row.first_invoked_at, row.last_invoked_at), (at(4), at(20)));
}

fn arb_invocation() -> impl Strategy<Value = Invocation> {
    (
        any::<bool>(),
        prop::option::of(0.0f64..500.0),
        0i64..100_000,
        prop::option::of(prop::sample::select(vec!["daily", "a.b", "x y", "ü\"q"])),
        prop::option::of(prop::sample::select(vec!["E1", "mod.Err"])),
        prop::collection::vec(prop::sample::select(vec!["git commit", "push"]), 0..3),
    )
        .prop_map(|(completed, duration, secs, path, error, follow)| {
            let mut i = inv(completed, duration, secs);
            i.workflow_path = path.map(str::to_owned);
            i.error_type = error.map(str::to_owned);
            i.follow_up_actions = follow.into_iter().map(str::to_owned).collect();
            i
        })
}

fn assert_same(a: &SkillAggregate, b: &SkillAggregate) {
    assert_eq!(
        (a.total, a.completed, a.abandoned),
        (b.total, b.completed, b.abandoned)
    );
    assert_eq!(a.duration_count, b.duration_count);
    // Exact, not within a tolerance: the sum is an integer (D37).
    assert_eq!(a.total_duration_micros, b.total_duration_micros);
    assert_eq!(a.avg_duration_seconds(), b.avg_duration_seconds());
    assert_eq!(a.min_duration_seconds, b.min_duration_seconds);
    assert_eq!(a.max_duration_seconds, b.max_duration_seconds);
    assert_eq!(a.workflow_paths, b.workflow_paths);
    assert_eq!(a.common_errors, b.common_errors);
    assert_eq!(a.follow_up_actions, b.follow_up_actions);
    assert_eq!(
        (a.first_invoked, a.last_invoked),
        (b.first_invoked, b.last_invoked)
    );
    assert_eq!(a.percentiles(), b.percentiles());
}

proptest! {
    #[test]
    fn folding_in_any_order_equals_the_whole(
        events in prop::collection::vec(arb_invocation(), 0..300),
        seed in any::<u64>(),
    ) {
        let whole = SkillAggregate::from_invocations(&events);
        let mut shuffled = events.clone();
        // A cheap deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut one_by_one = SkillAggregate::default();
        for e in &shuffled { one_by_one.fold(e); }
        assert_same(&one_by_one, &whole);
    }

    #[test]
    fn merging_partials_equals_folding_everything(
        events in prop::collection::vec(arb_invocation(), 0..300),
        split in any::<prop::sample::Index>(),
    ) {
        let cut = if events.is_empty() { 0 } else { split.index(events.len()) };
        let mut left = SkillAggregate::from_invocations(&events[..cut]);
        left.merge(&SkillAggregate::from_invocations(&events[cut..])).unwrap();
        assert_same(&left, &SkillAggregate::from_invocations(&events));
    }
}
