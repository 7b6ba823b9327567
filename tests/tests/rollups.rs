//! Hourly and daily rollups (D81, D92) are kept by every write path,
//! checked by `verify` and repaired by `rebuild`, on both backends.

use infrastructure::testing::TestStore;
use sea_orm::ConnectionTrait;
use tests::{invocation, on_both_backends};

/// Invocations over several hours, two projects and none, some failed
/// (most with one of two error types), some without a duration.
fn events(skill: &str, n: i64) -> Vec<domain::Invocation> {
    (0..n)
        .map(|i| {
            let mut inv = invocation(
                skill,
                i * 1_337,
                i % 4 != 0,
                (i % 3 != 0).then_some(0.25 * i as f64),
            );
            inv.project_path = match i % 3 {
                0 => None,
                1 => Some("/work/a".into()),
                _ => Some("/work/b".into()),
            };
            if i % 4 == 0 && i % 5 != 0 {
                inv.error_type = Some(if i % 8 == 0 { "timeout" } else { "denied" }.into());
            }
            inv
        })
        .collect()
}

async fn every_write_path_keeps_the_rollups_and_verify_checks_them(store: &TestStore) {
    // One at a time, in batches, and from concurrent writers on one skill.
    for inv in events("single", 30) {
        store.record(inv).await.unwrap();
    }
    store.record_batch(events("batch", 200)).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = (**store).clone();
            tokio::spawn(async move {
                for chunk in events("shared", 120).chunks(10) {
                    let mut chunk = chunk.to_vec();
                    for inv in &mut chunk {
                        inv.id = domain::InvocationId::new_random();
                        inv.workflow_path = Some(format!("w{w}"));
                    }
                    store.record_batch(chunk).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    // 3 skills: hours of 1,337 s steps, times 3 projects at most.
    assert!(report.rollups_checked > 100, "{}", report.rollups_checked);
    assert!(
        report.day_rollups_checked >= 9,
        "{}",
        report.day_rollups_checked
    );

    // A count changed, a row removed: both reported, and rebuild repairs.
    let conn = store.connection();
    conn.execute_unprepared(
        "UPDATE skill_rollups SET invocations = invocations + 1 WHERE skill_name = 'batch' \
         AND project_path = '/work/a'",
    )
    .await
    .unwrap();
    conn.execute_unprepared(
        "DELETE FROM skill_rollups WHERE skill_name = 'single' AND project_path = ''",
    )
    .await
    .unwrap();
    conn.execute_unprepared(
        "UPDATE skill_rollups_daily SET total_duration_micros = total_duration_micros + 7 \
         WHERE skill_name = 'shared'",
    )
    .await
    .unwrap();
    conn.execute_unprepared("DELETE FROM skill_rollups_daily WHERE skill_name = 'batch'")
        .await
        .unwrap();
    conn.execute_unprepared(
        "UPDATE skill_rollups_daily SET error_counts = NULL \
         WHERE skill_name = 'single' AND error_counts IS NOT NULL",
    )
    .await
    .unwrap();
    let report = store.verify().await.unwrap();
    let fields: Vec<(&str, &str)> = report
        .differences
        .iter()
        .map(|d| (d.table.as_str(), d.field.as_str()))
        .collect();
    assert!(
        fields.contains(&("skill_rollups", "invocations")),
        "{fields:?}"
    );
    assert!(fields.contains(&("skill_rollups", "row")), "{fields:?}");
    assert!(
        fields.contains(&("skill_rollups_daily", "total_duration_micros")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("skill_rollups_daily", "row")),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("skill_rollups_daily", "error_counts")),
        "{fields:?}"
    );
    store.rebuild().await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);

    // Emptied and not filled, as a store upgraded to version 7 finds them
    // (or after a fill that was interrupted): the next `migrate up` fills
    // them from the log, even though a write has added rows since.
    for table in ["skill_rollups", "skill_rollups_daily"] {
        conn.execute_unprepared(&format!("DELETE FROM {table}"))
            .await
            .unwrap();
    }
    conn.execute_unprepared("UPDATE skill_rollups_state SET filled = FALSE")
        .await
        .unwrap();
    store.record_batch(events("late", 3)).await.unwrap();
    assert!(!store.verify().await.unwrap().is_clean());
    store.migrate_up(None).await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
}

on_both_backends!(every_write_path_keeps_the_rollups_and_verify_checks_them);

/// The first midnight UTC after `tests::at(0)`, in seconds after it.
const MIDNIGHT: i64 = 86_400 - 1_739_190_896 % 86_400;

/// `a` is `b` within the digest's bound (exactly when both are `None`).
fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= domain::DIGEST_BOUND * b.abs().max(1e-9),
        (a, b) => a == b,
    }
}

async fn the_timeline_from_rollups_equals_the_log_in_every_zone_and_range(store: &TestStore) {
    use infrastructure::Bucket;
    use infrastructure::chrono_tz::Tz;
    // 900 calls over about 10 days, at uneven times, in three projects.
    let mut all = Vec::new();
    for i in 0..900i64 {
        let mut inv = invocation(
            "t",
            i * 997 + (i * i) % 601,
            i % 6 != 0,
            (i % 5 != 0).then_some(0.1 + (i % 97) as f64 * 0.31),
        );
        inv.project_path =
            [None, Some("/p/a".to_owned()), Some("/p/b".to_owned())][(i % 3) as usize].clone();
        all.push(inv);
    }
    for chunk in all.chunks(128) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    let at = |secs: i64| tests::at(secs);
    let ranges = [
        (None, None),
        (Some(at(37_537)), Some(at(612_345))), // edges off the hour
        (Some(at(3_600 * 30)), Some(at(3_600 * 100))), // edges on the hour
        (Some(at(MIDNIGHT + 86_400)), Some(at(MIDNIGHT + 5 * 86_400))), // on midnight UTC
        (Some(at(100_100)), Some(at(101_000))), // within one hour
        (Some(at(200_000)), None),
        (None, Some(at(400_001))),
    ];
    let zones = [
        "UTC",
        "Europe/Berlin",
        "Asia/Kolkata",
        "America/St_Johns",
        "Australia/Lord_Howe",
    ];
    for zone in zones {
        let tz: Tz = zone.parse().unwrap();
        for bucket in [Bucket::Hour, Bucket::Day, Bucket::Week] {
            // Every project's, one project's, and those with none.
            for ((since, until), project) in ranges
                .iter()
                .copied()
                .flat_map(|r| [(r, None), (r, Some("/p/a")), (r, Some(""))])
            {
                let got = store
                    .timeline_of_project("t", project, since, until, bucket, tz)
                    .await
                    .unwrap();
                let want = store
                    .timeline_from_log("t", project, since, until, bucket, tz)
                    .await
                    .unwrap();
                let what = format!("{zone} {bucket:?} {project:?} {since:?}..{until:?}");
                assert_eq!(got.len(), want.len(), "{what}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(
                        (g.bucket_start, g.invocations, g.completed),
                        (w.bucket_start, w.invocations, w.completed),
                        "{what}"
                    );
                    assert!(
                        close(g.p50_duration_seconds, w.p50_duration_seconds),
                        "{what}: {g:?} {w:?}"
                    );
                    assert!(
                        close(g.p95_duration_seconds, w.p95_duration_seconds),
                        "{what}: {g:?} {w:?}"
                    );
                }
            }
        }
    }
}

on_both_backends!(the_timeline_from_rollups_equals_the_log_in_every_zone_and_range);

async fn a_summary_over_a_range_equals_the_log(store: &TestStore) {
    // Four skills over about four days at uneven times, in three projects;
    // one skill has more than 128 durations in some ranges (the digest's
    // sketch answers), the others fewer (exact).
    let mut all = Vec::new();
    for i in 0..1_200i64 {
        let skill = ["busy", "busy", "mid", "rare", "busy", "mid"][(i % 6) as usize];
        let mut inv = invocation(
            if i % 97 == 0 { "tail" } else { skill },
            i * 293 + (i * i) % 409,
            i % 7 != 0,
            (i % 5 != 0).then_some(0.2 + (i % 89) as f64 * 0.37),
        );
        inv.project_path =
            [None, Some("/p/a".to_owned()), Some("/p/b".to_owned())][(i % 3) as usize].clone();
        all.push(inv);
    }
    for chunk in all.chunks(200) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    let at = |secs: i64| tests::at(secs);
    let ranges = [
        (None, None),
        (Some(at(37_537)), Some(at(212_345))), // edges off the hour
        (Some(at(3_600 * 10)), Some(at(3_600 * 50))), // edges on the hour
        (Some(at(MIDNIGHT)), Some(at(MIDNIGHT + 3 * 86_400))), // on midnight UTC
        (Some(at(100_100)), Some(at(101_000))), // within one hour
        (Some(at(200_000)), None),
        (None, Some(at(150_001))),
        (Some(at(-5_000)), Some(at(-1))), // before anything
    ];
    for ((since, until), project) in ranges
        .iter()
        .copied()
        .flat_map(|r| [(r, None), (r, Some("/p/b")), (r, Some(""))])
    {
        let got = store.summary_between(since, until, project).await.unwrap();
        let want = store
            .summary_between_from_log(since, until, project)
            .await
            .unwrap();
        let what = format!("{project:?} {since:?}..{until:?}");
        assert_eq!(
            (
                got.total_invocations,
                got.completed_invocations,
                &got.busiest_skill
            ),
            (
                want.total_invocations,
                want.completed_invocations,
                &want.busiest_skill
            ),
            "{what}"
        );
        assert_eq!(got.skills.len(), want.skills.len(), "{what}");
        for (g, w) in got.skills.iter().zip(&want.skills) {
            assert_eq!(
                (&g.skill_name, g.invocations, g.completed, g.completion_rate),
                (&w.skill_name, w.invocations, w.completed, w.completion_rate),
                "{what}"
            );
            assert!(
                close(g.avg_duration_seconds, w.avg_duration_seconds),
                "{what}: {g:?} {w:?}"
            );
            for (a, b) in [
                (g.p50_duration_seconds, w.p50_duration_seconds),
                (g.p95_duration_seconds, w.p95_duration_seconds),
                (g.p99_duration_seconds, w.p99_duration_seconds),
            ] {
                assert!(close(a, b), "{what}: {g:?} {w:?}");
            }
        }
    }
    // The whole history agrees with the per-skill metrics.
    let whole = store.summary_between(None, None, None).await.unwrap();
    assert_eq!(whole.total_invocations, 1_200);
    assert_eq!(whole.busiest_skill.as_deref(), Some("busy"));
}

on_both_backends!(a_summary_over_a_range_equals_the_log);
