//! Recording: exact aggregates, duplicates, batches, concurrency, rebuild.

use domain::{Invocation, SessionId};
use infrastructure::testing::TestStore;
use infrastructure::{SkillMetricsStore, StoreError};
use sea_orm::{ConnectionTrait, EntityTrait};
use tests::{at, counts, invocation, on_both_backends};

fn with(mut inv: Invocation, edit: impl FnOnce(&mut Invocation)) -> Invocation {
    edit(&mut inv);
    inv
}

async fn aggregates_match_a_hand_computation(store: &TestStore) {
    let session = SessionId::parse("session one").unwrap();
    // Out of order on purpose: the latest first, the earliest in the middle.
    let events = vec![
        with(invocation("crackerjack-run", 50, true, Some(10.0)), |i| {
            i.workflow_path = Some("ci/deploy.prod v2".into());
            i.follow_up_actions =
                vec!["git commit".into(), "git commit".into(), "a.b \"c\"".into()];
            i.session_id = Some(session.clone());
        }),
        with(invocation("crackerjack-run", 10, false, Some(99.0)), |i| {
            i.error_type = Some("module.TimeoutError".into());
            i.workflow_path = Some("ci/deploy.prod v2".into());
            i.session_id = Some(session.clone());
        }),
        with(invocation("crackerjack-run", 30, true, Some(20.0)), |i| {
            i.workflow_path = Some("ünïcödé".into());
        }),
        with(invocation("crackerjack-run", 40, true, None), |i| {
            i.session_id = Some(session.clone());
        }),
        invocation("other", 20, true, Some(1.0)),
    ];
    for e in events {
        store.record(e).await.unwrap();
    }
    let m = &store.metrics(&["crackerjack-run"]).await.unwrap()[0];
    assert_eq!(
        (
            m.total_invocations,
            m.completed_invocations,
            m.abandoned_invocations
        ),
        (4, 3, 1)
    );
    assert_eq!(m.total_duration_seconds, 30.0);
    assert_eq!(m.duration_count, 2);
    assert_eq!(
        (m.min_duration_seconds, m.max_duration_seconds),
        (Some(10.0), Some(20.0))
    );
    assert_eq!(m.avg_duration_seconds, Some(15.0));
    assert_eq!(m.completion_rate, 75.0);
    assert_eq!(m.success_rate, Some(75.0));
    assert_eq!(m.p50_duration_seconds, Some(15.0));
    assert_eq!(m.p95_duration_seconds, Some(19.5));
    assert_eq!(m.p99_duration_seconds, Some(19.9));
    assert_eq!(
        m.workflow_paths,
        counts([("ci/deploy.prod v2", 2), ("ünïcödé", 1)])
    );
    assert_eq!(m.common_errors, counts([("module.TimeoutError", 1)]));
    assert_eq!(
        m.follow_up_actions,
        counts([("git commit", 2), ("a.b \"c\"", 1)])
    );
    assert_eq!(m.first_invoked, Some(at(10)));
    assert_eq!(m.last_invoked, Some(at(50)));

    let rows = entity::session_skill::Entity::find()
        .all(store.connection())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.session_id.as_str(), row.skill_name.as_str()),
        ("session one", "crackerjack-run")
    );
    assert_eq!(row.invocation_count, 3);
    assert_eq!(
        row.total_duration_seconds, 109.0,
        "abandoned durations count here"
    );
    assert_eq!(
        (row.first_invoked_at, row.last_invoked_at),
        (at(10), at(50))
    );
    let sessions = entity::sessions::Entity::find()
        .all(store.connection())
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].started_at, at(10));
    assert!(store.verify().await.unwrap().is_clean());
}

async fn a_duplicate_id_is_refused_and_counted_once(store: &TestStore) {
    let first = invocation("dup", 0, true, Some(1.0));
    let again = first.clone();
    store.record(first).await.unwrap();
    match store.record(again.clone()).await {
        Err(StoreError::Duplicate { id }) => assert_eq!(id, again.id.to_string()),
        other => panic!("expected a duplicate error, got {other:?}"),
    }
    let outcome = store
        .record_batch(vec![again.clone(), invocation("dup", 1, true, Some(2.0))])
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    assert_eq!(outcome.duplicates, vec![again.id]);
    assert_eq!(
        store.metrics(&["dup"]).await.unwrap()[0].total_invocations,
        2
    );
    assert!(store.verify().await.unwrap().is_clean());
}

async fn a_batch_with_one_bad_event_writes_nothing(store: &TestStore) {
    let good = invocation("batch", 0, true, Some(1.0));
    let bad = invocation("batch", 1, true, Some(f64::NAN));
    let err = store.record_batch(vec![good, bad]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(e) if e.field == "duration_seconds"),
        "{err}"
    );
    assert!(store.metrics(&[]).await.unwrap().is_empty());
    let count = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT COUNT(*) AS n FROM skill_invocation",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(count, 0);
}

async fn a_batch_folds_like_single_records(store: &TestStore) {
    let events: Vec<Invocation> = (0..500)
        .map(|i| {
            with(
                invocation(
                    ["a", "b", "c"][i % 3],
                    (i as i64 * 7919) % 1000,
                    i % 10 != 0,
                    Some((i % 37) as f64 * 1.5),
                ),
                |inv| {
                    inv.session_id = Some(SessionId::parse(format!("s{}", i / 100)).unwrap());
                    inv.workflow_path = Some(["daily", "quick"][i % 2].into());
                    if i % 10 == 0 {
                        inv.error_type = Some("E".into());
                    }
                },
            )
        })
        .collect();
    let (first, second) = events.split_at(200);
    store.record_batch(first.to_vec()).await.unwrap();
    for e in second.iter().take(50) {
        store.record(e.clone()).await.unwrap();
    }
    store.record_batch(second[50..].to_vec()).await.unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.invocations_read, 500);
    let totals: i64 = store
        .metrics(&[])
        .await
        .unwrap()
        .iter()
        .map(|m| m.total_invocations)
        .sum();
    assert_eq!(totals, 500);
}

async fn eight_concurrent_writers_lose_nothing(store: &TestStore) {
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store: infrastructure::SkillMetricsStore = (**store).clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let mut inv =
                    invocation(["hot", "warm"][i % 2], i as i64, i % 3 != 0, Some(i as f64));
                inv.session_id = Some(SessionId::parse(format!("w{writer}")).unwrap());
                if i % 5 == 0 {
                    store
                        .record_batch(vec![
                            inv,
                            invocation("hot", 1000 + i as i64, true, Some(0.5)),
                        ])
                        .await
                        .unwrap();
                } else {
                    store.record(inv).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.invocations_read, 8 * 48);
    let totals: i64 = store
        .metrics(&[])
        .await
        .unwrap()
        .iter()
        .map(|m| m.total_invocations)
        .sum();
    assert_eq!(totals, 8 * 48);
}

/// Separate stores (separate connections, as separate processes have)
/// contend for the database's write lock: every write must wait its turn
/// and land, singles and batches alike.
async fn separate_stores_on_one_database_lose_nothing(store: &TestStore) {
    let mut tasks = Vec::new();
    for writer in 0..3 {
        let other = store
            .reopen(infrastructure::MigrationMode::CheckOnly)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..30i64 {
                let mut inv =
                    invocation(["hot", "cold"][(i % 2) as usize], i, i % 4 != 0, Some(1.5));
                inv.session_id = Some(SessionId::parse(format!("s{writer}")).unwrap());
                if i % 10 == 0 {
                    let extra: Vec<_> = (0..50)
                        .map(|k| invocation("hot", 10_000 + k, true, Some(k as f64)))
                        .collect();
                    other.record_batch(extra).await.unwrap();
                }
                other.record(inv).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.invocations_read, 3 * (30 + 3 * 50));
    let metrics = store.metrics(&["cold", "hot"]).await.unwrap();
    assert_eq!(metrics[0].total_invocations, 3 * 15);
    assert_eq!(metrics[1].total_invocations, 3 * (15 + 3 * 50));
}

async fn rebuild_repairs_drifted_aggregates(store: &TestStore) {
    for i in 0..20 {
        store
            .record(invocation("drift", i, i % 4 != 0, Some(i as f64)))
            .await
            .unwrap();
    }
    store
        .connection()
        .execute_unprepared(
            "UPDATE skill_metrics SET total_invocations = 999, common_errors = '{\"x\": 1}'",
        )
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    let fields: Vec<&str> = report
        .differences
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert!(
        fields.contains(&"total_invocations") && fields.contains(&"common_errors"),
        "{fields:?}"
    );
    store.rebuild().await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
    assert_eq!(
        store.metrics(&["drift"]).await.unwrap()[0].total_invocations,
        20
    );
}

async fn percentiles_stay_close_at_volume(store: &TestStore) {
    let events: Vec<Invocation> = (0..5000)
        .map(|i| {
            invocation(
                "volume",
                i,
                true,
                Some(((i * 7919) % 10_000) as f64 / 100.0),
            )
        })
        .collect();
    let mut durations: Vec<f64> = events.iter().filter_map(|e| e.duration_seconds).collect();
    store.record_batch(events).await.unwrap();
    let exact = domain::exact_percentiles(&mut durations);
    let m = &store.metrics(&["volume"]).await.unwrap()[0];
    for (got, want) in [
        (m.p50_duration_seconds, exact.p50),
        (m.p95_duration_seconds, exact.p95),
        (m.p99_duration_seconds, exact.p99),
    ] {
        let (got, want) = (got.unwrap(), want.unwrap());
        assert!((got - want).abs() <= want * 0.01, "got {got}, want {want}");
    }
}

async fn a_checkpoint_leaves_the_whole_store_in_its_file(store: &TestStore) {
    let events: Vec<Invocation> = (0..500)
        .map(|i| invocation("settled", i, i % 3 != 0, Some(i as f64)))
        .collect();
    store.record_batch(events).await.unwrap();
    store
        .record(invocation("settled", 500, true, None))
        .await
        .unwrap();
    store.checkpoint().await.unwrap();
    let Some(dir) = store.dir() else {
        // PostgreSQL: nothing to copy, the call only has to succeed.
        assert_eq!(
            store.metrics(&["settled"]).await.unwrap()[0].total_invocations,
            501
        );
        return;
    };
    // The database file alone, without its log, as a file copy would take it.
    let copy = dir.join("copy.db");
    std::fs::copy(dir.join("store.db"), &copy).unwrap();
    let alone = SkillMetricsStore::connect(&format!("sqlite://{}", copy.display()))
        .await
        .unwrap();
    let m = &alone.metrics(&["settled"]).await.unwrap()[0];
    assert_eq!((m.total_invocations, m.completed_invocations), (501, 334));
    assert!(alone.verify().await.unwrap().is_clean());
}

on_both_backends!(
    a_checkpoint_leaves_the_whole_store_in_its_file,
    aggregates_match_a_hand_computation,
    a_duplicate_id_is_refused_and_counted_once,
    a_batch_with_one_bad_event_writes_nothing,
    a_batch_folds_like_single_records,
    eight_concurrent_writers_lose_nothing,
    rebuild_repairs_drifted_aggregates,
    percentiles_stay_close_at_volume,
);

on_both_backends!(shared: separate_stores_on_one_database_lose_nothing);
