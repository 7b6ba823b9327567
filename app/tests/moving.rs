//! Moving data: export, copy between stores and backends, backup, maintain.

use std::process::{Command, Output};

use infrastructure::testing::TestStore;
use tests::on_both_backends;

use crate::data::{metrics, ok, run, variant_one, write};

async fn backup_during_writes_verifies_and_maintain_reports(store: &TestStore) {
    let out = ok(&run(store.url(), &["maintain"]));
    assert!(out.contains("ANALYZE"), "{out}");
    let target = store.dir().map(|d| d.join("backup.db"));
    let Some(target) = target else {
        let refused = run(store.url(), &["backup", "/tmp/nope.db"]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
        return;
    };
    let writer = {
        let store: infrastructure::SkillMetricsStore = (**store).clone();
        tokio::spawn(async move {
            for i in 0..300 {
                store
                    .record(tests::invocation("busy", i, true, Some(1.0)))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let said = ok(&run(store.url(), &["backup", target.to_str().unwrap()]));
    assert!(
        said.contains("stop every writer, delete any -wal and -shm files beside the store"),
        "{said}"
    );
    writer.await.unwrap();
    let copy = format!("sqlite://{}", target.display());
    let verified = ok(&run(&copy, &["verify"]));
    assert!(verified.starts_with("ok:"), "{verified}");
    assert!(store.verify().await.unwrap().is_clean());
}

fn copy_with(url: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
    cmd.arg("copy")
        .args(args)
        .env("SKILL_METRICS_DATABASE_URL", url)
        .env_remove("SKILL_METRICS_TEST_UNSET");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn refused(out: &Output, expected: &str, secret: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(expected), "{err}");
    assert!(
        !err.contains(secret),
        "the variable's value is shown: {err}"
    );
}

async fn copy_reads_its_urls_from_the_environment(store: &TestStore) {
    let origin = TestStore::sqlite().await;
    seed(origin.url()).await;
    let original = metrics(origin.url());
    let env = [("SM_FROM", origin.url()), ("SM_TO", store.url())];
    let out = copy_with(
        origin.url(),
        &["--from-env", "SM_FROM", "--to-env", "SM_TO"],
        &env,
    );
    ok(&out);
    assert_eq!(metrics(store.url()), original, "into this backend");
    let back = TestStore::sqlite().await;
    ok(&copy_with(
        back.url(),
        &["--from-env", "SM_TO", "--to", back.url()],
        &env,
    ));
    assert_eq!(metrics(back.url()), original, "out of this backend");
    // The URL in the variable (with its password, on PostgreSQL) never
    // appears in a refusal.
    let secret = store.url();
    refused(
        &copy_with(
            secret,
            &[
                "--from-env",
                "SKILL_METRICS_TEST_UNSET",
                "--to-env",
                "SM_TO",
            ],
            &env,
        ),
        "--from-env: the environment variable SKILL_METRICS_TEST_UNSET is not set",
        secret,
    );
    refused(
        &copy_with(
            secret,
            &["--from-env", "SM_FROM", "--to-env", "SM_EMPTY"],
            &[("SM_FROM", origin.url()), ("SM_EMPTY", "")],
        ),
        "--to-env: the environment variable SM_EMPTY is empty",
        secret,
    );
    refused(
        &copy_with(
            secret,
            &[
                "--from",
                origin.url(),
                "--to-env",
                "SM_TO",
                "--to",
                "sqlite::memory:",
            ],
            &env,
        ),
        "give --to or --to-env, not both",
        secret,
    );
    refused(
        &copy_with(secret, &["--to-env", "SM_TO"], &env),
        "--from URL or --from-env VAR is required",
        secret,
    );
    assert_eq!(metrics(store.url()), original, "refusals write nothing");
}

/// A copy of a pruned store counts what the original counts: the prune's
/// balances and removed ids travel with the log (D102). A second copy into
/// the copy, pruned now, is refused before it writes anything.
async fn a_pruned_store_copies_whole(store: &TestStore) {
    seed(store.url()).await;
    let pruned = ok(&run(
        store.url(),
        &["prune", "--before", "2025-03-01T00:05:00Z"],
    ));
    assert!(pruned.contains("removed "), "{pruned}");
    let original = metrics(store.url());
    let hours = |url: &str| {
        ok(&run(
            url,
            &[
                "summary",
                "--since",
                "2025-01-01T00:00:00Z",
                "--until",
                "2025-04-01T00:00:00Z",
                "--json",
            ],
        ))
    };
    let original_range = hours(store.url());
    let target = TestStore::sqlite().await;
    let out = ok(&run(
        target.url(),
        &["copy", "--from", store.url(), "--to", target.url()],
    ));
    assert!(out.contains("pruned invocations' balances"), "{out}");
    assert_eq!(metrics(target.url()), original, "the copy lost the pruned");
    assert_eq!(hours(target.url()), original_range, "the copy's rollups");
    // Every table a prune leaves is carried whole: the removed ids (without
    // them an archive ingested back would count twice) and the three
    // balances (per session and skill too, which no metric shows).
    let left = pruned_tables(store).await;
    assert!(left.iter().all(|rows| !rows.is_empty()), "{left:?}");
    assert_eq!(
        pruned_tables(&target).await,
        left,
        "the copy's pruned tables"
    );
    let verified = ok(&run(target.url(), &["verify"]));
    assert!(verified.starts_with("ok:"), "{verified}");
    // And back onto this test's backend, into a store never pruned.
    let back = if store.url().starts_with("postgres") {
        TestStore::postgres()
            .await
            .expect("PostgreSQL, as for this test")
    } else {
        TestStore::sqlite().await
    };
    ok(&run(
        back.url(),
        &["copy", "--from", target.url(), "--to", back.url()],
    ));
    assert_eq!(metrics(back.url()), original);
    assert_eq!(
        pruned_tables(&back).await,
        left,
        "the pruned tables, copied back"
    );

    let again = run(
        target.url(),
        &["copy", "--from", store.url(), "--to", target.url()],
    );
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(err.contains("nothing was copied"), "{err}");
    assert_eq!(metrics(target.url()), original, "the refusal wrote");
}

/// What prunes left in `store`: each of the four tables' rows as text
/// (times left out, since the backends write them differently), sorted.
async fn pruned_tables(store: &TestStore) -> Vec<Vec<String>> {
    use sea_orm::ConnectionTrait as _;
    // The removed ids are 16 bytes (D112), written out as UUIDs.
    let ids = match store.backend() {
        sea_orm::DbBackend::Postgres => "SELECT CAST(id AS TEXT) AS r FROM pruned_invocations",
        _ => {
            "SELECT lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || \
             substr(hex(id), 13, 4) || '-' || substr(hex(id), 17, 4) || '-' || \
             substr(hex(id), 21, 12)) AS r FROM pruned_invocations"
        }
    };
    let queries = [
        ids,
        "SELECT skill_name || ' ' || total_invocations || ' ' || completed_invocations || ' ' \
         || duration_count || ' ' || total_duration_micros AS r FROM skill_metrics_pruned",
        "SELECT session_id || ' ' || skill_name || ' ' || invocation_count || ' ' \
         || total_duration_micros AS r FROM session_skill_pruned",
        "SELECT skill_name || ' ' || project_path || ' ' || invocations || ' ' || completed \
         || ' ' || total_duration_micros AS r FROM skill_rollups_pruned",
    ];
    let mut tables = Vec::new();
    for sql in queries {
        let found = store
            .connection()
            .query_all_raw(sea_orm::Statement::from_string(store.backend(), sql))
            .await
            .unwrap();
        let mut rows: Vec<String> = found
            .iter()
            .map(|r| r.try_get::<String>("", "r").unwrap())
            .collect();
        rows.sort();
        tables.push(rows);
    }
    tables
}

on_both_backends!(shared:
    copy_reads_its_urls_from_the_environment,
    backup_during_writes_verifies_and_maintain_reports,
    a_pruned_store_copies_whole,
);

async fn seed(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &variant_one());
    ok(&run(
        url,
        &[
            "import-legacy",
            dir.path().to_str().unwrap(),
            "--timezone",
            "UTC",
        ],
    ));
    let lines: String = (0..700)
        .map(|i| format!("{{\"skill_name\":\"k{}\",\"invoked_at\":\"2025-03-01T00:{:02}:{:02}.{:06}Z\",\"completed\":{},\"duration_seconds\":{},\"session_id\":\"s{}\",\"workflow_path\":\"a/b-{}\",\"error_type\":{}}}\n",
            i % 5, (i / 60) % 60, i % 60, i * 7, i % 6 != 0, (i % 13) as f64 * 0.7, i / 100, i % 3, if i % 9 == 0 { "\"E.x\"" } else { "null" }))
        .collect();
    let path = dir.path().join("in.jsonl");
    std::fs::write(&path, lines).unwrap();
    ok(&run(url, &["ingest", path.to_str().unwrap()]));
    ok(&run(
        url,
        &["session", "end", "s3", "--at", "2025-03-02T00:00:00Z"],
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_between_backends_give_equal_metrics() {
    let Some(pg) = TestStore::postgres().await else {
        return;
    };
    let sqlite = TestStore::sqlite().await;
    seed(sqlite.url()).await;
    let original = metrics(sqlite.url());
    ok(&run(
        sqlite.url(),
        &["copy", "--from", sqlite.url(), "--to", pg.url()],
    ));
    assert_eq!(metrics(pg.url()), original, "SQLite → PostgreSQL");
    assert!(pg.verify().await.unwrap().is_clean());
    assert!(pg.session("s3").await.unwrap().session.ended_at.is_some());
    let back = TestStore::sqlite().await;
    ok(&run(
        back.url(),
        &["copy", "--from", pg.url(), "--to", back.url()],
    ));
    assert_eq!(metrics(back.url()), original, "PostgreSQL → SQLite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_ingested_on_the_other_backend_reproduces_the_metrics() {
    let Some(pg) = TestStore::postgres().await else {
        return;
    };
    let sqlite = TestStore::sqlite().await;
    ok(&run(
        sqlite.url(),
        &[
            "record",
            "--skill",
            "x",
            "--completed",
            "--duration",
            "3",
            "--workflow",
            "w w",
            "--follow-up",
            "a.b",
        ],
    ));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.jsonl");
    let lines: String = (0..300)
        .map(|i| format!("{{\"skill_name\":\"k{}\",\"invoked_at\":\"2025-03-01T00:00:{:02}.{:06}Z\",\"completed\":{},\"duration_seconds\":{}}}\n", i % 4, i % 60, i, i % 5 != 0, i as f64 / 3.0))
        .collect();
    std::fs::write(&path, lines).unwrap();
    ok(&run(sqlite.url(), &["ingest", path.to_str().unwrap()]));
    let exported = dir.path().join("out.jsonl");
    ok(&run(
        sqlite.url(),
        &["export", "--output", exported.to_str().unwrap()],
    ));
    ok(&run(pg.url(), &["ingest", exported.to_str().unwrap()]));
    assert_eq!(metrics(pg.url()), metrics(sqlite.url()));
    let filtered = ok(&run(
        pg.url(),
        &[
            "export",
            "--skill",
            "k1",
            "--since",
            "2025-03-01T00:00:10Z",
            "--until",
            "2025-03-01T00:00:20Z",
        ],
    ));
    assert!(filtered.lines().count() > 0);
    assert!(
        filtered
            .lines()
            .all(|l| l.contains("\"skill_name\":\"k1\""))
    );
}
