//! Hourly rollups (D81) are kept by every write path, checked by `verify`
//! and repaired by `rebuild`, on both backends.

use infrastructure::testing::TestStore;
use sea_orm::ConnectionTrait;
use tests::{invocation, on_both_backends};

/// Invocations over several hours, two projects and none, some failed,
/// some without a duration.
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
    store.rebuild().await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);

    // Emptied, as a store upgraded to version 7 finds them: the next
    // `migrate up` fills them from the log.
    conn.execute_unprepared("DELETE FROM skill_rollups")
        .await
        .unwrap();
    assert!(!store.verify().await.unwrap().is_clean());
    store.migrate_up(None).await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
}

on_both_backends!(every_write_path_keeps_the_rollups_and_verify_checks_them);
