//! The foundation: migrations, ledger, immutability, search index, query plans.

use infrastructure::testing::TestStore;
use infrastructure::{MigrationMode, StoreError};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tests::{invocation, on_both_backends};

async fn rows(store: &TestStore, sql: &str) -> Vec<String> {
    let backend = store.backend();
    let result = store
        .connection()
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    result
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// A textual description of the schema that changes whenever a table,
/// column, index or trigger does.
async fn schema_of(store: &TestStore) -> Vec<String> {
    match store.backend() {
        DbBackend::Postgres => {
            let mut out = rows(
                store,
                "SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name <> 'seaql_migrations' ORDER BY 1",
            )
            .await;
            out.extend(rows(store, "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'seaql_migrations' ORDER BY 1").await);
            out.extend(
                rows(
                    store,
                    "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
                )
                .await,
            );
            out.extend(
                rows(
                    store,
                    "SELECT conrelid::regclass::text || ' ' || conname::text || ' ' || \
                     pg_get_constraintdef(oid) FROM pg_constraint \
                     WHERE connamespace = current_schema()::regnamespace AND contype = 'f' \
                     ORDER BY 1",
                )
                .await,
            );
            out
        }
        _ => {
            rows(
                store,
                // `sqlite_sequence` is SQLite's own, made by the first
                // AUTOINCREMENT table and never dropped.
                "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master \
                 WHERE name NOT LIKE '%seaql_migrations%' AND name <> 'sqlite_sequence' \
                 ORDER BY type, name",
            )
            .await
        }
    }
}

async fn up_down_up_leaves_the_same_schema(store: &TestStore) {
    let before = schema_of(store).await;
    assert!(
        before.iter().any(|s| s.contains("skill_invocation")),
        "{before:?}"
    );
    store.migrate_down(None).await.unwrap();
    let empty = schema_of(store).await;
    assert!(empty.is_empty(), "down to 0 leaves {empty:?}");
    store.migrate_up(None).await.unwrap();
    assert_eq!(schema_of(store).await, before);
}

async fn data_survives_rolling_back_to_version_one_and_up_again(store: &TestStore) {
    let mut inv = invocation("keep-me", 0, true, Some(4.0));
    inv.workflow_path = Some("daily".into());
    store.record(inv).await.unwrap();
    // Back to version 1: every later version is rolled back, the log's rows stay.
    let later = u32::try_from(migration::all().len() - 1).unwrap();
    store.migrate_down(Some(later)).await.unwrap();
    let columns = schema_of(store).await.join("\n");
    assert!(
        !columns.contains("success_rate"),
        "version 2 was not rolled back"
    );
    assert!(
        !columns.contains("skill_metrics_balance"),
        "version 3 was not rolled back"
    );
    assert!(
        !columns.contains("total_duration_micros"),
        "version 4 was not rolled back"
    );
    assert!(
        !columns.contains("api_tokens"),
        "version 5 was not rolled back"
    );
    assert!(
        !columns.contains("push_cursors") && !columns.contains("seq"),
        "version 6 was not rolled back"
    );
    assert!(
        !columns.contains("skill_rollups"),
        "version 7 was not rolled back"
    );
    assert!(
        !columns.contains("pruned_invocations") && !columns.contains("log_prune_gate"),
        "version 8 was not rolled back"
    );
    assert!(
        !columns.contains("skill_map_counts") && !columns.contains("workflow_paths_other"),
        "version 9 was not rolled back"
    );
    assert!(columns.contains("skill_invocation"));
    store.migrate_up(None).await.unwrap();
    // The row written before version 6 has its place in the order of writing.
    assert_eq!(store.written_after(0, 10).await.unwrap().len(), 1);
    // Search still finds what was logged before the rollback.
    assert_eq!(store.search("daily", 10).await.unwrap().len(), 1);
    let metrics = store.metrics(&["keep-me"]).await.unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0].total_invocations, 1);
    assert_eq!(
        metrics[0].success_rate,
        Some(100.0),
        "the backfill computes success_rate"
    );
    assert!(store.verify().await.unwrap().is_clean());
    // A recompute that never ran (interrupted after the migration) runs at
    // the next `migrate up`.
    store
        .connection()
        .execute_unprepared(&format!(
            "UPDATE skill_metrics SET total_duration_micros = {}",
            migration::UNKNOWN_SUM
        ))
        .await
        .unwrap();
    assert!(!store.verify().await.unwrap().is_clean());
    store.migrate_up(None).await.unwrap();
    assert!(store.verify().await.unwrap().is_clean());
    let micros = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            store.backend(),
            "SELECT total_duration_micros FROM skill_metrics WHERE skill_name = 'keep-me'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(micros, 4_000_000);
    let status = store.migration_status().await.unwrap();
    assert!(
        status
            .iter()
            .all(|e| e.state == infrastructure::LedgerState::Matches),
        "{status:?}"
    );
}

async fn a_tampered_checksum_is_detected_and_named(store: &TestStore) {
    store
        .connection()
        .execute_unprepared(
            "UPDATE schema_migrations SET checksum = 'not-the-real-one' WHERE version = 1",
        )
        .await
        .unwrap();
    let err = store.reopen(MigrationMode::Apply).await.unwrap_err();
    match &err {
        StoreError::Schema { version, detail } => {
            assert_eq!(*version, 1);
            assert!(detail.contains("checksum mismatch"), "{detail}");
        }
        other => panic!("expected a schema error, got {other:?}"),
    }
    assert!(err.to_string().contains("version 1"), "{err}");
}

async fn the_log_refuses_update_and_delete(store: &TestStore) {
    store
        .record(invocation("immutable", 0, true, Some(1.0)))
        .await
        .unwrap();
    // The view and the log's table behind it (D112) refuse the same; the
    // table lets a prune's DELETE through, and nothing else.
    for sql in [
        "UPDATE skill_invocation SET completed = FALSE",
        "DELETE FROM skill_invocation",
        "UPDATE skill_invocation_log SET completed = FALSE",
        "DELETE FROM skill_invocation_log",
        "INSERT INTO skill_invocation (id, skill_name, invoked_at, completed, \
         follow_up_actions, schema_version, search_text) \
         SELECT id, skill_name, invoked_at, completed, follow_up_actions, schema_version, \
         search_text FROM skill_invocation",
    ] {
        let err = store
            .connection()
            .execute_unprepared(sql)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if store.backend() == DbBackend::Postgres {
        let err = store
            .connection()
            .execute_unprepared("TRUNCATE skill_invocation_log CASCADE")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        // A view cannot be truncated at all.
        assert!(
            store
                .connection()
                .execute_unprepared("TRUNCATE skill_invocation CASCADE")
                .await
                .is_err()
        );
    }
    assert_eq!(
        store.metrics(&["immutable"]).await.unwrap()[0].total_invocations,
        1
    );
}

async fn a_word_of_the_workflow_path_finds_the_invocation(store: &TestStore) {
    let mut inv = invocation("deployer", 0, true, Some(1.0));
    inv.workflow_path = Some("ci/deploy-prod.v2".into());
    let id = store.record(inv).await.unwrap();
    for query in [
        "prod",
        "v2",
        "CI",
        "deploy prod",
        "dep*",
        "ci/deploy-prod.v2",
    ] {
        let found = store.search(query, 10).await.unwrap();
        assert_eq!(
            found.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![id],
            "query {query:?}"
        );
    }
    assert!(store.search("staging", 10).await.unwrap().is_empty());
}

/// SQLite only: PostgreSQL's planner scans tiny tables whatever the indexes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_design_query_uses_the_skill_time_index() {
    let store = &TestStore::sqlite().await;
    plan_uses(
        store,
        "SELECT * FROM skill_invocation WHERE skill_name = 'crackerjack-run' \
         ORDER BY invoked_at DESC LIMIT 100",
        "idx_skill_invocation_skill_time",
    )
    .await;
}

/// SQLite only, as above: the newest sessions come off an index in that
/// order (D93), not a sort of every session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_sessions_come_off_an_index() {
    let store = &TestStore::sqlite().await;
    plan_uses(
        store,
        "SELECT * FROM sessions ORDER BY started_at DESC, id DESC LIMIT 200",
        "idx_sessions_started_at",
    )
    .await;
}

/// SQLite's plan of `sql` reads `index`, in its order (no sort).
async fn plan_uses(store: &TestStore, sql: &str, index: &str) {
    let plan = plan_of(store, sql).await;
    assert!(
        plan.lines()
            .any(|d| d.contains(&format!("USING INDEX {index}"))
                || d.contains(&format!("USING COVERING INDEX {index}"))),
        "plan: {plan}"
    );
    assert!(
        !plan.contains("TEMP B-TREE"),
        "the index should give the order: {plan}"
    );
}

/// Export and copy page through the log by `seq`: every page must start on
/// an index in that order, never sort the log, whichever filter is given.
async fn export_pages_follow_an_index_in_seq_order(store: &TestStore) {
    use infrastructure::{ExportFilter, export_sql};
    let at = tests::at(0);
    let filters = [
        ExportFilter::default(),
        ExportFilter {
            skill: Some("x".into()),
            ..Default::default()
        },
        ExportFilter {
            skill: Some("x".into()),
            since: Some(at),
            until: Some(at),
        },
    ];
    for filter in filters {
        let sql = export_sql(&filter);
        // Literal values: a plan, not a page, is wanted.
        let mut literal = sql.clone();
        for n in (1..=5).rev() {
            let value = match n {
                1 => "0".to_owned(),
                _ if sql.contains(&format!("LIMIT ${n}")) => "5000".to_owned(),
                _ if sql.contains(&format!("skill_name = ${n}")) => "'x'".to_owned(),
                _ => "'2025-02-10T12:34:56.000000Z'".to_owned(),
            };
            literal = literal.replace(&format!("${n}"), &value);
        }
        let plan = plan_of(store, &literal).await;
        match store.backend() {
            DbBackend::Postgres => {
                assert!(plan.contains("idx_skill_invocation_seq"), "{sql}\n{plan}");
                assert!(!plan.contains("Sort"), "{sql}\n{plan}");
            }
            _ => {
                // The primary key, or an index whose entries end in the
                // rowid (`skill_name`'s): either way, already in `seq` order.
                assert!(plan.contains("rowid>?)"), "{sql}\n{plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{sql}\n{plan}");
            }
        }
    }
}

/// On the text-keyed `session_skill` of versions 16 to 19: a row with the
/// id `id` of session `s-9`, which has no `sessions` row, copied from
/// `s-2`'s. (The read first: a pooled SQLite connection that did not run
/// the last migration learns of the changed schema at its next read;
/// preparing an INSERT on its old schema would still see a view.)
fn orphan_pair(id: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM session_skill; \
         INSERT INTO session_skill (id, session_id, skill_name, invocation_count, \
         first_invoked_at, last_invoked_at, total_duration_seconds, total_duration_micros) \
         SELECT '{id}', 's-9', skill_name, 1, first_invoked_at, last_invoked_at, 0, 0 \
         FROM session_skill WHERE session_id = 's-2'"
    )
}

/// Whether the relation `name` is a `table` or a `view`, on either backend.
async fn kind_of(store: &TestStore, name: &str) -> String {
    let sql = match store.backend() {
        DbBackend::Postgres => format!(
            "SELECT CASE table_type WHEN 'BASE TABLE' THEN 'table' ELSE lower(table_type) END \
             FROM information_schema.tables WHERE table_name = '{name}'"
        ),
        _ => format!("SELECT type FROM sqlite_schema WHERE name = '{name}'"),
    };
    rows(store, &sql).await.concat()
}

/// How many steps `migrate_down` takes from the latest version to `version`.
fn steps_down_to(version: usize) -> u32 {
    u32::try_from(migration::all().len() - version).unwrap()
}

/// The plan of `sql` as the database would run it on a large table (on
/// PostgreSQL, sequential scans and sorts are switched off for it, so that
/// the plan shows what the indexes allow), one line per step.
async fn plan_of(store: &TestStore, sql: &str) -> String {
    plan_with(store, sql, false).await
}

/// As [`plan_of`]; with `sort`, PostgreSQL's planner may sort.
async fn plan_with(store: &TestStore, sql: &str, sort: bool) -> String {
    let settings: &[&str] = if sort {
        &["enable_seqscan = off"]
    } else {
        &["enable_seqscan = off", "enable_sort = off"]
    };
    plan_under(store, sql, settings).await
}

/// The plan of `sql`, on PostgreSQL under the given settings.
async fn plan_under(store: &TestStore, sql: &str, settings: &[&str]) -> String {
    let plan: Vec<String> = match store.backend() {
        DbBackend::Postgres => {
            let conn = store.connection();
            let txn = sea_orm::TransactionTrait::begin(conn).await.unwrap();
            for setting in settings {
                txn.execute_unprepared(&format!("SET LOCAL {setting}"))
                    .await
                    .unwrap();
            }
            let rows = txn
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    format!("EXPLAIN {sql}"),
                ))
                .await
                .unwrap();
            txn.rollback().await.unwrap();
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0).unwrap())
                .collect()
        }
        _ => store
            .connection()
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("EXPLAIN QUERY PLAN {sql}"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect(),
    };
    plan.join("\n")
}

/// The sweep reads a skill's window on `(skill_name, invoked_at)` and a
/// chunk's sessions on `(session_num, invoked_at)` (D113); on PostgreSQL,
/// under the settings the sweep runs them with, by a bitmap scan of that
/// index, never the time index with the other skills filtered out. A
/// window without restored rows probes `pruned_invocations`' key per row.
async fn the_sweep_reads_each_piece_on_its_own_index(store: &TestStore) {
    // Sixty days of twenty skills in sessions of 25, with statistics: on
    // an empty table PostgreSQL has no reason to prefer one index.
    let all: Vec<_> = (0..2_000)
        .map(|i| {
            let skill = match i % 20 {
                0 => "x".to_owned(),
                n => format!("s{n}"),
            };
            let mut inv = invocation(&skill, i * 2_600, i % 3 > 0, Some(1.5));
            inv.session_id = Some(domain::SessionId::parse(format!("sess-{}", i / 25)).unwrap());
            inv
        })
        .collect();
    store.record_batch(all).await.unwrap();
    if store.backend() == DbBackend::Postgres {
        store
            .connection()
            .execute_unprepared("ANALYZE")
            .await
            .unwrap();
    }
    let reads = infrastructure::sweep_reads_sql(store.backend());
    let indexes = [
        "idx_skill_invocation_skill_time",
        "idx_skill_invocation_session_time",
        "idx_skill_invocation_skill_time",
    ];
    assert_eq!(reads.len(), indexes.len());
    // The sweep's own settings, and no sequential scan (a large table's).
    let mut settings = vec!["enable_seqscan = off", infrastructure::STREAM_SETTING];
    settings.extend(infrastructure::SWEEP_SETTINGS);
    for (sql, index) in reads.iter().zip(indexes) {
        let plan = match store.backend() {
            DbBackend::Postgres => {
                let plan = plan_under(store, sql, &settings).await;
                assert!(
                    plan.contains(&format!("Bitmap Index Scan on {index}")),
                    "{sql}\n{plan}"
                );
                plan
            }
            _ => {
                let plan = plan_of(store, sql).await;
                assert!(
                    plan.contains(&format!("USING INDEX {index}")),
                    "{sql}\n{plan}"
                );
                plan
            }
        };
        assert!(
            !plan.contains("idx_skill_invocation_invoked_at")
                && !plan.contains("Seq Scan")
                && !plan.contains("SCAN skill_invocation_log"),
            "{sql}\n{plan}"
        );
        if sql.contains("pruned_invocations") {
            let probe = match store.backend() {
                DbBackend::Postgres => "pruned_invocations_pkey",
                _ => "SEARCH p USING PRIMARY KEY (id=?)",
            };
            assert!(plan.contains(probe), "{sql}\n{plan}");
            assert!(
                !plan.contains("Hash") && !plan.contains("SCAN p"),
                "{sql}\n{plan}"
            );
        }
    }
}

/// `session_skill`'s rows of a session come off the key of its table,
/// `(session_num, skill_name)` (D114), after one lookup of the session's
/// number, and so do the rows of a chunk's sessions by number, as `verify`
/// reads them.
async fn session_skill_by_session_uses_its_unique_index(store: &TestStore) {
    for sql in [
        "SELECT * FROM session_skill WHERE session_id = 's'",
        "SELECT * FROM session_skill_numbered WHERE session_num IN (3, 5, 8)",
    ] {
        let plan = plan_of(store, sql).await;
        let index = match store.backend() {
            DbBackend::Postgres => "session_skill_numbered_pkey",
            _ => "USING PRIMARY KEY (session_num=?)",
        };
        assert!(plan.contains(index), "{sql}\n{plan}");
        assert!(
            !plan.contains("Seq Scan")
                && !plan.contains("SCAN t")
                && !plan.contains("SCAN session_skill")
                && !plan.contains("TEMP B-TREE"),
            "{sql}\n{plan}"
        );
    }
}

/// The time indexes ascend (D103), and every newest-first read walks one
/// backwards: the index named, no sort, and on PostgreSQL a backward scan.
async fn newest_first_reads_walk_the_ascending_time_indexes_back(store: &TestStore) {
    let definitions = match store.backend() {
        DbBackend::Postgres => {
            "SELECT indexdef FROM pg_indexes WHERE indexname IN \
             ('idx_skill_invocation_invoked_at', 'idx_skill_invocation_skill_time', \
             'idx_skill_invocation_session_time', 'idx_sessions_started_at') ORDER BY 1"
        }
        _ => {
            "SELECT sql FROM sqlite_schema WHERE name IN \
             ('idx_skill_invocation_invoked_at', 'idx_skill_invocation_skill_time', \
             'idx_skill_invocation_session_time', 'idx_sessions_started_at') ORDER BY 1"
        }
    };
    let ascending = rows(store, definitions).await;
    assert_eq!(ascending.len(), 4, "{ascending:?}");
    assert!(
        ascending.iter().all(|d| !d.contains("DESC")),
        "{ascending:?}"
    );
    // Version 17's rollback builds the design's descending indexes again.
    let steps = u32::try_from(migration::all().len() - 16).unwrap();
    store.migrate_down(Some(steps)).await.unwrap();
    let descending = rows(store, definitions).await;
    assert_eq!(descending.len(), 4, "{descending:?}");
    assert!(
        descending.iter().all(|d| d.contains("DESC")),
        "{descending:?}"
    );
    store.migrate_up(None).await.unwrap();
    assert_eq!(rows(store, definitions).await, ascending);
    for (sql, index) in [
        (
            "SELECT * FROM skill_invocation ORDER BY invoked_at DESC LIMIT 20",
            "idx_skill_invocation_invoked_at",
        ),
        (
            "SELECT * FROM skill_invocation WHERE skill_name = 'x' ORDER BY invoked_at DESC LIMIT 20",
            "idx_skill_invocation_skill_time",
        ),
        (
            "SELECT * FROM sessions ORDER BY started_at DESC, id DESC LIMIT 200",
            "idx_sessions_started_at",
        ),
    ] {
        let plan = plan_of(store, sql).await;
        assert!(plan.contains(index), "{sql}\n{plan}");
        assert!(
            !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
            "{sql} sorts:\n{plan}"
        );
        if store.backend() == DbBackend::Postgres {
            assert!(plan.contains("Index Scan Backward"), "{sql}\n{plan}");
        }
    }
    // A session's rows (D112): its number comes off the sessions' index
    // of text ids, its rows off `(session_num, invoked_at)`. SQLite knows
    // that one session's rows come off that index in order; PostgreSQL
    // sorts them (a session's rows, never the log's).
    let session = "SELECT * FROM skill_invocation WHERE session_id = 's' ORDER BY invoked_at DESC";
    let plan = plan_with(store, session, true).await;
    for index in ["idx_skill_invocation_session_time", "sessions"] {
        assert!(plan.contains(index), "{session}\n{plan}");
    }
    assert!(
        !plan.contains("Seq Scan on skill_invocation_log") && !plan.contains("SCAN l"),
        "{session}\n{plan}"
    );
    if store.backend() == DbBackend::Sqlite {
        assert!(!plan.contains("TEMP B-TREE"), "{session} sorts:\n{plan}");
    }
}

/// `idx_skill_invocation_completed` is gone (D108) and version 18's
/// rollback creates it again. The one read that filters on `completed`
/// without a skill, the exact percentiles of every skill, wants most of the
/// log and reads the table straight through; a skill's completion figures
/// come off `(skill_name, completed)`, the design's index for them.
async fn no_index_serves_completed_alone(store: &TestStore) {
    let definition = match store.backend() {
        DbBackend::Postgres => {
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_skill_invocation_completed'"
        }
        _ => "SELECT sql FROM sqlite_schema WHERE name = 'idx_skill_invocation_completed'",
    };
    assert_eq!(rows(store, definition).await, Vec::<String>::new());
    // Back to version 17, whatever versions come after 18.
    let steps = u32::try_from(migration::all().len() - 17).unwrap();
    store.migrate_down(Some(steps)).await.unwrap();
    let restored = rows(store, definition).await;
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(restored[0].contains("(completed)"), "{restored:?}");
    store.migrate_up(None).await.unwrap();
    assert_eq!(rows(store, definition).await, Vec::<String>::new());

    let one_skill =
        "SELECT count(*) FROM skill_invocation WHERE skill_name = 'x' AND completed = TRUE";
    let plan = plan_of(store, one_skill).await;
    assert!(
        !plan.contains("Seq Scan") && !plan.contains("SCAN l"),
        "{one_skill}\n{plan}"
    );
    // PostgreSQL's planner costs every index of a skill alike on a tiny
    // table; SQLite chooses by the columns an index matches.
    if store.backend() == DbBackend::Sqlite {
        assert!(
            plan.contains("idx_skill_invocation_skill_completed"),
            "{one_skill}\n{plan}"
        );
        let every_skill = "SELECT skill_name, duration_seconds FROM skill_invocation \
                           WHERE completed = TRUE AND duration_seconds IS NOT NULL";
        let plan = plan_of(store, every_skill).await;
        // The view's join to `sessions` is left out: no column of it is read.
        assert_eq!(plan, "SCAN l", "{every_skill}");
    }
}

/// The foreign keys of `session_skill`, as `table -> referenced table`.
async fn session_skill_keys(store: &TestStore) -> Vec<String> {
    let sql = match store.backend() {
        DbBackend::Postgres => {
            "SELECT confrelid::regclass::text FROM pg_constraint \
             WHERE conrelid = 'session_skill'::regclass AND contype = 'f' ORDER BY 1"
        }
        _ => "SELECT \"table\" FROM pragma_foreign_key_list('session_skill') ORDER BY 1",
    };
    rows(store, sql).await
}

/// Version 16 takes `session_skill`'s foreign keys away (D98) and its
/// rollback gives them back, with every row kept both ways.
async fn session_skill_loses_its_foreign_keys_and_keeps_its_rows(store: &TestStore) {
    for (i, session) in ["s-1", "s-1", "s-2"].into_iter().enumerate() {
        let mut inv = invocation(if i == 1 { "b" } else { "a" }, i as i64, true, Some(2.0));
        inv.session_id = Some(domain::SessionId::parse(session).unwrap());
        store.record(inv).await.unwrap();
    }
    assert!(session_skill_keys(store).await.is_empty());
    let pairs = "SELECT session_id || '/' || skill_name FROM session_skill ORDER BY 1";
    let before = rows(store, pairs).await;
    assert_eq!(before, ["s-1/a", "s-1/b", "s-2/a"]);
    // A row of no session, which nothing refuses in the text-keyed table
    // of versions 16 to 19: the rollback drops it before the keys come back.
    store.migrate_down(Some(steps_down_to(19))).await.unwrap();
    store
        .connection()
        .execute_unprepared(&orphan_pair("orphan"))
        .await
        .unwrap();
    // Down to version 15, the last with the keys.
    store.migrate_down(Some(steps_down_to(15))).await.unwrap();
    assert_eq!(
        session_skill_keys(store).await,
        ["sessions", "skill_metrics"]
    );
    assert_eq!(rows(store, pairs).await, before);
    store.migrate_up(None).await.unwrap();
    assert!(session_skill_keys(store).await.is_empty());
    assert_eq!(rows(store, pairs).await, before);
    assert!(store.verify().await.unwrap().is_clean());
    session_skill_by_session_uses_its_unique_index(store).await;
}

/// Version 19 (D112): the log keeps each row's session by number, the
/// `skill_invocation` view gives back the text id, and both directions of
/// the migration keep every row, its `seq` and the counter behind it, even
/// when the rows holding the largest `seq` were pruned.
async fn sessions_by_number_both_ways(store: &TestStore) {
    for (i, session) in [Some("s-1"), Some("s-1"), None, Some("s-2")]
        .into_iter()
        .enumerate()
    {
        let mut inv = invocation("numbered", i as i64, true, Some(1.0));
        inv.session_id = session.map(|s| domain::SessionId::parse(s).unwrap());
        store.record(inv).await.unwrap();
    }
    let log = "SELECT CAST(seq AS TEXT) || ' ' || COALESCE(session_id, '-') \
               FROM skill_invocation ORDER BY seq";
    let before = rows(store, log).await;
    assert_eq!(before, ["1 s-1", "2 s-1", "3 -", "4 s-2"]);
    let numbers = "SELECT CAST(l.seq AS TEXT) || ' ' || s.id FROM skill_invocation_log l \
                   JOIN sessions s ON s.num = l.session_num ORDER BY l.seq";
    assert_eq!(rows(store, numbers).await, ["1 s-1", "2 s-1", "4 s-2"]);
    // Every row goes, so only the counter remembers seq 4.
    store.prune(tests::at(4), None).await.unwrap();
    assert!(rows(store, log).await.is_empty());

    store.migrate_down(Some(steps_down_to(18))).await.unwrap();
    assert_eq!(kind_of(store, "skill_invocation").await, "table");
    assert!(rows(store, log).await.is_empty());
    // The table of version 18 goes on from the counter.
    let next = match store.backend() {
        DbBackend::Postgres => {
            "SELECT CAST(nextval(pg_get_serial_sequence('skill_invocation', 'seq')) AS TEXT)"
        }
        _ => "SELECT CAST(seq + 1 AS TEXT) FROM sqlite_sequence WHERE name = 'skill_invocation'",
    };
    assert_eq!(rows(store, next).await, ["5"]);

    store.migrate_up(None).await.unwrap();
    assert!(rows(store, log).await.is_empty());
    let mut inv = invocation("numbered", 7, true, Some(1.0));
    inv.session_id = Some(domain::SessionId::parse("s-1").unwrap());
    store.record(inv).await.unwrap();
    let after = rows(store, log).await;
    assert_eq!(after.len(), 1, "{after:?}");
    let (seq, session) = after[0].split_once(' ').unwrap();
    assert!(seq.parse::<i64>().unwrap() >= 5, "{after:?}");
    assert_eq!(session, "s-1");
    let session = store.session("s-1").await.unwrap();
    assert_eq!(session.invocations.len(), 1);
    // The log follows the number, so the text id stays as it is.
    let err = store
        .connection()
        .execute_unprepared("UPDATE sessions SET id = 's-9' WHERE id = 's-1'")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot change"), "{err}");
    // Rows with sessions go back to version 18 and up again as they were.
    let kept = rows(store, log).await;
    store.migrate_down(Some(steps_down_to(18))).await.unwrap();
    assert_eq!(rows(store, log).await, kept);
    store.migrate_up(None).await.unwrap();
    assert_eq!(rows(store, log).await, kept);
    assert!(store.verify().await.unwrap().is_clean());
}

/// Version 20 (D114): `session_skill`'s rows name their session by number
/// in `session_skill_numbered`, the `session_skill` view gives back the
/// design's columns (the row's id as the same text), and both directions
/// of the migration keep every row; a row of no session gets one going up.
async fn session_skill_by_number_both_ways(store: &TestStore) {
    for (i, session) in ["s-1", "s-1", "s-2"].into_iter().enumerate() {
        let mut inv = invocation(if i == 1 { "b" } else { "a" }, i as i64, true, Some(2.5));
        inv.session_id = Some(domain::SessionId::parse(session).unwrap());
        store.record(inv).await.unwrap();
    }
    let pairs = "SELECT id || ' ' || session_id || ' ' || skill_name || ' ' \
                 || CAST(invocation_count AS TEXT) || ' ' || CAST(total_duration_micros AS TEXT) \
                 FROM session_skill ORDER BY session_id, skill_name";
    let before = rows(store, pairs).await;
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(before[0].ends_with(" s-1 a 1 2500000"), "{before:?}");
    // The id is the text of a UUID, as the design's table held it.
    let id = before[0].split(' ').next().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    // The view refuses writes: the store writes to the table.
    let err = store
        .connection()
        .execute_unprepared("DELETE FROM session_skill")
        .await
        .unwrap_err();
    assert!(!err.to_string().is_empty());

    store.migrate_down(Some(steps_down_to(19))).await.unwrap();
    assert_eq!(kind_of(store, "session_skill").await, "table");
    assert_eq!(rows(store, pairs).await, before);
    // A row of a session no table knows, which version 19 did not refuse.
    store
        .connection()
        .execute_unprepared(&orphan_pair("not-a-uuid"))
        .await
        .unwrap();
    store.migrate_up(None).await.unwrap();
    assert_eq!(kind_of(store, "session_skill").await, "view");
    let after = rows(store, pairs).await;
    assert_eq!(after[..3], before[..], "{after:?}");
    // The row kept its session, which now has a row, and got an id.
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(after[3].ends_with(" s-9 a 1 0"), "{after:?}");
    assert!(uuid::Uuid::parse_str(after[3].split(' ').next().unwrap()).is_ok());
    assert_eq!(
        rows(store, "SELECT id FROM sessions WHERE id = 's-9'").await,
        ["s-9"]
    );
    // The log does not name s-9: verify says so, and rebuild removes it.
    let report = store.verify().await.unwrap();
    assert_eq!(report.differences.len(), 1, "{:#?}", report.differences);
    assert!(
        report.differences[0].key.contains("s-9 / a"),
        "{:?}",
        report.differences
    );
    store.rebuild().await.unwrap();
    // (SQLite's rebuild writes its rows anew, with new ids, D99.)
    let without_id = |all: Vec<String>| -> Vec<String> {
        all.iter()
            .map(|r| r.split_once(' ').unwrap().1.to_owned())
            .collect()
    };
    assert_eq!(
        without_id(rows(store, pairs).await),
        without_id(before.clone())
    );
    assert!(store.verify().await.unwrap().is_clean());
    // New writes go to the table, at the key of the session's number.
    let mut inv = invocation("a", 9, true, Some(1.0));
    inv.session_id = Some(domain::SessionId::parse("s-2").unwrap());
    store.record(inv).await.unwrap();
    let s2 = "SELECT CAST(invocation_count AS TEXT) FROM session_skill_numbered t \
              JOIN sessions s ON s.num = t.session_num WHERE s.id = 's-2'";
    assert_eq!(rows(store, s2).await, ["2"]);
    assert!(store.verify().await.unwrap().is_clean());
}

/// The ids of the invocations `reader` finds for `query`, sorted.
async fn found(
    reader: &infrastructure::SkillMetricsStore,
    query: &str,
) -> Vec<domain::InvocationId> {
    let mut ids: Vec<_> = reader
        .search(query, 10)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    ids.sort();
    ids
}

/// On PostgreSQL, a second store on `store`'s database, connected after a
/// migration: a pooled connection's prepared statements still expect the
/// column types they were planned with and fail rather than plan again
/// ("cached plan must not change result type"), as in any process that
/// was running while another migrated the store.
async fn connected_anew(store: &TestStore) -> Option<infrastructure::SkillMetricsStore> {
    if store.backend() != DbBackend::Postgres {
        return None;
    }
    let mut options = infrastructure::ConnectOptions::new(
        infrastructure::DatabaseUrl::parse(store.url()).unwrap(),
    );
    // As it is: not migrated up on connecting.
    options.migrations = infrastructure::MigrationMode::Skip;
    Some(
        infrastructure::SkillMetricsStore::connect_with(options)
            .await
            .unwrap(),
    )
}

/// Version 21 (D115): SQLite's search index keeps no per-row sizes, and
/// PostgreSQL keeps `user_context` as JSON text (its search vector keeps
/// the word positions a split word's phrase needs); a prune takes its rows' entries out of the
/// index (by FTS5's `delete` with the row's own text on SQLite), and search
/// finds the same rows after a rollback and an upgrade.
async fn the_search_index_keeps_only_what_search_reads(store: &TestStore) {
    let mut ids = Vec::new();
    for (i, path) in ["ci/deploy-old", "ci/deploy-prod", "ci/deploy-prod.v2"]
        .into_iter()
        .enumerate()
    {
        let mut inv = invocation("deployer", i as i64 * 10, true, Some(1.0));
        inv.workflow_path = Some(path.into());
        let mut context = serde_json::Map::new();
        context.insert("model".into(), serde_json::json!("m-1"));
        context.insert("tokens".into(), serde_json::json!(12));
        inv.user_context = Some(context);
        ids.push(store.record(inv).await.unwrap());
    }
    // The oldest goes: its words leave the index with it.
    store.prune(tests::at(5), None).await.unwrap();
    let mut kept = ids[1..].to_vec();
    kept.sort();
    assert_eq!(found(store, "deploy").await, kept);
    assert!(found(store, "old").await.is_empty());
    let shape = match store.backend() {
        DbBackend::Postgres => {
            // A word PostgreSQL's parser splits is asked for as a phrase,
            // which needs the vector's positions (D115 keeps them).
            let mut inv = invocation("splitter", 40, true, None);
            inv.workflow_path = Some("x²y".into());
            let id = store.record(inv).await.unwrap();
            assert_eq!(found(store, "x²y").await, vec![id]);
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'skill_invocation_log' AND column_name = 'user_context'"
        }
        _ => {
            // The index's words: only the kept rows' ("old" is gone).
            let entries = "SELECT CAST(rowid AS TEXT) FROM skill_invocation_fts \
                           WHERE skill_invocation_fts MATCH 'old OR prod' ORDER BY rowid";
            assert_eq!(rows(store, entries).await, ["2", "3"]);
            store
                .connection()
                .execute_unprepared(
                    "INSERT INTO skill_invocation_fts (skill_invocation_fts) \
                     VALUES ('integrity-check')",
                )
                .await
                .unwrap();
            "SELECT CAST(COUNT(*) AS TEXT) FROM sqlite_schema \
             WHERE name = 'skill_invocation_fts_docsize'"
        }
    };
    let (after_up, before_up) = match store.backend() {
        DbBackend::Postgres => ("json", "jsonb"),
        _ => ("0", "1"),
    };
    assert_eq!(rows(store, shape).await, [after_up]);
    let contexts: Vec<_> = store
        .recent(&infrastructure::RecentFilter::default(), 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|i| i.user_context.map(serde_json::Value::Object))
        .collect();
    assert_eq!(contexts.len(), 2);
    for context in contexts {
        assert_eq!(context, serde_json::json!({"model": "m-1", "tokens": 12}));
    }

    store.migrate_down(Some(steps_down_to(20))).await.unwrap();
    let own = connected_anew(store).await;
    let reader: &infrastructure::SkillMetricsStore = own.as_ref().unwrap_or(store);
    assert_eq!(rows(store, shape).await, [before_up]);
    assert_eq!(found(reader, "deploy").await, kept);
    assert!(found(reader, "old").await.is_empty());
    store.migrate_up(None).await.unwrap();
    let own = connected_anew(store).await;
    let reader: &infrastructure::SkillMetricsStore = own.as_ref().unwrap_or(store);
    assert_eq!(rows(store, shape).await, [after_up]);
    assert_eq!(found(reader, "deploy").await, kept);
    assert_eq!(found(reader, "v2").await, vec![ids[2]]);
    assert!(reader.verify().await.unwrap().is_clean());
}

on_both_backends!(
    the_sweep_reads_each_piece_on_its_own_index,
    sessions_by_number_both_ways,
    session_skill_by_number_both_ways,
    the_search_index_keeps_only_what_search_reads,
    no_index_serves_completed_alone,
    newest_first_reads_walk_the_ascending_time_indexes_back,
    session_skill_loses_its_foreign_keys_and_keeps_its_rows,
    session_skill_by_session_uses_its_unique_index,
    export_pages_follow_an_index_in_seq_order,
    up_down_up_leaves_the_same_schema,
    data_survives_rolling_back_to_version_one_and_up_again,
    the_log_refuses_update_and_delete,
    a_word_of_the_workflow_path_finds_the_invocation,
);

on_both_backends!(shared: a_tampered_checksum_is_detected_and_named);

/// SQLite-only: the process-wide settings of decisions D29 and D66 install
/// when `tune_sqlite` keeps its contract — called before anything in the
/// process uses SQLite — and a store then works on the wrapped page cache.
/// Other tests in this binary open SQLite on parallel threads, so the check
/// runs in a process of its own, where nothing came first.
#[test]
fn tune_sqlite_installs_the_process_wide_settings_before_first_use() {
    const ALONE: &str = "SKILL_METRICS_TEST_TUNING_ALONE";
    const NAME: &str = "schema::tune_sqlite_installs_the_process_wide_settings_before_first_use";
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .expect("the test binary runs again");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("1 passed"),
            "the check did not run alone: {text}"
        );
        return;
    }
    // SAFETY: this process runs this one test, and nothing in it has used
    // SQLite yet; no other thread is started before this returns.
    #[allow(unsafe_code)]
    let tuning = unsafe { infrastructure::tune_sqlite() };
    assert!(
        tuning.page_cache,
        "page-cache wrapper not installed: {tuning:?}"
    );
    assert!(
        tuning.memstatus_off,
        "memory statistics still on: {tuning:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = TestStore::sqlite().await;
        store
            .record(invocation("tuned", 1, true, Some(1.0)))
            .await
            .unwrap();
        assert!(store.verify().await.unwrap().is_clean());
    });
}

/// A server that cannot be reached, or that refuses the login, is reported at
/// once with the driver's reason, and the password shows nowhere. (SQLite has
/// no server: a file it cannot open is named by its path.)
#[tokio::test]
async fn connection_failures_name_the_cause_and_never_the_password() {
    // The error for `url`, checked to hide its password, and its text.
    async fn failure(url: &str, password: &str) -> (StoreError, String) {
        let err = infrastructure::SkillMetricsStore::connect(url)
            .await
            .unwrap_err();
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains(password), "{shown}");
        (err, shown)
    }
    let (closed, shown) = failure("postgres://me:s3cret@127.0.0.1:1/db", "s3cret").await;
    assert!(matches!(closed, StoreError::Connect { .. }), "{shown}");
    assert!(shown.contains("refused"), "{shown}");

    let (unreadable, shown) = failure("postgres://me:s3cret@h:99999/db", "s3cret").await;
    assert!(
        matches!(unreadable, StoreError::InvalidUrl { .. }),
        "{shown}"
    );
    assert!(shown.contains("invalid port"), "{shown}");

    let (_, shown) = failure("sqlite:///no/such/dir/x.db", "s3cret").await;
    assert!(shown.contains("unable to open"), "{shown}");

    // The suite's server, when there is one, with a wrong password.
    if let Ok(url) = std::env::var(infrastructure::testing::POSTGRES_URL_VAR) {
        let mut wrong = url::Url::parse(&url).unwrap();
        wrong.set_password(Some("not-the-s3cret")).unwrap();
        let (refused, shown) = failure(wrong.as_str(), "not-the-s3cret").await;
        assert!(matches!(refused, StoreError::Connect { .. }), "{shown}");
        assert!(shown.contains("password authentication failed"), "{shown}");
    }
}
