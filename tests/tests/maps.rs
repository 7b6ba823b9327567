//! Bounded per-skill maps (D86): a map lists its 100 largest keys and the
//! exact sum of the rest once it outgrows 100 keys, every key's exact count
//! lives in `skill_map_counts`, and `verify`, `rebuild`, `prune` and
//! `migrate up` keep to that, on both backends.

use std::collections::BTreeMap;

use domain::{CountMap, Invocation, MAP_LIMIT, is_bounded_form_of};
use infrastructure::testing::TestStore;
use sea_orm::ConnectionTrait;
use tests::{invocation, on_both_backends};

/// 3,000 invocations of one skill over about 350 workflow paths whose use grows
/// with their number, so that late paths overtake early ones; 4 error
/// types (inline), follow-up actions over 150 names.
fn events() -> Vec<Invocation> {
    (0..3_000i64)
        .map(|i| {
            let mut inv = invocation("wide", i * 60, i % 9 != 0, Some(1.0 + (i % 13) as f64));
            let path = (i * 7_919 % 350).max(i / 10 % 350);
            inv.workflow_path = Some(format!("path-{path:03}"));
            inv.error_type = (i % 9 == 0).then(|| format!("E{}", i % 4));
            inv.follow_up_actions =
                vec![format!("act-{}", i % 150), format!("act-{}", i * 3 % 151)];
            inv
        })
        .collect()
}

fn exact(events: &[Invocation]) -> (CountMap, CountMap, CountMap) {
    let mut out = (CountMap::new(), CountMap::new(), CountMap::new());
    for inv in events {
        if let Some(p) = &inv.workflow_path {
            *out.0.entry(p.clone()).or_default() += 1;
        }
        if let Some(e) = &inv.error_type {
            *out.1.entry(e.clone()).or_default() += 1;
        }
        for a in &inv.follow_up_actions {
            *out.2.entry(a.clone()).or_default() += 1;
        }
    }
    out
}

async fn assert_bounded(store: &TestStore, events: &[Invocation], what: &str) {
    let (paths, errors, actions) = exact(events);
    let m = &store.metrics(&["wide"]).await.unwrap()[0];
    assert!(paths.len() > MAP_LIMIT && actions.len() > MAP_LIMIT);
    assert!(
        is_bounded_form_of(&m.workflow_paths, m.workflow_paths_other, &paths),
        "{what}: {} listed, other {}",
        m.workflow_paths.len(),
        m.workflow_paths_other
    );
    assert!(
        is_bounded_form_of(&m.follow_up_actions, m.follow_up_actions_other, &actions),
        "{what}"
    );
    assert_eq!(
        (&m.common_errors, m.common_errors_other),
        (&errors, 0),
        "{what}"
    );
    assert_eq!(m.total_invocations, events.len() as i64, "{what}");
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{what}: {:?}", report.differences);
}

async fn maps_stay_bounded_and_exact_on_every_path(store: &TestStore) {
    let all = events();
    // One at a time while the maps fill up and spill, then in batches.
    for inv in &all[..400] {
        store.record(inv.clone()).await.unwrap();
    }
    for chunk in all[400..].chunks(137) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    assert_bounded(store, &all, "after the writes").await;
    // JSON output names the rest only for a map that spilled.
    let json = serde_json::to_value(&store.metrics(&["wide"]).await.unwrap()[0]).unwrap();
    assert!(json.get("workflow_paths_other").is_some());
    assert!(json.get("common_errors_other").is_none());

    store.rebuild().await.unwrap();
    assert_bounded(store, &all, "after rebuild").await;

    // A key's count altered, a key's row removed: both reported, rebuild repairs.
    let conn = store.connection();
    conn.execute_unprepared(
        "UPDATE skill_map_counts SET count = count + 5 WHERE kind = 'workflow_paths' \
         AND item = (SELECT MIN(item) FROM skill_map_counts WHERE kind = 'workflow_paths')",
    )
    .await
    .unwrap();
    conn.execute_unprepared("DELETE FROM skill_map_counts WHERE item = 'act-7'")
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    let flagged: Vec<_> = report
        .differences
        .iter()
        .filter(|d| d.table == "skill_map_counts")
        .map(|d| d.field.clone())
        .collect();
    assert_eq!(
        flagged,
        ["workflow_paths", "follow_up_actions"],
        "{:?}",
        report.differences
    );
    store.rebuild().await.unwrap();
    assert_bounded(store, &all, "after the repair").await;

    // A store written before version 9 held whole maps: `migrate up` bounds them.
    let whole = serde_json::to_string(&exact(&all).0).unwrap();
    conn.execute_unprepared("DELETE FROM skill_map_counts")
        .await
        .unwrap();
    conn.execute_unprepared(&format!(
        "UPDATE skill_metrics SET workflow_paths = '{whole}', workflow_paths_other = 0, \
         follow_up_actions_other = 0, follow_up_actions = '{}'",
        serde_json::to_string(&exact(&all).2).unwrap()
    ))
    .await
    .unwrap();
    assert!(!store.verify().await.unwrap().is_clean());
    store.migrate_up(None).await.unwrap();
    assert_bounded(store, &all, "after migrate up").await;

    // A prune moves the counts into its balance; the maps do not change.
    let before = store.metrics(&["wide"]).await.unwrap();
    store.prune(tests::at(60 * 1_500), None).await.unwrap();
    let after = store.metrics(&["wide"]).await.unwrap();
    assert_eq!(
        (&after[0].workflow_paths, after[0].workflow_paths_other),
        (&before[0].workflow_paths, before[0].workflow_paths_other)
    );
    assert!(store.verify().await.unwrap().is_clean());
    store.rebuild().await.unwrap();
    assert_bounded(store, &all, "after prune and rebuild").await;
    // The key rows hold every key of the two maps that spilled.
    let rows: BTreeMap<String, i64> = conn
        .query_all_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT kind, COUNT(*) AS n FROM skill_map_counts GROUP BY kind",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get("", "kind").unwrap(), r.try_get("", "n").unwrap()))
        .collect();
    assert_eq!(
        rows,
        BTreeMap::from([
            ("follow_up_actions".into(), exact(&all).2.len() as i64),
            ("workflow_paths".into(), exact(&all).0.len() as i64)
        ])
    );
}

on_both_backends!(maps_stay_bounded_and_exact_on_every_path);
