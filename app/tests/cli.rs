//! The `skill-metrics` binary as users run it: real processes, both backends.

use std::process::{Command, Stdio};

use infrastructure::testing::TestStore;
use sea_orm::{ConnectionTrait, Statement};
use tests::on_both_backends;

use crate::support::{cli, text};

async fn count(store: &TestStore, table: &str) -> i64 {
    store
        .connection()
        .query_one_raw(Statement::from_string(
            store.backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"skill_name\":\"{}\",\"invoked_at\":\"2025-02-10T12:{:02}:{:02}.{:06}Z\",\"completed\":{},\"duration_seconds\":{},\"session_id\":\"{prefix}-{}\",\"workflow_path\":\"path/{}\",\"follow_up_actions\":[\"git commit\"]}}\n",
                ["alpha", "beta", "gamma"][i % 3],
                (i / 60) % 60,
                i % 60,
                i,
                i % 7 != 0,
                (i % 100) as f64 / 4.0,
                i / 50,
                i % 4
            )
        })
        .collect()
}

async fn record_prints_the_new_id(store: &TestStore) {
    let out = cli(
        store,
        &[
            "record",
            "--skill",
            "crackerjack-run",
            "--completed",
            "--duration",
            "2.5",
            "--follow-up",
            "git commit",
            "--context",
            "{\"k\":1}",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(
        store.metrics(&["crackerjack-run"]).await.unwrap()[0].completed_invocations,
        1
    );
    let again = cli(
        store,
        &[
            "record",
            "--skill",
            "crackerjack-run",
            "--completed",
            "--id",
            &id,
        ],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already recorded"),
        "{}",
        text(&again.stderr)
    );
}

async fn ingesting_twice_adds_nothing_the_second_time(store: &TestStore) {
    let file = lines("twice", 600);
    let out = cli(
        store,
        &["ingest", "-", "--batch-size", "100"],
        Some(file.as_bytes()),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("inserted 600, duplicates 0, rejected 0"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(store, &["ingest", "-"], Some(file.as_bytes()));
    assert!(
        text(&out.stdout).contains("inserted 0, duplicates 600, rejected 0"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(count(store, "skill_invocation").await, 600);
    let verify = cli(store, &["verify"], None);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
}

async fn bad_input_is_named_and_nothing_is_written(store: &TestStore) {
    let long_name = "x".repeat(10_000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"{\"skill_name\":\"a\",\"duration_seconds\":NaN}\n".to_vec(),
            "line 1: invalid line: is not valid JSON",
        ),
        (
            b"{\"skill_name\":\"a\",\"duration_seconds\":1e999}\n".to_vec(),
            "line 1: invalid line",
        ),
        (
            b"{\"skill_name\":\"a\",\"duration_seconds\":-1}\n".to_vec(),
            "invalid duration_seconds",
        ),
        (
            b"{\"skill_name\":\"\"}\n".to_vec(),
            "invalid skill_name: must not be empty",
        ),
        (
            format!("{{\"skill_name\":\"{long_name}\"}}\n").into_bytes(),
            "invalid skill_name: is 10000 characters",
        ),
        (
            b"{\"skill_name\":\"a\\u0007b\"}\n".to_vec(),
            "control character",
        ),
        (b"{\"skill_name\":\"a\xff\"}\n".to_vec(), "not valid UTF-8"),
        (
            b"{\"skill_name\":\"a\",\"completed\":\"yes\"}\n".to_vec(),
            "invalid completed: must be true or false",
        ),
        (
            b"{\"skill_name\":\"a\",\"invoked_at\":\"2025-02-10 noon\"}\n".to_vec(),
            "invalid invoked_at",
        ),
        (
            b"{\"skill_name\":\"a\",\"invoked_at\":\"2025-02-10T12:00:00\"}\n".to_vec(),
            "has no UTC offset",
        ),
        (
            b"{\"skill_name\":\"a\",\"user_context\":[1,2]}\n".to_vec(),
            "invalid user_context: must be a JSON object",
        ),
        (
            format!(
                "{{\"skill_name\":\"a\",\"x\":\"{}\"}}\n",
                "y".repeat(10 * 1024 * 1024)
            )
            .into_bytes(),
            "line 1: invalid line: is longer than",
        ),
        (
            b"{\"skill_name\":\"a\",\"dur".to_vec(),
            "line 1: invalid line: is not valid JSON",
        ),
    ];
    for (input, expected) in cases {
        // A good line first: strict mode must not write it either.
        let mut file = b"{\"skill_name\":\"good\",\"completed\":true}\n".to_vec();
        file.extend_from_slice(&input);
        let out = cli(store, &["ingest", "-"], Some(&file));
        let stderr = text(&out.stderr).replace("line 2:", "line 1:");
        assert_eq!(out.status.code(), Some(1), "{expected}: {stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    for (args, expected) in [
        (vec!["--duration", "NaN"], "invalid duration_seconds"),
        (vec!["--duration", "inf"], "invalid duration_seconds"),
        (vec!["--duration", "-3"], "is negative"),
        (vec!["--context", "[1]"], "invalid --context"),
        (vec!["--at", "yesterday"], "invalid --at"),
    ] {
        let mut all = vec!["record", "--skill", "a", "--abandoned"];
        all.extend(args);
        let out = cli(store, &all, None);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains(expected),
            "{expected}: {}",
            text(&out.stderr)
        );
    }
    let out = cli(store, &["record", "--skill", "", "--completed"], None);
    assert_eq!(out.status.code(), Some(1));
    // No outcome: refused, naming the three ways to give one.
    let out = cli(store, &["record", "--skill", "a"], None);
    assert_eq!(out.status.code(), Some(2));
    for flag in ["--completed", "--abandoned", "--error"] {
        assert!(text(&out.stderr).contains(flag), "{}", text(&out.stderr));
    }
    let both = cli(
        store,
        &["record", "--skill", "a", "--completed", "--error", "E"],
        None,
    );
    assert_eq!(both.status.code(), Some(2));
    assert_eq!(count(store, "skill_invocation").await, 0);
    assert_eq!(count(store, "skill_metrics").await, 0);
    // Abandoned, and why: the two flags agree.
    let why = cli(
        store,
        &["record", "--skill", "w", "--abandoned", "--error", "E"],
        None,
    );
    assert!(why.status.success(), "{}", text(&why.stderr));
    assert_eq!(count(store, "skill_invocation").await, 1);
}

async fn skip_invalid_writes_the_valid_lines(store: &TestStore) {
    let file = "{\"skill_name\":\"a\",\"completed\":true}\nnot json\n{\"skill_name\":\"b\"}\n";
    let out = cli(
        store,
        &["ingest", "-", "--skip-invalid"],
        Some(file.as_bytes()),
    );
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("line 2:"));
    assert!(
        text(&out.stdout).contains("inserted 2, duplicates 0, rejected 1"),
        "{}",
        text(&out.stdout)
    );
}

async fn four_processes_writing_at_once_lose_nothing(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut children = Vec::new();
    for p in 0..4 {
        let path = dir.path().join(format!("w{p}.jsonl"));
        std::fs::write(&path, lines(&format!("proc{p}"), 1500)).unwrap();
        children.push(
            Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
                .args(["ingest", path.to_str().unwrap(), "--batch-size", "25"])
                .env("SKILL_METRICS_DATABASE_URL", store.url())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for _ in 0..20 {
        children.push(
            Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
                .args([
                    "record",
                    "--skill",
                    "alpha",
                    "--completed",
                    "--duration",
                    "1",
                    "--session",
                    "solo",
                ])
                .env("SKILL_METRICS_DATABASE_URL", store.url())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("locked"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(store, "skill_invocation").await, 4 * 1500 + 20);
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
}

async fn a_killed_ingest_leaves_a_consistent_store_and_a_rerun_completes_it(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let total = 60_000;
    std::fs::write(&path, lines("kill", total)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(["ingest", path.to_str().unwrap(), "--batch-size", "200"])
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some batches have committed and before it can finish.
    let mut seen = 0;
    for _ in 0..600 {
        seen = count(store, "skill_invocation").await;
        if seen >= 1000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count(store, "skill_invocation").await;
    assert!(
        seen >= 1000 && (partial as usize) < total,
        "killed too late or too early: {partial}"
    );
    let report = store.verify().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.differences);
    let out = cli(store, &["ingest", path.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(count(store, "skill_invocation").await as usize, total);
    assert!(store.verify().await.unwrap().is_clean());
}

on_both_backends!(shared:
    record_prints_the_new_id,
    ingesting_twice_adds_nothing_the_second_time,
    bad_input_is_named_and_nothing_is_written,
    skip_invalid_writes_the_valid_lines,
    four_processes_writing_at_once_lose_nothing,
    a_killed_ingest_leaves_a_consistent_store_and_a_rerun_completes_it,
);

async fn json_output_is_keyed_by_column_names(store: &TestStore) {
    let out = cli(
        store,
        &[
            "record",
            "--skill",
            "a.b c",
            "--completed",
            "--duration",
            "2",
            "--workflow",
            "w",
            "--session",
            "s",
        ],
        None,
    );
    assert!(out.status.success());
    let metrics: serde_json::Value =
        serde_json::from_slice(&cli(store, &["metrics", "--json"], None).stdout).unwrap();
    let row = &metrics[0];
    for key in [
        "skill_name",
        "total_invocations",
        "completed_invocations",
        "abandoned_invocations",
        "total_duration_seconds",
        "min_duration_seconds",
        "max_duration_seconds",
        "p50_duration_seconds",
        "p95_duration_seconds",
        "p99_duration_seconds",
        "workflow_paths",
        "common_errors",
        "follow_up_actions",
        "first_invoked",
        "last_invoked",
        "completion_rate",
        "avg_duration_seconds",
        "schema_version",
        "last_aggregated_at",
        "success_rate",
    ] {
        assert!(row.get(key).is_some(), "missing {key} in {row}");
    }
    assert_eq!(row["workflow_paths"], serde_json::json!({"w": 1}));
    assert!(row["first_invoked"].as_str().unwrap().ends_with('Z'));
    let summary: serde_json::Value =
        serde_json::from_slice(&cli(store, &["summary", "--refresh", "--json"], None).stdout)
            .unwrap();
    assert_eq!(summary["most_used_skill"], "a.b c");
    assert_eq!(summary["top_workflow_paths"], serde_json::json!({"w": 1}));
    let recent: serde_json::Value =
        serde_json::from_slice(&cli(store, &["recent", "--json"], None).stdout).unwrap();
    assert_eq!(recent[0]["skill_name"], "a.b c");
    assert!(recent[0]["id"].is_string());
    let unknown = cli(store, &["metrics", "nope"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("unknown skill: \"nope\""));
    let partly = cli(store, &["metrics", "nope", "a.b c"], None);
    assert_eq!(partly.status.code(), Some(0));
    let session = cli(store, &["session", "end", "s"], None);
    assert!(session.status.success(), "{}", text(&session.stderr));
    let view: serde_json::Value =
        serde_json::from_slice(&cli(store, &["session", "s", "--json"], None).stdout).unwrap();
    assert!(view["ended_at"].is_string());
    assert_eq!(view["skills"][0]["invocation_count"], 1);
}

on_both_backends!(shared: json_output_is_keyed_by_column_names);
