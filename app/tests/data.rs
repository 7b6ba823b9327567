//! The legacy JSON file: figures, twins, re-imports, balances, time zones.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use domain::SkillAggregate;

use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::{counts, on_both_backends};

pub(crate) fn run(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(args)
        .env("SKILL_METRICS_DATABASE_URL", url)
        .output()
        .expect("the binary runs")
}

pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn metrics(url: &str) -> Value {
    let mut v: Value = serde_json::from_str(&ok(&run(url, &["metrics", "--json"]))).unwrap();
    for row in v.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("last_aggregated_at");
    }
    v
}

pub(crate) fn variant_one() -> Value {
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

pub(crate) fn write(dir: &Path, value: &Value) -> std::path::PathBuf {
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

on_both_backends!(shared:
    a_copy_of_a_legacy_file_counts_its_balance_once,
    a_balance_keyed_by_path_is_rekeyed_on_reimport,
    naive_times_at_clock_changes_resolve_as_d21_says,
    variant_one_matches_hand_computed_figures,
    variant_two_keeps_its_extra_fields_and_twins,
    reimporting_and_appending_add_only_the_new,
    corrupt_files_write_nothing,
);
