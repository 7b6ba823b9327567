//! Data in and out: legacy import, export, copy, backup, maintenance.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use domain::SkillAggregate;

use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::{counts, on_both_backends};

fn run(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(args)
        .env("SKILL_METRICS_DATABASE_URL", url)
        .output()
        .expect("the binary runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metrics(url: &str) -> Value {
    let mut v: Value = serde_json::from_str(&ok(&run(url, &["metrics", "--json"]))).unwrap();
    for row in v.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("last_aggregated_at");
    }
    v
}

fn variant_one() -> Value {
    json!({
      "invocations": [
        {"skill_name": "crackerjack-run", "invoked_at": "2025-02-10T12:34:56.120000", "workflow_path": "daily",
         "completed": true, "duration_seconds": 165.3, "follow_up_actions": ["git commit"], "error_type": null},
        {"skill_name": "crackerjack-run", "invoked_at": "2025-02-10T13:00:00.500000", "workflow_path": null,
         "completed": false, "duration_seconds": 4.2, "follow_up_actions": [], "error_type": "TimeoutError"},
        {"skill_name": "session-checkpoint", "invoked_at": "2025-02-10T13:05:00", "workflow_path": "quick",
         "completed": false, "duration_seconds": null, "follow_up_actions": [], "error_type": null, "surprise": {"x": 1}}
      ],
      "skills": {
        "crackerjack-run": {"skill_name": "crackerjack-run", "total_invocations": 58, "completed_invocations": 50,
          "abandoned_invocations": 8, "total_duration_seconds": 5165.3, "workflow_paths": {"daily": 40},
          "common_errors": {"TimeoutError": 3}, "follow_up_actions": {"git commit": 10},
          "first_invoked": "2025-01-10T12:34:56.120000", "last_invoked": "2025-02-10T13:00:00.500000"}
      },
      "last_updated": "2025-02-10T13:05:04.700000",
      "unknown_top_level": true
    })
}

fn write(dir: &Path, value: &Value) -> std::path::PathBuf {
    let path = dir.join(".session-buddy/skill_metrics.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

async fn variant_one_matches_hand_computed_figures(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &variant_one());
    let url = store.url();
    let dry = ok(&run(
        url,
        &[
            "import-legacy",
            dir.path().to_str().unwrap(),
            "--dry-run",
            "--timezone",
            "Europe/Berlin",
        ],
    ));
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "a dry run writes nothing"
    );
    let report = ok(&run(
        url,
        &[
            "import-legacy",
            dir.path().to_str().unwrap(),
            "--timezone",
            "Europe/Berlin",
        ],
    ));
    assert!(report.contains("inserted 3, already present 0"), "{report}");
    let m = metrics(url);
    let cj = &m[0];
    assert_eq!(cj["skill_name"], "crackerjack-run");
    assert_eq!(
        (
            cj["total_invocations"].as_i64(),
            cj["completed_invocations"].as_i64(),
            cj["abandoned_invocations"].as_i64()
        ),
        (Some(58), Some(50), Some(8))
    );
    assert!((cj["total_duration_seconds"].as_f64().unwrap() - 5165.3).abs() < 1e-9);
    assert!((cj["avg_duration_seconds"].as_f64().unwrap() - 5165.3 / 50.0).abs() < 1e-9);
    assert_eq!(cj["workflow_paths"], json!({"daily": 40}));
    assert_eq!(cj["common_errors"], json!({"TimeoutError": 3}));
    assert_eq!(cj["follow_up_actions"], json!({"git commit": 10}));
    // Naive times were Berlin time (UTC+1 in February).
    assert_eq!(cj["first_invoked"], "2025-01-10T11:34:56.120000Z");
    assert_eq!(cj["last_invoked"], "2025-02-10T12:00:00.500000Z");
    let sc = &m[1];
    assert_eq!(
        (
            sc["total_invocations"].as_i64(),
            sc["abandoned_invocations"].as_i64()
        ),
        (Some(1), Some(1)),
        "pending becomes abandoned"
    );
    let recent: Value = serde_json::from_str(&ok(&run(
        url,
        &["recent", "--skill", "session-checkpoint", "--json"],
    )))
    .unwrap();
    assert_eq!(recent[0]["user_context"]["legacy_pending"], true);
    assert_eq!(
        recent[0]["user_context"]["legacy_extra"]["surprise"]["x"],
        1
    );
    assert!(store.verify().await.unwrap().is_clean());
    store.rebuild().await.unwrap();
    assert_eq!(metrics(url), m, "rebuild keeps the opening balance");
}

async fn variant_two_keeps_its_extra_fields_and_twins(store: &TestStore) {
    let twin = json!({"skill_name": "s", "invoked_at": "2025-02-10T10:00:00", "workflow_path": "w", "completed": true,
        "duration_seconds": 2.0, "follow_up_actions": ["a b", "a b"], "error_type": null, "session_id": "sess-9",
        "user_query": "how?", "alternatives_considered": ["x", "y"], "selection_rank": 2});
    let file = json!({"invocations": [twin, twin], "skills": {"s": {"total_invocations": 2, "completed_invocations": 2,
        "abandoned_invocations": 0, "total_duration_seconds": 4.0, "avg_selection_rank": 2.0,
        "recommendation_success_rate": null}}});
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &file);
    ok(&run(
        store.url(),
        &["import-legacy", path.to_str().unwrap(), "--timezone", "UTC"],
    ));
    let m = &store.metrics(&["s"]).await.unwrap()[0];
    assert_eq!(
        (m.total_invocations, m.completed_invocations),
        (2, 2),
        "identical twins both land, no balance"
    );
    assert_eq!(m.follow_up_actions, counts([("a b", 4)]));
    let view = store.session("sess-9").await.unwrap();
    assert_eq!(view.invocations.len(), 2);
    let ctx = view.invocations[0].user_context.clone().unwrap();
    assert_eq!(ctx["user_query"], "how?");
    assert_eq!(ctx["alternatives_considered"], json!(["x", "y"]));
    assert_eq!(ctx["selection_rank"], 2);
}

async fn reimporting_and_appending_add_only_the_new(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut file = variant_one();
    write(dir.path(), &file);
    let folder = dir.path().to_str().unwrap();
    ok(&run(
        store.url(),
        &["import-legacy", folder, "--timezone", "UTC"],
    ));
    let again = ok(&run(
        store.url(),
        &["import-legacy", folder, "--timezone", "UTC"],
    ));
    assert!(again.contains("inserted 0, already present 3"), "{again}");
    file["invocations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"skill_name": "crackerjack-run",
        "invoked_at": "2025-02-11T09:00:00", "completed": true, "duration_seconds": 10.0}));
    file["skills"]["crackerjack-run"]["total_invocations"] = json!(59);
    file["skills"]["crackerjack-run"]["completed_invocations"] = json!(51);
    file["skills"]["crackerjack-run"]["total_duration_seconds"] = json!(5175.3);
    write(dir.path(), &file);
    let appended = ok(&run(
        store.url(),
        &["import-legacy", folder, "--timezone", "UTC"],
    ));
    assert!(
        appended.contains("inserted 1, already present 3"),
        "{appended}"
    );
    let m = &store.metrics(&["crackerjack-run"]).await.unwrap()[0];
    assert_eq!((m.total_invocations, m.completed_invocations), (59, 51));
    assert!(store.verify().await.unwrap().is_clean());
}

async fn corrupt_files_write_nothing(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string(&variant_one()).unwrap();
    let bad_value = good.replacen("\"session-checkpoint\"", "5", 1);
    for (name, body, expected) in [
        (
            "truncated.json",
            &good[..good.len() / 2],
            "corrupt or truncated",
        ),
        ("empty.json", "", "is empty"),
        ("list.json", "[1, 2]", "corrupt or truncated"),
        (
            "badvalue.json",
            bad_value.as_str(),
            "invocation #2: invalid skill_name",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = run(
            store.url(),
            &["import-legacy", path.to_str().unwrap(), "--timezone", "UTC"],
        );
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{name}: {err}");
    }
    assert!(store.metrics(&[]).await.unwrap().is_empty());
    assert!(
        store
            .recent(&Default::default(), 1)
            .await
            .unwrap()
            .is_empty()
    );
}

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

fn crackerjack_totals(url: &str) -> (i64, i64, i64, f64) {
    let m = metrics(url);
    let cj = m
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["skill_name"] == "crackerjack-run")
        .unwrap();
    (
        cj["total_invocations"].as_i64().unwrap(),
        cj["completed_invocations"].as_i64().unwrap(),
        cj["abandoned_invocations"].as_i64().unwrap(),
        cj["total_duration_seconds"].as_f64().unwrap(),
    )
}

async fn a_copy_of_a_legacy_file_counts_its_balance_once(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let a = write(&dir.path().join("a"), &variant_one());
    let b = write(&dir.path().join("b"), &variant_one());
    let import = |path: &Path| {
        ok(&run(
            store.url(),
            &["import-legacy", path.to_str().unwrap(), "--timezone", "UTC"],
        ))
    };
    import(&a);
    let again = import(&b);
    assert!(again.contains("inserted 0, already present 3"), "{again}");
    let (total, completed, abandoned, seconds) = crackerjack_totals(store.url());
    assert_eq!(
        (total, completed, abandoned),
        (58, 50, 8),
        "the skills section's counts, not doubled"
    );
    assert!((seconds - 5165.3).abs() < 1e-6, "{seconds}");
    // A later, longer copy: one more invocation, counted in `skills` too.
    let mut longer = variant_one();
    longer["invocations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"skill_name": "crackerjack-run",
        "invoked_at": "2025-02-11T09:00:00", "completed": true, "duration_seconds": 10.0}));
    longer["skills"]["crackerjack-run"]["total_invocations"] = json!(59);
    longer["skills"]["crackerjack-run"]["completed_invocations"] = json!(51);
    longer["skills"]["crackerjack-run"]["total_duration_seconds"] = json!(5175.3);
    write(&dir.path().join("b"), &longer);
    let appended = import(&b);
    assert!(
        appended.contains("inserted 1, already present 3"),
        "{appended}"
    );
    let (total, completed, abandoned, seconds) = crackerjack_totals(store.url());
    assert_eq!((total, completed, abandoned), (59, 51, 8));
    assert!((seconds - 5175.3).abs() < 1e-6, "{seconds}");
    // The older, shorter copy again: its balance is the same.
    import(&a);
    assert_eq!(crackerjack_totals(store.url()).0, 59);
    assert!(store.verify().await.unwrap().is_clean());
}

async fn a_balance_keyed_by_path_is_rekeyed_on_reimport(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &variant_one());
    let import = || {
        let out = run(
            store.url(),
            &["import-legacy", path.to_str().unwrap(), "--timezone", "UTC"],
        );
        ok(&out);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    import();
    // Make the store look as an older version left it: the balance keyed by
    // the file's canonical path, plus one of a file that has since moved.
    let rows = store.balances().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (skill, key, balance) = rows.into_iter().next().unwrap();
    assert!(key.starts_with("legacy:"), "{key}");
    let old_key = std::fs::canonicalize(&path)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut by_path: BTreeMap<String, SkillAggregate> = BTreeMap::new();
    by_path.insert(skill, balance);
    store.put_balances(&old_key, by_path).await.unwrap();
    store.put_balances(&key, BTreeMap::new()).await.unwrap();
    let moved = BTreeMap::from([(
        "elsewhere".to_owned(),
        SkillAggregate {
            total: 1,
            abandoned: 1,
            ..Default::default()
        },
    )]);
    store
        .put_balances("/nowhere/.session-buddy/skill_metrics.json", moved)
        .await
        .unwrap();
    assert_eq!(crackerjack_totals(store.url()).0, 58);
    let note = import();
    assert_eq!(
        crackerjack_totals(store.url()).0,
        58,
        "the path-keyed balance is replaced, not added to"
    );
    let sources: Vec<String> = store
        .balances()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, source, _)| source)
        .collect();
    assert!(!sources.contains(&old_key), "{sources:?}");
    assert!(sources.contains(&key), "{sources:?}");
    assert!(
        note.contains("keyed by file path remain for: /nowhere/"),
        "{note}"
    );
    assert!(store.verify().await.unwrap().is_clean());
}

async fn naive_times_at_clock_changes_resolve_as_d21_says(store: &TestStore) {
    let file = json!({"invocations": [
        {"skill_name": "spring", "invoked_at": "2025-03-30T02:30:00", "completed": true, "duration_seconds": 1.0},
        {"skill_name": "autumn", "invoked_at": "2025-10-26T02:30:00", "completed": true, "duration_seconds": 1.0}
    ]});
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &file);
    ok(&run(
        store.url(),
        &[
            "import-legacy",
            path.to_str().unwrap(),
            "--timezone",
            "Europe/Berlin",
        ],
    ));
    let m = metrics(store.url());
    let first = |skill: &str| {
        m.as_array()
            .unwrap()
            .iter()
            .find(|row| row["skill_name"] == skill)
            .unwrap()["first_invoked"]
            .clone()
    };
    // In the spring gap: the offset from before it (+01:00).
    assert_eq!(first("spring"), "2025-03-30T01:30:00.000000Z");
    // In the autumn overlap: the earlier instant (+02:00).
    assert_eq!(first("autumn"), "2025-10-26T00:30:00.000000Z");
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

on_both_backends!(shared:
    a_copy_of_a_legacy_file_counts_its_balance_once,
    a_balance_keyed_by_path_is_rekeyed_on_reimport,
    naive_times_at_clock_changes_resolve_as_d21_says,
    copy_reads_its_urls_from_the_environment,
    variant_one_matches_hand_computed_figures,
    variant_two_keeps_its_extra_fields_and_twins,
    reimporting_and_appending_add_only_the_new,
    corrupt_files_write_nothing,
    backup_during_writes_verifies_and_maintain_reports,
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
