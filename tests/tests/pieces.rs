//! `verify` and `rebuild` read the log and the stored rows in pieces (D91):
//! cut into many small pieces, they find exactly what they find in one
//! piece, including rows only one side holds at the edges of a piece, and
//! rebuild the same rows. On both backends.

use std::collections::BTreeMap;

use domain::{Invocation, SessionId, SkillAggregate};
use infrastructure::testing::TestStore;
use infrastructure::{Difference, PieceSizes, VerifyReport};
use sea_orm::{ConnectionTrait, Statement};
use tests::{at, invocation, on_both_backends};

const SKILLS: [&str; 3] = ["deploy", "review", "lint"];

/// 300 invocations 20 minutes apart over 100 hours, with a quiet stretch
/// of three days in the middle: three skills, seven sessions, two projects
/// and none, paths, errors, follow-ups, some without a duration.
fn events() -> Vec<Invocation> {
    (0..300i64)
        .map(|i| {
            let quiet = if i >= 150 { 3 * 86_400 } else { 0 };
            let mut inv = invocation(
                SKILLS[(i % 3) as usize],
                i * 1_200 + quiet,
                i % 6 != 0,
                (i % 4 != 0).then_some(0.25 + (i % 29) as f64 * 0.75),
            );
            inv.session_id =
                (i % 10 != 9).then(|| SessionId::parse(format!("s{}", i % 7)).unwrap());
            inv.project_path = match i % 3 {
                0 => None,
                1 => Some("/work/a".into()),
                _ => Some("/work/b".into()),
            };
            inv.workflow_path = Some(format!("path-{}", i % 5));
            inv.error_type = (i % 6 == 0).then(|| format!("E{}", i % 4));
            inv.follow_up_actions = vec![format!("next-{}", i % 3)];
            inv
        })
        .collect()
}

/// Every piece as small as it can be: a window of three rows or one day
/// (a window holds whole days), two sessions a chunk.
const SMALL: PieceSizes = PieceSizes {
    window_rows: 3,
    window_days: 1,
    session_chunk: 2,
};

async fn rows(store: &TestStore, sql: &str) -> Vec<String> {
    store
        .connection()
        .query_all_raw(Statement::from_string(store.backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// Every row of a rollup table (hourly or daily), as text, its digest's
/// bytes and error counts included.
async fn rollup_rows(store: &TestStore, table: &str) -> Vec<String> {
    let digest = match store.backend() {
        sea_orm::DbBackend::Postgres => "encode(duration_digest, 'hex')",
        _ => "hex(duration_digest)",
    };
    rows(
        store,
        &format!(
            "SELECT skill_name || '|' || CAST(bucket_start AS TEXT) || '|' || project_path \
             || '|' || CAST(invocations AS TEXT) || '|' || CAST(completed AS TEXT) || '|' \
             || CAST(duration_count AS TEXT) || '|' || CAST(total_duration_micros AS TEXT) \
             || '|' || COALESCE({digest}, '-') || '|' || COALESCE(CAST(error_counts AS TEXT), '-') \
             FROM {table} ORDER BY 1"
        ),
    )
    .await
}

/// Every aggregate row, as text.
async fn stored(store: &TestStore) -> Vec<Vec<String>> {
    let mut metrics = store.metrics(&[]).await.unwrap();
    for m in &mut metrics {
        m.last_aggregated_at = None;
    }
    vec![
        metrics.iter().map(|m| format!("{m:?}")).collect(),
        rows(
            store,
            "SELECT session_id || '|' || skill_name || '|' || CAST(invocation_count AS TEXT) \
             || '|' || CAST(first_invoked_at AS TEXT) || '|' || CAST(last_invoked_at AS TEXT) \
             || '|' || CAST(total_duration_micros AS TEXT) FROM session_skill ORDER BY 1",
        )
        .await,
        rollup_rows(store, "skill_rollups").await,
        rollup_rows(store, "skill_rollups_daily").await,
        rows(
            store,
            "SELECT id || '|' || CAST(started_at AS TEXT) || '|' || COALESCE(project_path, '-') \
             FROM sessions ORDER BY 1",
        )
        .await,
    ]
}

fn counts(r: &VerifyReport) -> [u64; 6] {
    [
        r.day_rollups_checked as u64,
        r.invocations_read,
        r.skills_checked as u64,
        r.session_skills_checked as u64,
        r.sessions_checked as u64,
        r.rollups_checked as u64,
    ]
}

fn sorted(mut d: Vec<Difference>) -> Vec<String> {
    d.sort_by_key(|d| format!("{d:?}"));
    d.iter().map(|d| format!("{d:?}")).collect()
}

async fn small_pieces_find_what_one_piece_finds(store: &TestStore) {
    let all = events();
    store.record_batch(all.clone()).await.unwrap();
    // A prune of the first quarter, and ten of its rows written back: the
    // sweep must skip them and add the balances.
    let report = store.prune(at(75 * 1_200), None).await.unwrap();
    assert_eq!(report.removed, 75);
    let back: Vec<Invocation> = all[..10].to_vec();
    assert_eq!(store.record_batch(back).await.unwrap().inserted, 10);
    // A skill only an opening balance knows.
    let legacy = SkillAggregate {
        total: 4,
        completed: 3,
        abandoned: 1,
        ..SkillAggregate::default()
    };
    store
        .put_balances(
            "legacy.json",
            BTreeMap::from([("legacy-only".to_owned(), legacy)]),
        )
        .await
        .unwrap();

    let whole = store.verify().await.unwrap();
    let small = store.verify_in_pieces(SMALL).await.unwrap();
    assert!(whole.is_clean(), "{:?}", whole.differences);
    assert!(small.is_clean(), "{:?}", small.differences);
    assert_eq!(counts(&small), counts(&whole));
    // The ten written back are counted in the prune's balances, not read.
    assert_eq!(whole.invocations_read, 225);
    assert_eq!(whole.skills_checked, 4);
    // Each skill runs in one project, on three days before the quiet
    // stretch and three after it.
    assert_eq!(whole.day_rollups_checked, 3 * 6);
    let good = stored(store).await;

    // Damage: a changed hour, an hour stored far beyond any event, an hour
    // of a skill nothing else knows, a missing session row, a row of a session past every other id that
    // the log never names, and a changed skill.
    let conn = store.connection();
    // An hour a year after the last event, as each backend stores it.
    let far = match store.backend() {
        sea_orm::DbBackend::Postgres => "TIMESTAMPTZ '2026-03-01 10:00:00+00'".to_owned(),
        _ => format!(
            "'{}'",
            migration::sqlite_timestamp("2026-03-01T10:00:00Z".parse().unwrap())
        ),
    };
    let damage = [
        // The review hour in the middle of the rows.
        "UPDATE skill_rollups SET invocations = invocations + 1 WHERE skill_name = 'review' \
         AND bucket_start = (SELECT bucket_start FROM skill_rollups WHERE skill_name = 'review' \
         ORDER BY bucket_start LIMIT 1 OFFSET 40)"
            .to_owned(),
        format!(
            "INSERT INTO skill_rollups (skill_name, bucket_start, project_path, invocations, \
             completed, duration_count, total_duration_micros, duration_digest) \
             VALUES ('lint', {far}, '/work/a', 1, 0, 0, 0, NULL)"
        ),
        // An hour of a skill no other table names.
        format!(
            "INSERT INTO skill_rollups (skill_name, bucket_start, project_path, invocations, \
             completed, duration_count, total_duration_micros, duration_digest) \
             VALUES ('ghost', {far}, '', 2, 1, 0, 0, NULL)"
        ),
        // A day of deploy's in the middle, and a day of a skill only the
        // daily rollups name.
        "UPDATE skill_rollups_daily SET completed = completed - 1 WHERE skill_name = 'deploy' \
         AND bucket_start = (SELECT bucket_start FROM skill_rollups_daily \
         WHERE skill_name = 'deploy' ORDER BY bucket_start LIMIT 1 OFFSET 3)"
            .to_owned(),
        format!(
            "INSERT INTO skill_rollups_daily (skill_name, bucket_start, project_path, invocations, \
             completed, duration_count, total_duration_micros, duration_digest) \
             VALUES ('day-ghost', {far}, '', 5, 1, 0, 0, NULL)"
        ),
        // A deploy hour's error counts gone, and another's digest of a
        // different duration (its counts unchanged).
        "UPDATE skill_rollups SET error_counts = NULL WHERE skill_name = 'deploy' \
         AND bucket_start = (SELECT bucket_start FROM skill_rollups WHERE skill_name = 'deploy' \
         AND error_counts IS NOT NULL ORDER BY bucket_start LIMIT 1 OFFSET 2)"
            .to_owned(),
        "UPDATE skill_rollups SET duration_digest = (SELECT duration_digest FROM skill_rollups \
         WHERE skill_name = 'deploy' AND duration_count = 1 ORDER BY bucket_start LIMIT 1 OFFSET 11) \
         WHERE skill_name = 'deploy' AND bucket_start = (SELECT bucket_start FROM skill_rollups \
         WHERE skill_name = 'deploy' AND duration_count = 1 ORDER BY bucket_start LIMIT 1 OFFSET 10)"
            .to_owned(),
        // `session_skill` is a view; its rows are in the numbered table (D114).
        "DELETE FROM session_skill_numbered WHERE session_num = (SELECT num FROM sessions WHERE id = 's4') \
         AND skill_name = 'deploy'"
            .to_owned(),
        // A row that is there with a wrong count, and one whose seconds
        // alone disagree with its microseconds.
        "UPDATE session_skill_numbered SET invocation_count = invocation_count + 5 \
         WHERE session_num = (SELECT num FROM sessions WHERE id = 's2') AND skill_name = 'lint'"
            .to_owned(),
        "UPDATE session_skill_numbered SET total_duration_seconds = total_duration_seconds + 1 \
         WHERE session_num = (SELECT num FROM sessions WHERE id = 's3') AND skill_name = 'review'"
            .to_owned(),
        "INSERT INTO sessions (id, started_at, ended_at, project_path) \
         SELECT 'zz-none', started_at, ended_at, project_path FROM sessions WHERE id = 's1'"
            .to_owned(),
        "INSERT INTO session_skill_numbered (id, session_num, skill_name, invocation_count, \
         first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
         SELECT id, (SELECT num FROM sessions WHERE id = 'zz-none'), skill_name, 1, first_invoked_at, last_invoked_at, 0, 0 \
         FROM session_skill_numbered WHERE session_num = (SELECT num FROM sessions WHERE id = 's1') AND skill_name = 'lint'"
            .to_owned(),
        // A row of a session number no session has (no key refuses it, D98).
        "INSERT INTO session_skill_numbered (id, session_num, skill_name, invocation_count, \
         first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
         SELECT id, 987654, skill_name, 1, first_invoked_at, last_invoked_at, 0, 0 \
         FROM session_skill_numbered WHERE session_num = (SELECT num FROM sessions WHERE id = 's1') AND skill_name = 'lint'"
            .to_owned(),
        "UPDATE skill_metrics SET total_invocations = total_invocations + 1 WHERE skill_name = 'lint'"
            .to_owned(),
    ];
    let harm = || async {
        for sql in &damage {
            conn.execute_unprepared(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    harm().await;
    let whole = store.verify().await.unwrap();
    let small = store.verify_in_pieces(SMALL).await.unwrap();
    // A store that may open one reading connection reads in one sweep, not
    // two halves at once (D110; PostgreSQL's pool always has two): the same
    // report, the differences in the same order.
    // A private in-memory store has one connection already.
    let own = match infrastructure::DatabaseUrl::parse(store.url()) {
        Ok(infrastructure::DatabaseUrl::SqliteMemory) => None,
        _ => Some(tests::one_connection_store(store).await),
    };
    let single: &infrastructure::SkillMetricsStore = own.as_ref().unwrap_or(store);
    for sizes in [SMALL, PieceSizes::default()] {
        let one = single.verify_in_pieces(sizes).await.unwrap();
        let two = store.verify_in_pieces(sizes).await.unwrap();
        assert_eq!(counts(&one), counts(&two));
        assert_eq!(one.differences, two.differences);
    }
    let found = sorted(whole.differences);
    assert_eq!(sorted(small.differences), found);
    for (table, key) in [
        ("skill_rollups", "review"),
        ("skill_rollups", "lint 2026-03-01T10:00:00Z"),
        ("skill_rollups", "ghost 2026-03-01T10:00:00Z"),
        ("skill_rollups_daily", "deploy"),
        (
            "\"skill_rollups\", key: \"deploy",
            "field: \"error_counts\"",
        ),
        ("\"skill_rollups\", key: \"deploy", "field: \"p50\""),
        ("skill_rollups_daily", "day-ghost 2026-03-01T10:00:00Z"),
        ("session_skill", "s4 / deploy"),
        ("session_skill", "s2 / lint"),
        ("session_skill", "s3 / review"),
        ("session_skill", "zz-none / lint"),
        ("session_skill", "(no session numbered 987654) / lint"),
        ("skill_metrics", "lint"),
    ] {
        assert!(
            found.iter().any(|d| d.contains(table) && d.contains(key)),
            "{table} {key} not found in {found:#?}"
        );
    }

    // Rebuilt in small pieces, the rows are what they were before the damage.
    let rebuilt = store.rebuild_in_pieces(SMALL).await.unwrap();
    assert_eq!(rebuilt.invocations_read, 225);
    // The session the log never names stays (sessions are not derived),
    // its made-up row does not.
    conn.execute_unprepared("DELETE FROM sessions WHERE id = 'zz-none'")
        .await
        .unwrap();
    assert_eq!(stored(store).await, good);
    assert!(store.verify_in_pieces(SMALL).await.unwrap().is_clean());
    // The same damage again, rebuilt whole (every skill in one range).
    harm().await;
    assert!(!store.verify().await.unwrap().is_clean());
    store.rebuild().await.unwrap();
    conn.execute_unprepared("DELETE FROM sessions WHERE id = 'zz-none'")
        .await
        .unwrap();
    assert_eq!(stored(store).await, good);
    // And by the store of one reading connection, in one sweep.
    harm().await;
    single.rebuild_in_pieces(SMALL).await.unwrap();
    conn.execute_unprepared("DELETE FROM sessions WHERE id = 'zz-none'")
        .await
        .unwrap();
    assert_eq!(stored(store).await, good);
}

on_both_backends!(small_pieces_find_what_one_piece_finds);

/// A balance of pruned rows (`session_skill_pruned`, which names its
/// sessions by text id) of a session no `sessions` row has: `verify` finds
/// the `session_skill` row it calls for missing, in pieces of any size, and
/// `rebuild` gives the session a row, started at its first pruned
/// invocation, so that its `session_skill` row, keyed by the session's
/// number (D114), can be written.
async fn a_balance_of_a_session_no_table_knows(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    store
        .connection()
        .execute_unprepared(
            "INSERT INTO session_skill_pruned (id, session_id, skill_name, invocation_count, \
             first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
             SELECT 'zz-balance', 'zz-gone', skill_name, 2, first_invoked_at, last_invoked_at, \
             1.5, 1500000 FROM session_skill WHERE session_id = 's1' AND skill_name = 'lint'",
        )
        .await
        .unwrap();
    for sizes in [SMALL, PieceSizes::default()] {
        let found = store.verify_in_pieces(sizes).await.unwrap().differences;
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (
                found[0].table.as_str(),
                found[0].key.as_str(),
                found[0].field.as_str()
            ),
            ("session_skill", "zz-gone / lint", "row")
        );
    }
    store.rebuild_in_pieces(SMALL).await.unwrap();
    assert!(store.verify_in_pieces(SMALL).await.unwrap().is_clean());
    let session = "SELECT CAST(s.started_at = p.first_invoked_at AS TEXT) FROM sessions s \
                   JOIN session_skill_pruned p ON p.session_id = s.id WHERE s.id = 'zz-gone'";
    let started = rows(store, session).await;
    assert!(started == ["1"] || started == ["true"], "{started:?}");
    let pair =
        "SELECT CAST(invocation_count AS TEXT) FROM session_skill WHERE session_id = 'zz-gone'";
    assert_eq!(rows(store, pair).await, ["2"]);
}

on_both_backends!(a_balance_of_a_session_no_table_knows);

/// A rebuild of a store whose aggregates already are the log's leaves
/// every row as it was; on PostgreSQL the large tables' rows are not even
/// written again (D99, D100): each keeps its row version.
async fn rebuild_of_a_sound_store_keeps_its_rows(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    let good = stored(store).await;
    let versions = || async {
        if store.backend() != sea_orm::DbBackend::Postgres {
            return Vec::new();
        }
        let mut all = Vec::new();
        for (table, key) in [
            ("session_skill_numbered", "CAST(id AS TEXT)"),
            (
                "skill_rollups",
                "skill_name || CAST(bucket_start AS TEXT) || project_path",
            ),
            (
                "skill_rollups_daily",
                "skill_name || CAST(bucket_start AS TEXT) || project_path",
            ),
        ] {
            let sql = format!("SELECT {key} || ' ' || CAST(xmin AS TEXT) FROM {table} ORDER BY 1");
            all.extend(rows(store, &sql).await);
        }
        all
    };
    let before = versions().await;
    for sizes in [SMALL, PieceSizes::default()] {
        let report = store.rebuild_in_pieces(sizes).await.unwrap();
        assert_eq!(report.invocations_read, 300);
        assert_eq!(stored(store).await, good);
        assert_eq!(versions().await, before);
    }
    if store.backend() == sea_orm::DbBackend::Postgres {
        assert!(before.len() > 100, "{}", before.len());
    }
}

on_both_backends!(rebuild_of_a_sound_store_keeps_its_rows);

/// A rebuild that meets a logged row it cannot read (written by another
/// client, in the last skill, after every other skill's rows have been
/// written again) fails, names the row and changes nothing: the stored
/// rows, damaged as they were, stay, and the store takes writes after it.
async fn a_failed_rebuild_changes_nothing(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    let conn = store.connection();
    conn.execute_unprepared(
        "UPDATE skill_metrics SET total_invocations = 1 WHERE skill_name = 'deploy'",
    )
    .await
    .unwrap();
    let at = match store.backend() {
        sea_orm::DbBackend::Postgres => "TIMESTAMPTZ '2026-03-01 10:00:00+00'".to_owned(),
        _ => format!(
            "'{}'",
            migration::sqlite_timestamp("2026-03-01T10:00:00Z".parse().unwrap())
        ),
    };
    // A name with a control character, which the domain refuses.
    const ID: &str = "00000000-0000-4000-8000-00000000dead";
    let (id, empty, name) = match store.backend() {
        sea_orm::DbBackend::Postgres => (
            format!("'{ID}'::uuid"),
            "'[]'::jsonb",
            "'zz-unreadable' || chr(1)",
        ),
        _ => (
            format!("unhex('{}')", ID.replace('-', "")),
            "'[]'",
            "'zz-unreadable' || char(1)",
        ),
    };
    conn.execute_unprepared(&format!(
        "INSERT INTO skill_invocation_log (id, skill_name, invoked_at, completed, \
         follow_up_actions, schema_version, search_text) \
         VALUES ({id}, {name}, {at}, TRUE, {empty}, 1, 'zz')"
    ))
    .await
    .unwrap();
    let before = stored(store).await;
    for sizes in [SMALL, PieceSizes::default()] {
        let err = store.rebuild_in_pieces(sizes).await.unwrap_err();
        assert!(err.to_string().contains(ID), "{err}");
        assert_eq!(stored(store).await, before);
    }
    let mut inv = invocation("deploy", 900_000, true, Some(2.0));
    inv.session_id = Some(SessionId::parse("after").unwrap());
    store.record(inv).await.unwrap();
    let deploy = &store.metrics(&["deploy"]).await.unwrap()[0];
    assert_eq!(deploy.total_invocations, 2);
}

on_both_backends!(a_failed_rebuild_changes_nothing);

/// A rebuild whose caller stops waiting for it (its future dropped after
/// a few steps, at many different points) leaves the store either as it
/// was or wholly rebuilt, never in between, and the next rebuild and
/// record go through at once (D109, D110).
async fn a_dropped_rebuild_leaves_nothing_behind(store: &TestStore) {
    use std::future::Future;
    use std::task::Poll;
    store.record_batch(events()).await.unwrap();
    let good = stored(store).await;
    let conn = store.connection();
    let harm = || async {
        for sql in [
            "UPDATE skill_metrics SET total_invocations = 1 WHERE skill_name = 'deploy'",
            "DELETE FROM session_skill_numbered WHERE session_num = (SELECT num FROM sessions WHERE id = 's4')",
        ] {
            conn.execute_unprepared(sql).await.unwrap();
        }
    };
    harm().await;
    let damaged = stored(store).await;
    assert_ne!(damaged, good);
    let patient = std::time::Duration::from_secs(60);
    let mut dropped = 0;
    for polls in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let mut rebuild = Box::pin(store.rebuild_in_pieces(SMALL));
        let mut finished = false;
        for _ in 0..polls {
            let step = std::future::poll_fn(|cx| Poll::Ready(rebuild.as_mut().poll(cx))).await;
            if let Poll::Ready(report) = step {
                report.unwrap();
                finished = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(rebuild);
        dropped += usize::from(!finished);
        let now = stored(store).await;
        assert!(
            now == damaged || (finished && now == good),
            "after {polls} steps (finished: {finished}) the store is half rebuilt"
        );
        // Nothing is left holding the store.
        tokio::time::timeout(patient, store.rebuild())
            .await
            .expect("a rebuild after the dropped one waited")
            .unwrap();
        assert_eq!(stored(store).await, good, "after {polls} steps");
        harm().await;
    }
    assert!(
        dropped >= 3,
        "only {dropped} rebuilds were dropped before they finished"
    );
    let mut inv = invocation("deploy", 900_000, true, Some(2.0));
    inv.session_id = Some(SessionId::parse("after").unwrap());
    tokio::time::timeout(patient, store.record(inv))
        .await
        .expect("a record after the dropped rebuilds waited")
        .unwrap();
}

on_both_backends!(a_dropped_rebuild_leaves_nothing_behind);

/// A `verify` whose caller stops waiting for it, at many different points,
/// leaves no connection behind in a transaction: the store's next verify,
/// rebuild and record go through at once (D110).
async fn a_dropped_verify_leaves_nothing_behind(store: &TestStore) {
    use std::future::Future;
    use std::task::Poll;
    store.record_batch(events()).await.unwrap();
    let good = stored(store).await;
    let patient = std::time::Duration::from_secs(60);
    for polls in [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144] {
        let mut verify = Box::pin(store.verify_in_pieces(SMALL));
        for _ in 0..polls {
            let step = std::future::poll_fn(|cx| Poll::Ready(verify.as_mut().poll(cx))).await;
            if let Poll::Ready(report) = step {
                assert!(report.unwrap().is_clean());
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(verify);
        let report = tokio::time::timeout(patient, store.verify())
            .await
            .expect("a verify after the dropped one waited")
            .unwrap();
        assert!(
            report.is_clean(),
            "after {polls} steps: {:?}",
            report.differences
        );
        tokio::time::timeout(patient, store.rebuild())
            .await
            .expect("a rebuild after the dropped verify waited")
            .unwrap();
        assert_eq!(stored(store).await, good, "after {polls} steps");
    }
}

on_both_backends!(a_dropped_verify_leaves_nothing_behind);

/// `verify` while another writer keeps writing: each run reads the log and
/// the stored rows at one point of the store's history (in two halves on
/// connections whose snapshots start together, D110; on a SQLite file each
/// half with a second connection for the log's rows, D91), so it finds
/// nothing, however the writes fall.
async fn verify_beside_a_writer_finds_nothing(store: &TestStore) {
    use std::sync::atomic::{AtomicBool, Ordering};
    store.record_batch(events()).await.unwrap();
    let writing = AtomicBool::new(true);
    let writer = async {
        for round in 0..30i64 {
            let batch: Vec<Invocation> = (0..40i64)
                .map(|i| {
                    let mut inv = invocation(
                        SKILLS[(i % 3) as usize],
                        500_000 + round * 4_000 + i * 90,
                        i % 4 != 0,
                        Some(1.0 + i as f64),
                    );
                    // Five new sessions a round: a report's sessions tell
                    // which rounds its snapshot holds.
                    inv.session_id = Some(SessionId::parse(format!("w{round}-{}", i % 5)).unwrap());
                    inv
                })
                .collect();
            store.record_batch(batch).await.unwrap();
            tokio::task::yield_now().await;
        }
        writing.store(false, Ordering::SeqCst);
    };
    let checker = async {
        let mut runs = 0;
        while writing.load(Ordering::SeqCst) || runs < 3 {
            let report = store.verify_in_pieces(SMALL).await.unwrap();
            assert!(report.is_clean(), "run {runs}: {:?}", report.differences);
            // The halves (D110) read one state: the skills' count of the
            // log and the sessions' count of sessions agree on the rounds.
            let rounds = (report.invocations_read - 300) / 40;
            assert_eq!(
                report.sessions_checked as u64,
                7 + 5 * rounds,
                "run {runs}: {report:?}"
            );
            runs += 1;
        }
        runs
    };
    let ((), runs) = tokio::join!(writer, checker);
    assert!(runs >= 3);
    let last = store.verify().await.unwrap();
    assert!(last.is_clean());
    assert_eq!(last.invocations_read, 300 + 30 * 40);
}

on_both_backends!(verify_beside_a_writer_finds_nothing);

/// `verify` while another connection holds the write lock (a rebuild or
/// an import in another process, say) answers at once and finds nothing:
/// it never waits for writers (on a SQLite file it then reads the log
/// through its own transaction only).
async fn verify_beside_a_held_store_answers(store: &TestStore) {
    store.record_batch(events()).await.unwrap();
    let holder = tests::hold_the_store(store).await;
    let report = store.verify_in_pieces(SMALL).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    assert_eq!(report.invocations_read, 300);
    holder.rollback().await.unwrap();
}

on_both_backends!(shared: verify_beside_a_held_store_answers);
