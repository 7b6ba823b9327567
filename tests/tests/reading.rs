//! Reading: metrics, sessions, timelines, summary, search, query plans.

use std::time::Duration;

use domain::{Invocation, SessionId, search_text};
use infrastructure::testing::TestStore;
use infrastructure::{Bucket, RecentFilter, StoreError};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tests::{at, invocation, on_both_backends};

fn with(mut inv: Invocation, edit: impl FnOnce(&mut Invocation)) -> Invocation {
    edit(&mut inv);
    inv
}

async fn reads_on_an_empty_store_succeed(store: &TestStore) {
    assert!(store.metrics(&[]).await.unwrap().is_empty());
    assert!(store.metrics(&["nope"]).await.unwrap().is_empty());
    assert!(store.exact_percentiles(&["nope"]).await.unwrap().is_empty());
    assert!(
        store
            .recent(&RecentFilter::default(), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .timeline("nope", None, None, Bucket::Day)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.search("anything*", 10).await.unwrap().is_empty());
    let s = store.summary().await.unwrap();
    assert_eq!(
        (s.total_skills, s.total_invocations, s.most_used_count),
        (0, 0, 0)
    );
    assert_eq!(
        (s.overall_completion_rate, s.avg_duration_seconds),
        (0.0, 0.0)
    );
    assert!(s.most_used_skill.is_none() && s.top_error_types.is_empty());
    assert!(matches!(
        store.session("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.end_session("nope", at(0)).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.verify().await.unwrap().is_clean());
}

async fn summary_figures_equal_a_hand_computation(store: &TestStore) {
    let mut events = Vec::new();
    // zeta: 3 invocations, 2 completed (10 s, 20 s), errors E1 ×1; paths daily ×3.
    for (i, (done, d, err)) in [
        (true, 10.0, None),
        (true, 20.0, None),
        (false, 5.0, Some("E1")),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(with(invocation("zeta", i as i64, done, Some(d)), |inv| {
            inv.workflow_path = Some("daily".into());
            inv.error_type = err.map(str::to_owned);
        }));
    }
    // alpha: 3 invocations (ties with zeta: alpha wins alphabetically), 1 completed (6 s), E1 ×1, E.2 ×2.
    for (i, (done, err)) in [(true, None), (false, Some("E.2")), (false, Some("E.2"))]
        .into_iter()
        .enumerate()
    {
        events.push(with(
            invocation("alpha", 10 + i as i64, done, Some(6.0)),
            |inv| {
                inv.error_type = err.map(str::to_owned);
                inv.workflow_path = Some("quick path".into());
            },
        ));
    }
    events.push(with(invocation("alpha", 20, false, None), |inv| {
        inv.error_type = Some("E1".into())
    }));
    events.push(invocation("beta", 30, true, None));
    store.record_batch(events).await.unwrap();
    let s = store.refresh_summary().await.unwrap();
    assert_eq!(s.total_skills, 3);
    assert_eq!(s.total_invocations, 8);
    assert_eq!(s.overall_completion_rate, 4.0 / 8.0 * 100.0);
    assert_eq!(s.most_used_skill.as_deref(), Some("alpha"));
    assert_eq!(s.most_used_count, 4);
    assert_eq!(
        s.avg_duration_seconds,
        36.0 / 4.0,
        "total duration ÷ completed"
    );
    assert_eq!(
        s.top_error_types,
        vec![("E.2".to_owned(), 2), ("E1".to_owned(), 2)]
    );
    assert_eq!(
        s.top_workflow_paths,
        vec![("daily".to_owned(), 3), ("quick path".to_owned(), 3)]
    );
    assert_eq!(
        store.summary().await.unwrap(),
        s,
        "the stored row reads back the same"
    );
}

async fn the_background_refresher_refreshes_and_stops(store: &TestStore) {
    // A stored summary first: from here on `summary()` only reads it, so
    // only the refresher can make it show the new invocation.
    let first = store.refresh_summary().await.unwrap();
    assert_eq!(first.total_invocations, 0);
    store
        .record(invocation("bg", 0, true, Some(1.0)))
        .await
        .unwrap();
    assert_eq!(store.summary().await.unwrap().total_invocations, 0);
    let refresher = store.start_summary_refresher(Duration::from_millis(20));
    let mut seen = store.summary().await.unwrap();
    for _ in 0..250 {
        if seen.total_invocations == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = store.summary().await.unwrap();
    }
    assert_eq!(seen.total_invocations, 1, "the refresher never refreshed");
    assert!(seen.refresh_time > first.refresh_time);
    tokio::time::timeout(Duration::from_secs(5), refresher.stop())
        .await
        .expect("stops promptly");
    // Stopped: a later change is not picked up.
    store
        .record(invocation("bg", 1, true, Some(1.0)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(store.summary().await.unwrap().total_invocations, 1);
}

async fn sessions_timelines_and_recent(store: &TestStore) {
    let s = SessionId::parse("sess-1").unwrap();
    let events = vec![
        with(invocation("a", 3 * 3600 + 5, true, Some(4.0)), |i| {
            i.session_id = Some(s.clone())
        }),
        with(invocation("a", 3600 + 1, true, Some(2.0)), |i| {
            i.session_id = Some(s.clone())
        }),
        with(invocation("a", 3600 + 2, false, Some(9.0)), |i| {
            i.session_id = Some(s.clone())
        }),
        with(invocation("b", 3600 + 3, true, Some(1.0)), |i| {
            i.session_id = Some(s.clone());
            i.project_path = Some("/work/x".into());
        }),
        invocation("a", 3600 + 4, true, Some(6.0)),
    ];
    store.record_batch(events).await.unwrap();
    let view = store.session("sess-1").await.unwrap();
    assert_eq!(view.session.started_at, at(3601));
    assert_eq!(view.session.project_path.as_deref(), Some("/work/x"));
    let skills: Vec<(&str, i64)> = view
        .skills
        .iter()
        .map(|r| (r.skill_name.as_str(), r.invocation_count))
        .collect();
    assert_eq!(skills, [("a", 3), ("b", 1)]);
    let times: Vec<_> = view.invocations.iter().map(|i| i.invoked_at).collect();
    assert_eq!(times, [at(3601), at(3602), at(3603), at(3 * 3600 + 5)]);
    store.end_session("sess-1", at(4 * 3600)).await.unwrap();
    assert_eq!(
        store.session("sess-1").await.unwrap().session.ended_at,
        Some(at(4 * 3600))
    );

    let hours = store.timeline("a", None, None, Bucket::Hour).await.unwrap();
    assert_eq!(hours.len(), 2);
    assert_eq!((hours[0].invocations, hours[0].completed), (3, 2));
    assert_eq!(hours[0].p50_duration_seconds, Some(4.0));
    assert_eq!(hours[1].invocations, 1);
    let window = store
        .timeline("a", Some(at(3602)), Some(at(3 * 3600 + 5)), Bucket::Day)
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|b| b.invocations).sum::<i64>(),
        2,
        "since inclusive, until exclusive"
    );

    let recent = store.recent(&RecentFilter::default(), 2).await.unwrap();
    assert_eq!(
        recent.iter().map(|i| i.invoked_at).collect::<Vec<_>>(),
        [at(3 * 3600 + 5), at(3604)]
    );
    let only_b = store
        .recent(
            &RecentFilter {
                skill: Some("b".into()),
                session: None,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(only_b.len(), 1);
    let in_session = store
        .recent(
            &RecentFilter {
                skill: None,
                session: Some("sess-1".into()),
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(in_session.len(), 4);
    let exact = store.exact_percentiles(&["a", "b"]).await.unwrap();
    assert_eq!(exact["a"].p50, Some(4.0));
    assert_eq!(exact["b"].p99, Some(1.0));
    let many = store.metrics(&["a", "b", "missing"]).await.unwrap();
    assert_eq!(
        many.iter()
            .map(|m| m.skill_name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
}

const HOSTILE: &[&str] = &[
    "deploy",
    "DEPLOY",
    "\"deploy\"",
    "deploy AND prod",
    "deploy OR nothing",
    "NEAR(deploy prod)",
    "-prod",
    "prod:",
    "ci/deploy-prod.v2",
    "(",
    ")",
    "\"",
    "'",
    "*",
    "dep*",
    "de*ploy",
    "v2*",
    "ünï*",
    "名前",
    "a'; DROP TABLE skill_invocation; --",
    "NOT deploy",
    "deploy^2",
    "{prod}",
    "%",
    "_",
    "\\",
    "prod -staging",
    "crack* daily",
    "",
];

fn reference(data: &[Invocation], query: &str) -> Vec<uuid::Uuid> {
    let terms = domain::parse_search_query(query);
    let mut hits: Vec<&Invocation> = data
        .iter()
        .filter(|inv| {
            let text = search_text(inv.skill_name.as_str(), inv.workflow_path.as_deref());
            let words: Vec<&str> = text.split(' ').collect();
            !terms.is_empty()
                && terms.iter().all(|t| {
                    words.iter().any(|w| {
                        if t.prefix {
                            w.starts_with(&t.word)
                        } else {
                            *w == t.word
                        }
                    })
                })
        })
        .collect();
    // Newest written first (D80); `data` is written in its order.
    hits.reverse();
    hits.into_iter().map(|i| *i.id.as_uuid()).collect()
}

async fn search_treats_any_input_as_literal_words(store: &TestStore) {
    let data: Vec<Invocation> = [
        ("deployer", Some("ci/deploy-prod.v2")),
        ("crackerjack-run", Some("daily")),
        ("crackerjack-run", Some("ci/deploy-staging")),
        ("Ünïcode_名前", Some("naïve/path")),
        ("near-and-or", None),
        ("prod", Some("drop table")),
    ]
    .iter()
    .enumerate()
    .map(|(i, (skill, path))| {
        with(invocation(skill, i as i64, true, Some(1.0)), |inv| {
            inv.workflow_path = path.map(str::to_owned)
        })
    })
    .collect();
    // One at a time, so that the order of writing is the data's.
    for inv in &data {
        store.record(inv.clone()).await.unwrap();
    }
    for query in HOSTILE {
        let got: Vec<uuid::Uuid> = store
            .search(query, 50)
            .await
            .unwrap()
            .iter()
            .map(|i| *i.id.as_uuid())
            .collect();
        assert_eq!(got, reference(&data, query), "query {query:?}");
    }
    assert_eq!(store.search("deploy", 50).await.unwrap().len(), 2);
    assert_eq!(store.search("deploy", 1).await.unwrap().len(), 1, "limit");
}

async fn explain(store: &TestStore, sql: &str) -> Vec<String> {
    let plan = store
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {sql}"),
        ))
        .await
        .unwrap();
    plan.iter()
        .map(|r| r.try_get::<String>("", "detail").unwrap())
        .collect()
}

/// SQLite only: PostgreSQL's planner scans tiny tables whatever the indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_pattern_uses_its_index() {
    let store = &TestStore::sqlite().await;
    let patterns = [
        (
            "SELECT * FROM skill_invocation WHERE skill_name = 'x' ORDER BY invoked_at DESC LIMIT 100",
            "idx_skill_invocation_skill_time",
        ),
        (
            "SELECT * FROM skill_invocation WHERE session_id = 's' ORDER BY invoked_at DESC",
            "idx_skill_invocation_session_time",
        ),
        // Its prefix serves a lookup by session alone (D90).
        (
            "SELECT COUNT(*) FROM skill_invocation WHERE session_id = 's'",
            "idx_skill_invocation_session_time",
        ),
        (
            "SELECT * FROM skill_invocation ORDER BY invoked_at DESC LIMIT 20",
            "idx_skill_invocation_invoked_at",
        ),
        (
            "SELECT COUNT(*) FROM skill_invocation WHERE skill_name = 'x' AND completed = 1",
            "idx_skill_invocation_skill_completed",
        ),
        (
            "SELECT COUNT(*) FROM skill_invocation WHERE skill_name = 'x' AND error_type = 'E'",
            "idx_skill_invocation_skill_error",
        ),
        (
            "SELECT rowid FROM skill_invocation_fts WHERE skill_invocation_fts MATCH '\"prod\"'",
            "VIRTUAL TABLE INDEX",
        ),
        (
            "SELECT invoked_at, completed, duration_seconds FROM skill_invocation WHERE skill_name = 'x' AND invoked_at >= '2025' ORDER BY invoked_at",
            "idx_skill_invocation_skill_time",
        ),
    ];
    for (sql, index) in patterns {
        let plan = explain(store, sql).await;
        assert!(
            plan.iter().any(|d| d.contains(index)),
            "{sql}\nplan: {plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "{sql} sorts: {plan:?}"
        );
    }
}

on_both_backends!(
    reads_on_an_empty_store_succeed,
    summary_figures_equal_a_hand_computation,
    the_background_refresher_refreshes_and_stops,
    sessions_timelines_and_recent,
    search_treats_any_input_as_literal_words,
);
