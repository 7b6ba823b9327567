//! Retention (D83): `prune` removes old rows from the log and leaves every
//! aggregate, rollup and session row as it was; `verify` and `rebuild`
//! include what left; writing the archived rows back restores the log and
//! counts nothing twice. On both backends.

use domain::{Invocation, SessionId};
use infrastructure::testing::TestStore;
use infrastructure::{ExportCursor, ExportFilter, SkillMetrics};
use sea_orm::{ConnectionTrait, Statement};
use tests::{at, invocation, on_both_backends};

const SKILLS: [&str; 3] = ["deploy", "review", "lint"];

/// 400 invocations 15 minutes apart: three skills, seven sessions, two
/// projects and none, paths, errors, follow-ups, some without a duration.
fn events() -> Vec<Invocation> {
    (0..400i64)
        .map(|i| {
            let skill = SKILLS[(i % 3) as usize];
            let mut inv = invocation(
                skill,
                i * 900,
                i % 5 != 0,
                (i % 4 != 0).then_some(0.5 + (i % 37) as f64 * 1.25),
            );
            inv.session_id = Some(SessionId::parse(format!("s{}", i % 7)).unwrap());
            inv.project_path = match i % 3 {
                0 => None,
                1 => Some("/work/a".into()),
                _ => Some("/work/b".into()),
            };
            inv.workflow_path = Some(format!("path-{}", i % 4));
            inv.error_type = (i % 5 == 0).then(|| format!("E{}", i % 2));
            inv.follow_up_actions = vec![format!("next-{}", i % 3)];
            inv
        })
        .collect()
}

/// The cut: inside an hour, so that hour is split between the removed
/// rows and the kept ones.
fn cut() -> chrono::DateTime<chrono::Utc> {
    at(200 * 900 + 450)
}

async fn text_rows(store: &TestStore, sql: &str) -> Vec<String> {
    store
        .connection()
        .query_all_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Everything a reader sees that a prune must not change.
async fn figures(store: &TestStore) -> (Vec<SkillMetrics>, Vec<String>, Vec<String>) {
    let mut metrics = store.metrics(&SKILLS[..]).await.unwrap();
    for m in &mut metrics {
        m.last_aggregated_at = None;
    }
    let pairs = text_rows(
        store,
        "SELECT session_id || '|' || skill_name || '|' || CAST(invocation_count AS TEXT) || '|' \
         || CAST(first_invoked_at AS TEXT) || '|' || CAST(last_invoked_at AS TEXT) || '|' \
         || CAST(total_duration_micros AS TEXT) FROM session_skill ORDER BY 1",
    )
    .await;
    let hours = text_rows(
        store,
        "SELECT skill_name || '|' || CAST(bucket_start AS TEXT) || '|' || project_path || '|' \
         || CAST(invocations AS TEXT) || '|' || CAST(completed AS TEXT) || '|' \
         || CAST(duration_count AS TEXT) || '|' || CAST(total_duration_micros AS TEXT) \
         FROM skill_rollups ORDER BY 1",
    )
    .await;
    (metrics, pairs, hours)
}

async fn read_log(
    store: &TestStore,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> (Vec<Invocation>, i64) {
    let filter = ExportFilter {
        until,
        ..ExportFilter::default()
    };
    let mut cursor: ExportCursor = None;
    let mut all = Vec::new();
    loop {
        let (page, next) = store.export_page(&filter, &cursor, 64).await.unwrap();
        let done = page.len() < 64;
        all.extend(page);
        cursor = next;
        if done {
            break;
        }
    }
    (all, cursor.unwrap_or(0))
}

fn by_id(mut v: Vec<Invocation>) -> Vec<Invocation> {
    v.sort_by_key(|i| i.id.to_string());
    v
}

async fn assert_clean(store: &TestStore, what: &str) {
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{what}: {:?}", report.differences);
}

async fn pruning_keeps_every_figure_and_the_archive_restores_the_log(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    let before = figures(store).await;
    let (whole_log, _) = read_log(store, None).await;
    assert_eq!(whole_log.len(), 400);

    // The archive is read first; the prune removes what it read.
    let (archived, through) = read_log(store, Some(cut())).await;
    assert_eq!(archived.len(), 201);
    let report = store.prune(cut(), Some(through)).await.unwrap();
    assert_eq!((report.removed, report.counted_before), (201, 0));

    let (left, _) = read_log(store, None).await;
    assert_eq!(left.len(), 199);
    assert!(left.iter().all(|inv| inv.invoked_at >= cut()));
    assert_eq!(figures(store).await, before, "a prune changed a figure");
    assert_clean(store, "after the prune").await;
    let rebuilt = store.rebuild().await.unwrap();
    assert_eq!(rebuilt.invocations_read, 199);
    assert_eq!(
        figures(store).await,
        before,
        "rebuild lost the pruned balance"
    );
    assert_clean(store, "after rebuild").await;
    // Search sees only what is left (every third row is a deploy).
    assert_eq!(store.search("deploy", 1000).await.unwrap().len(), 67);

    // Nothing but a prune may delete or change a row.
    let conn = store.connection();
    for sql in [
        "DELETE FROM skill_invocation",
        "UPDATE skill_invocation SET completed = TRUE",
    ] {
        let refused = conn.execute_unprepared(sql).await.unwrap_err().to_string();
        assert!(refused.contains("append-only"), "{sql}: {refused}");
    }

    // Writing the archive back: the log is whole again, nothing counts twice.
    let restored = store.record_batch(archived.clone()).await.unwrap();
    assert_eq!(restored.inserted, 201);
    let (again, _) = read_log(store, None).await;
    assert_eq!(by_id(again), by_id(whole_log.clone()));
    assert_eq!(
        figures(store).await,
        before,
        "the restored rows were counted again"
    );
    assert_clean(store, "after the restore").await;
    store.rebuild().await.unwrap();
    assert_eq!(figures(store).await, before);
    assert_clean(store, "after the restore and rebuild").await;

    // Pruning the restored rows again moves nothing into the balances twice.
    let report = store.prune(cut(), None).await.unwrap();
    assert_eq!((report.removed, report.counted_before), (201, 201));
    assert_eq!(figures(store).await, before);
    assert_clean(store, "after the second prune").await;

    // A late event from before the cut, new to the store, counts as usual,
    // in the aggregate and in its hour, and a new prune takes it too.
    let late = invocation("deploy", 3, true, Some(2.0));
    store.record(late).await.unwrap();
    let deploy = store.metrics(&["deploy"]).await.unwrap();
    let was = before.0.iter().find(|m| m.skill_name == "deploy").unwrap();
    assert_eq!(deploy[0].total_invocations, was.total_invocations + 1);
    assert_clean(store, "after a late event").await;
    let report = store.prune(cut(), None).await.unwrap();
    assert_eq!((report.removed, report.counted_before), (1, 0));
    assert_eq!(
        store.metrics(&["deploy"]).await.unwrap()[0].total_invocations,
        deploy[0].total_invocations
    );
    assert_clean(store, "after pruning the late event").await;
    store.rebuild().await.unwrap();
    assert_clean(store, "after the last rebuild").await;
}

on_both_backends!(pruning_keeps_every_figure_and_the_archive_restores_the_log);

async fn a_prune_with_nothing_to_remove_changes_nothing(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    let before = figures(store).await;
    let report = store.prune(at(-1), None).await.unwrap();
    assert_eq!(report.removed, 0);
    assert_eq!(figures(store).await, before);
    // An archive that read nothing removes nothing, whatever the time.
    let report = store.prune(at(1_000_000), Some(0)).await.unwrap();
    assert_eq!(report.removed, 0);
    assert_eq!(read_log(store, None).await.0.len(), 400);
    assert_clean(store, "after empty prunes").await;
}

on_both_backends!(a_prune_with_nothing_to_remove_changes_nothing);
