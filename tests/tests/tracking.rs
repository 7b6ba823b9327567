//! The embedder's API: tracking handles and sessions.

use std::time::Duration;

use infrastructure::testing::TestStore;
use infrastructure::{DROPPED_ERROR, StoreError};
use tests::{counts, on_both_backends};

async fn handles_record_completions_failures_and_drops(store: &TestStore) {
    store
        .start_session("sess", tests::at(0), Some("/p"))
        .await
        .unwrap();
    let done = store
        .track("skill")
        .workflow("daily")
        .session("sess")
        .start()
        .unwrap();
    let done_id = done.id().unwrap();
    assert_eq!(
        done.complete_with(["git commit", "git push"])
            .await
            .unwrap(),
        done_id
    );
    store
        .track("skill")
        .session("sess")
        .start()
        .unwrap()
        .fail("TimeoutError")
        .await
        .unwrap();
    {
        let _forgotten = store.track("skill").session("sess").start().unwrap();
    }
    store.flush().await;
    let m = &store.metrics(&["skill"]).await.unwrap()[0];
    assert_eq!(
        (
            m.total_invocations,
            m.completed_invocations,
            m.abandoned_invocations
        ),
        (3, 1, 2)
    );
    assert_eq!(
        m.common_errors,
        counts([("TimeoutError", 1), (DROPPED_ERROR, 1)])
    );
    assert_eq!(
        m.follow_up_actions,
        counts([("git commit", 1), ("git push", 1)])
    );
    assert!(m.min_duration_seconds.unwrap() >= 0.0);
    let view = store.session("sess").await.unwrap();
    assert_eq!(view.skills[0].invocation_count, 3);
    assert_eq!(view.session.project_path.as_deref(), Some("/p"));
    assert!(store.verify().await.unwrap().is_clean());
}

async fn invalid_handles_are_refused_with_the_field(store: &TestStore) {
    match store.track("").start() {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "skill_name"),
        other => panic!(
            "expected an invalid skill name, got {:?}",
            other.map(|_| ())
        ),
    }
    match store.track("ok").session("bad\u{0}id").start() {
        Err(StoreError::Invalid(e)) => assert_eq!(e.field, "session_id"),
        other => panic!(
            "expected an invalid session id, got {:?}",
            other.map(|_| ())
        ),
    }
    let replay = store
        .track("ok")
        .at(tests::at(100))
        .start()
        .unwrap()
        .with_duration(12.5);
    replay.complete().await.unwrap();
    let m = &store.metrics(&["ok"]).await.unwrap()[0];
    assert_eq!(m.total_duration_seconds, 12.5);
    assert_eq!(m.first_invoked, Some(tests::at(100)));
}

/// Runs `check` on a SQLite and a PostgreSQL store, each opened on a
/// runtime of the check's own (the checks drop handles outside it).
fn on_both_runtimes(check: fn(&tokio::runtime::Runtime, &TestStore)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sqlite = rt.block_on(TestStore::sqlite());
    check(&rt, &sqlite);
    if let Some(postgres) = rt.block_on(TestStore::postgres()) {
        check(&rt, &postgres);
    }
}

#[test]
fn a_handle_dropped_outside_a_runtime_is_still_recorded() {
    on_both_runtimes(|rt, store| {
        let handle = rt.block_on(async { store.track("outside").start().unwrap() });
        drop(handle); // no runtime entered here
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), store.flush())
                .await
                .expect("flush returns");
            assert_eq!(
                store.metrics(&["outside"]).await.unwrap()[0].abandoned_invocations,
                1
            );
        });
    });
}

#[test]
fn flush_returns_when_the_record_can_never_run() {
    on_both_runtimes(|rt, store| {
        let handle = rt.block_on(async { store.track("nowhere").start().unwrap() });
        // A runtime that is gone: its handle still counts as "current", but
        // whatever is spawned on it is dropped without running.
        let gone = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let current = gone.handle().clone();
        drop(gone);
        {
            let _entered = current.enter();
            drop(handle);
        }
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), store.flush())
                .await
                .expect("flush must not hang on a record that can never run");
            // Nothing was half-written either.
            assert!(store.metrics(&["nowhere"]).await.unwrap().is_empty());
        });
    });
}

on_both_backends!(
    handles_record_completions_failures_and_drops,
    invalid_handles_are_refused_with_the_field
);
