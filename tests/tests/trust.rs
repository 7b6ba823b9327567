//! The corners where "exact, and nothing lost" used to give way.

use std::sync::Arc;

use domain::{Invocation, SessionId};
use infrastructure::StoreError;
use infrastructure::testing::TestStore;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tests::{at, invocation, on_both_backends};

fn in_session(mut inv: Invocation, session: &str, project: Option<&str>) -> Invocation {
    inv.session_id = Some(SessionId::parse(session).unwrap());
    inv.project_path = project.map(str::to_owned);
    inv
}

async fn count(store: &TestStore, sql: &str) -> i64 {
    store
        .connection()
        .query_one_raw(Statement::from_string(store.backend(), sql.to_owned()))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn a_batch_of_duplicates_writes_nothing(store: &TestStore) {
    let first = in_session(invocation("dup", 100, true, Some(1.0)), "s-dup", None);
    store.record(first.clone()).await.unwrap();
    // The same ids again, carrying an earlier time and a project: refused
    // as duplicates, they must not move the session either.
    let mut again = first.clone();
    again.invoked_at = at(10);
    again.project_path = Some("/elsewhere".into());
    let outcome = store
        .record_batch(vec![again.clone(), again])
        .await
        .unwrap();
    assert_eq!(outcome.inserted, 0);
    assert_eq!(outcome.duplicates.len(), 2);
    let view = store.session("s-dup").await.unwrap();
    assert_eq!(view.session.started_at, at(100));
    assert_eq!(view.session.project_path, None);
    assert!(store.verify().await.unwrap().is_clean());
}

async fn verify_and_rebuild_cover_sessions(store: &TestStore) {
    store
        .record_batch(vec![
            in_session(
                invocation("ses", 50, true, Some(1.0)),
                "s-v",
                Some("/p/one"),
            ),
            in_session(invocation("ses", 20, true, Some(2.0)), "s-v", None),
        ])
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.sessions_checked, 1);
    let later = match store.backend() {
        DbBackend::Postgres => "'2030-01-01T00:00:00Z'",
        _ => "'2030-01-01T00:00:00.000000+00:00'",
    };
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE sessions SET started_at = {later}, project_path = NULL"
        ))
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    let fields: Vec<(&str, &str)> = report
        .differences
        .iter()
        .map(|d| (d.table.as_str(), d.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [("sessions", "started_at"), ("sessions", "project_path")]
    );
    store.rebuild().await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
    let view = store.session("s-v").await.unwrap();
    assert_eq!(view.session.started_at, at(20));
    assert_eq!(view.session.project_path.as_deref(), Some("/p/one"));
}

async fn a_bad_digest_is_an_error_naming_the_skill(store: &TestStore) {
    for i in 0..200 {
        store
            .record(invocation("digest", i, true, Some(1.0 + i as f64)))
            .await
            .unwrap();
    }
    let junk = match store.backend() {
        DbBackend::Postgres => "'\\x01ff00'::bytea",
        _ => "X'01ff00'",
    };
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE skill_metrics SET duration_digest = {junk} WHERE skill_name = 'digest'"
        ))
        .await
        .unwrap();
    let err = store
        .record(invocation("digest", 500, true, Some(3.0)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Digest { skill, .. } if skill == "digest"),
        "{err}"
    );
    assert!(err.to_string().contains("rebuild"), "{err}");
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM skill_invocation").await,
        200
    );
    let report = store.verify().await.unwrap();
    assert!(
        report
            .differences
            .iter()
            .any(|d| d.field == "duration_digest"),
        "{:?}",
        report.differences
    );
    store.rebuild().await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
    store
        .record(invocation("digest", 500, true, Some(3.0)))
        .await
        .unwrap();
    let m = &store.metrics(&["digest"]).await.unwrap()[0];
    assert_eq!(m.total_invocations, 201);

    // A stored percentile off by more than the bound is found too.
    store
        .connection()
        .execute_unprepared(
            "UPDATE skill_metrics SET p95_duration_seconds = p95_duration_seconds * 1.05",
        )
        .await
        .unwrap();
    let report = store.verify().await.unwrap();
    let fields: Vec<&str> = report
        .differences
        .iter()
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(fields, ["p95_duration_seconds"]);
}

async fn a_failure_mid_batch_keeps_nothing(store: &TestStore) {
    store
        .record(invocation("before", 1, true, Some(1.0)))
        .await
        .unwrap();
    // The database refuses the third skill's aggregate row: by then the
    // batch's sessions and log rows are written inside the transaction.
    let arm = match store.backend() {
        DbBackend::Postgres => vec![
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                .to_owned(),
            "CREATE TRIGGER boom BEFORE INSERT ON skill_metrics FOR EACH ROW \
             WHEN (NEW.skill_name = 'c-boom') EXECUTE FUNCTION boom()"
                .to_owned(),
        ],
        _ => vec![
            "CREATE TRIGGER boom BEFORE INSERT ON skill_metrics WHEN NEW.skill_name = 'c-boom' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                .to_owned(),
        ],
    };
    for sql in &arm {
        store.connection().execute_unprepared(sql).await.unwrap();
    }
    let batch: Vec<Invocation> = ["a-ok", "b-ok", "c-boom", "d-ok"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            in_session(
                invocation(s, 10 + i as i64, true, Some(2.0)),
                "s-mid",
                Some("/p"),
            )
        })
        .collect();
    let err = store.record_batch(batch.clone()).await.unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM skill_invocation").await,
        1
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(count(store, "SELECT COUNT(*) FROM session_skill").await, 0);
    let names: Vec<String> = store
        .metrics(&[])
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.skill_name)
        .collect();
    assert_eq!(names, ["before"]);
    store
        .connection()
        .execute_unprepared("DROP TRIGGER boom ON skill_metrics")
        .await
        .or(store
            .connection()
            .execute_unprepared("DROP TRIGGER boom")
            .await)
        .unwrap();
    assert_eq!(store.record_batch(batch).await.unwrap().inserted, 4);
    assert!(store.verify().await.unwrap().is_clean());
}

async fn racing_refreshes_never_store_older_figures(store: &TestStore) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = ((**store).clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store
                    .record(invocation("race", i, true, Some(1.0)))
                    .await
                    .unwrap();
                i += 1;
            }
        })
    };
    let mut refreshers = Vec::new();
    for _ in 0..4 {
        let store = (**store).clone();
        refreshers.push(tokio::spawn(async move {
            for _ in 0..60 {
                // Counts only grow: once a refresh has returned figures, no
                // later read may show fewer.
                let refreshed = store.refresh_summary().await.unwrap().total_invocations;
                let stored = store.summary().await.unwrap().total_invocations;
                assert!(
                    stored >= refreshed,
                    "a refresh stored {refreshed} invocations, then the summary showed {stored}"
                );
            }
        }));
    }
    for r in refreshers {
        r.await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    let total = store.metrics(&["race"]).await.unwrap()[0].total_invocations;
    assert_eq!(
        store.refresh_summary().await.unwrap().total_invocations,
        total
    );
}

async fn search_survives_vacuum_of_a_restored_backup(store: &TestStore) {
    if store.backend() == DbBackend::Postgres {
        // `backup` is SQLite's (PostgreSQL backups are pg_dump's); the
        // PostgreSQL join is on the id column already.
        return;
    }
    // Interleave two words so that rowids and ids are in different orders,
    // and leave gaps VACUUM may close.
    let mut events = Vec::new();
    for i in 0..300 {
        let mut inv = invocation(
            if i % 3 == 0 {
                "deploy-prod"
            } else {
                "lint-only"
            },
            i,
            true,
            Some(1.0),
        );
        inv.workflow_path = Some(format!(
            "ci/{}",
            if i % 2 == 0 { "nightly" } else { "manual" }
        ));
        events.push(inv);
    }
    for chunk in events.chunks(17) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    let ids = |found: Vec<Invocation>| {
        let mut v: Vec<String> = found.into_iter().map(|i| i.id.to_string()).collect();
        v.sort();
        v
    };
    let before = ids(store.search("deploy nightly", 1000).await.unwrap());
    assert_eq!(before.len(), 50);
    // Each index entry names its invocation by `seq`, the log's declared
    // INTEGER PRIMARY KEY, not by an implicit rowid (which SQLite reserves
    // the right to renumber).
    let indexed: Vec<String> = store
        .connection()
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT i.id FROM skill_invocation_fts f JOIN skill_invocation i ON i.seq = f.rowid \
             WHERE skill_invocation_fts MATCH 'deploy nightly' ORDER BY 1",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<uuid::Uuid>(0).unwrap().to_string())
        .collect();
    assert_eq!(indexed, before);
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("restored.db");
    store.backup(&copy).await.unwrap();
    vacuum(&copy).await;
    let restored = infrastructure::SkillMetricsStore::connect(
        &infrastructure::DatabaseUrl::sqlite_file(&copy).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(restored.search("deploy nightly", 1000).await.unwrap()),
        before
    );
    assert_eq!(ids(restored.search("lint", 1000).await.unwrap()).len(), 200);
}

/// `VACUUM`s the SQLite file at `path`, as a user might after a restore.
async fn vacuum(path: &std::path::Path) {
    let url = infrastructure::DatabaseUrl::sqlite_file(path).to_string();
    let conn = sea_orm::Database::connect(&url).await.unwrap();
    conn.execute_unprepared("VACUUM").await.unwrap();
    conn.close().await.unwrap();
}

on_both_backends!(
    a_batch_of_duplicates_writes_nothing,
    verify_and_rebuild_cover_sessions,
    a_bad_digest_is_an_error_naming_the_skill,
    a_failure_mid_batch_keeps_nothing,
    racing_refreshes_never_store_older_figures,
);

on_both_backends!(shared: search_survives_vacuum_of_a_restored_backup);

/// SQLite-only: a path with a space and a percent sign is one file for
/// every connection of the store, and an unsupported parameter is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sqlite_url_opens_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/a%20b%25c.db", dir.path().display());
    let store = infrastructure::SkillMetricsStore::connect(&url)
        .await
        .unwrap();
    // The direct path (record) and the sqlx path (rebuild, verify) agree.
    store
        .record(invocation("one-file", 0, true, Some(1.0)))
        .await
        .unwrap();
    store.rebuild().await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
    assert_eq!(
        store.metrics(&["one-file"]).await.unwrap()[0].total_invocations,
        1
    );
    drop(store);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    files.sort();
    assert_eq!(files, ["a b%c.db"]);
    // The same file by its plain path, and through the URL's own text.
    let again = infrastructure::DatabaseUrl::sqlite_file(dir.path().join("a b%c.db"));
    assert_eq!(
        infrastructure::DatabaseUrl::parse(&again.to_string()).unwrap(),
        again
    );
    let reopened = infrastructure::SkillMetricsStore::connect(&again.to_string())
        .await
        .unwrap();
    assert_eq!(
        reopened.metrics(&["one-file"]).await.unwrap()[0].total_invocations,
        1
    );

    let err = infrastructure::SkillMetricsStore::connect(&format!("{url}?mode=ro"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("mode=ro"), "{err}");
}

/// A writer that finds the store held longer than it waits (a rebuild of a
/// large store, say) gives up with a clear `Busy`, on both backends, and
/// writes nothing (D89).
async fn a_writer_behind_a_long_holder_gives_up_clearly(store: &TestStore) {
    let impatient = tests::impatient_store(store, 300).await;
    let holder = tests::hold_the_store(store).await;
    let started = std::time::Instant::now();
    let refused = impatient
        .record(invocation("held", 0, true, Some(1.0)))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Busy { .. }), "{refused:?}");
    assert!(refused.to_string().contains("try again"), "{refused}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    holder.rollback().await.unwrap();
    assert!(impatient.metrics(&["held"]).await.unwrap().is_empty());
    impatient
        .record(invocation("held", 0, true, Some(1.0)))
        .await
        .unwrap();
}

on_both_backends!(shared: a_writer_behind_a_long_holder_gives_up_clearly);
