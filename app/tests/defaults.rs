//! Defaults that do not surprise: where the store is, what `--help` and
//! `info` say, the demo's own store, an explicit outcome, a guarded
//! `migrate down`, a fresh summary, time zones, and the command names.

use std::path::Path;
use std::process::{Command, Output};

use infrastructure::testing::TestStore;
use serde_json::Value;
use tests::on_both_backends;

use crate::support::{cli, ok, run, text};

/// The binary with a home of its own and no store named anywhere.
fn at_home(home: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
    command
        .env_remove("SKILL_METRICS_DATABASE_URL")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .current_dir(home);
    run(command, args, None)
}

#[test]
fn without_a_url_the_store_is_a_file_in_the_data_folder() {
    let home = tempfile::tempdir().unwrap();
    let expected = home
        .path()
        .join(".local/share/skill-metrics/skill-metrics.db");
    let help = ok(&at_home(home.path(), &["--help"]));
    assert!(help.contains("Store in use:"), "{help}");
    assert!(help.contains(&format!(
        "{} (the default, not created yet)",
        expected.display()
    )));
    ok(&at_home(
        home.path(),
        &["record", "--skill", "a", "--completed", "--duration", "2"],
    ));
    assert!(expected.is_file(), "no store at {}", expected.display());
    assert!(
        !home.path().join("skill-metrics.db").exists(),
        "nothing is written where the command runs"
    );
    let info = ok(&at_home(home.path(), &["info"]));
    let file = format!("file            {}", expected.display());
    let version = format!("schema version  {}", migration::all().len());
    for part in [
        file.as_str(),
        "invocations     1",
        "skills          1",
        version.as_str(),
    ] {
        assert!(info.contains(part), "{part:?} missing in\n{info}");
    }
    let help = ok(&at_home(home.path(), &["--help"]));
    assert!(help.contains("(the default, "), "{help}");
    assert!(!help.contains("not created yet"), "{help}");
    // The demo leaves the default store alone and says where it writes,
    // also when the environment names the real store.
    let demo = ok(&at_home(home.path(), &["demo"]));
    assert!(demo.contains("demo.db (the demo's own file"), "{demo}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
    command
        .env(
            "SKILL_METRICS_DATABASE_URL",
            format!("sqlite://{}", expected.display()),
        )
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home.path());
    let demo = ok(&run(command, &["demo"], None));
    assert!(demo.contains("demo.db (the demo's own file"), "{demo}");
    let info: Value =
        serde_json::from_str(&ok(&at_home(home.path(), &["info", "--json"]))).unwrap();
    assert_eq!(info["invocations"], 1);
    assert_eq!(info["path"], expected.display().to_string());
}

async fn info_names_the_store_and_its_counts(store: &TestStore) {
    ok(&cli(
        store,
        &[
            "record",
            "--skill",
            "a",
            "--error",
            "Timeout",
            "--session",
            "s",
        ],
        None,
    ));
    let info: Value = serde_json::from_str(&ok(&cli(store, &["info", "--json"], None))).unwrap();
    assert_eq!(info["invocations"], 1);
    assert_eq!(info["skills"], 1);
    assert_eq!(info["sessions"], 1);
    assert!(info["size_bytes"].as_u64().unwrap() > 0);
    assert!(
        !info["url"].as_str().unwrap().contains(":postgres@"),
        "{info}"
    );
    // The space each table and index takes: the log, its indexes, and a
    // total line per invocation in the table form.
    let both: Value =
        serde_json::from_str(&ok(&cli(store, &["info", "--storage", "--json"], None))).unwrap();
    assert_eq!(both["info"]["invocations"], 1);
    let storage = both["storage"].as_array().unwrap();
    let find = |name: &str| {
        storage
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing in {storage:?}"))
    };
    let log = find("skill_invocation_log");
    assert_eq!(
        (log["kind"].as_str(), log["table"].as_str()),
        (Some("table"), Some("skill_invocation_log"))
    );
    assert!(log["bytes"].as_u64().unwrap() > 0);
    let index = find("idx_skill_invocation_skill_time");
    assert_eq!(
        (index["kind"].as_str(), index["table"].as_str()),
        (Some("index"), Some("skill_invocation_log"))
    );
    assert!(index["bytes"].as_u64().unwrap() > 0);
    let text = ok(&cli(store, &["info", "--storage"], None));
    assert!(
        text.contains("per invocation") && text.contains("(all)"),
        "{text}"
    );
    let metrics: Value =
        serde_json::from_str(&ok(&cli(store, &["metrics", "--json"], None))).unwrap();
    assert_eq!(metrics[0]["abandoned_invocations"], 1);
    assert_eq!(metrics[0]["common_errors"]["Timeout"], 1);
    // The demo writes into a store named on its command line, and says so
    // (the environment's URL, the user's real store, it does not follow).
    let demo = ok(&cli(store, &["demo", "--database-url", store.url()], None));
    assert!(
        demo.contains("demo store: ") && demo.contains("(as given)"),
        "{demo}"
    );
}

async fn migrate_down_asks_before_dropping_data(store: &TestStore) {
    ok(&cli(
        store,
        &["record", "--skill", "keep", "--completed"],
        None,
    ));
    let refused = cli(store, &["migrate", "down"], None);
    assert_eq!(refused.status.code(), Some(1));
    let why = text(&refused.stderr);
    assert!(
        why.contains("1 invocations") && why.contains("--yes"),
        "{why}"
    );
    let status = ok(&cli(store, &["migrate", "status"], None));
    assert!(
        !status.contains("pending"),
        "nothing was rolled back:\n{status}"
    );
    ok(&cli(store, &["migrate", "down", "--yes"], None));
    let status = ok(&cli(store, &["migrate", "status"], None));
    assert!(status.contains("pending"), "{status}");
}

async fn summary_is_fresh_after_a_write(store: &TestStore) {
    ok(&cli(
        store,
        &["record", "--skill", "a", "--completed"],
        None,
    ));
    let first: Value =
        serde_json::from_str(&ok(&cli(store, &["summary", "--json"], None))).unwrap();
    assert_eq!(first["total_invocations"], 1);
    ok(&cli(
        store,
        &["record", "--skill", "b", "--abandoned"],
        None,
    ));
    let stored = ok(&cli(store, &["summary", "--stored"], None));
    assert!(
        stored.contains("invocations          1") && stored.contains("s old"),
        "{stored}"
    );
    let fresh = ok(&cli(store, &["summary"], None));
    assert!(fresh.contains("invocations          2"), "{fresh}");
    assert!(fresh.contains("refreshed now"), "{fresh}");
    let again = ok(&cli(store, &["summary"], None));
    assert!(again.contains("current: nothing written since"), "{again}");
}

async fn timeline_buckets_in_a_time_zone(store: &TestStore) {
    let events = concat!(
        r#"{"skill_name":"tz","invoked_at":"2025-02-10T22:30:00Z","completed":true,"duration_seconds":1}"#,
        "\n",
        r#"{"skill_name":"tz","invoked_at":"2025-02-10T23:30:00Z","completed":true,"duration_seconds":3}"#,
        "\n",
        r#"{"skill_name":"tz","invoked_at":"2025-03-30T00:30:00Z","completed":false}"#,
        "\n",
    );
    ok(&cli(store, &["ingest", "-"], Some(events.as_bytes())));
    let starts = |args: &[&str]| -> Vec<String> {
        let out: Value = serde_json::from_str(&ok(&cli(store, args, None))).unwrap();
        out.as_array()
            .unwrap()
            .iter()
            .map(|b| {
                format!(
                    "{} {}",
                    b["bucket_start"].as_str().unwrap(),
                    b["invocations"]
                )
            })
            .collect()
    };
    let utc = starts(&["timeline", "tz", "--json"]);
    assert_eq!(utc, ["2025-02-10T00:00:00Z 2", "2025-03-30T00:00:00Z 1"]);
    // 23:30Z is already the 11th in Berlin (UTC+1); on 30 March the day
    // began before the clock change, still at UTC+1.
    let berlin = starts(&["timeline", "tz", "--json", "--tz", "Europe/Berlin"]);
    assert_eq!(
        berlin,
        [
            "2025-02-09T23:00:00Z 1",
            "2025-02-10T23:00:00Z 1",
            "2025-03-29T23:00:00Z 1"
        ]
    );
    // When the clock goes back, 02:30 comes twice: two hours, two buckets.
    let twice = concat!(
        r#"{"skill_name":"back","invoked_at":"2025-10-26T00:30:00Z","completed":true}"#,
        "\n",
        r#"{"skill_name":"back","invoked_at":"2025-10-26T01:30:00Z","completed":true}"#,
        "\n",
    );
    ok(&cli(store, &["ingest", "-"], Some(twice.as_bytes())));
    let hours = starts(&[
        "timeline",
        "back",
        "--json",
        "--bucket",
        "hour",
        "--tz",
        "Europe/Berlin",
    ]);
    assert_eq!(hours, ["2025-10-26T00:00:00Z 1", "2025-10-26T01:00:00Z 1"]);
    let india = starts(&[
        "timeline",
        "back",
        "--json",
        "--bucket",
        "hour",
        "--tz",
        "Asia/Kolkata",
    ]);
    assert_eq!(india, ["2025-10-26T00:30:00Z 1", "2025-10-26T01:30:00Z 1"]);
    let table = ok(&cli(
        store,
        &["timeline", "tz", "--tz", "Europe/Berlin"],
        None,
    ));
    assert!(table.contains("2025-02-11 00:00 CET"), "{table}");
    let bad = cli(store, &["timeline", "tz", "--tz", "Mars/Olympus"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("IANA time zone"),
        "{}",
        text(&bad.stderr)
    );
}

async fn new_command_names_and_old_aliases_agree(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("skill_metrics.json");
    std::fs::write(
        &legacy,
        r#"{"invocations":[{"skill_name":"old","invoked_at":"2025-01-01T10:00:00+00:00","completed":true,"duration_seconds":4.0}],"skills":{}}"#,
    )
    .unwrap();
    let path = legacy.to_str().unwrap();
    let new = ok(&cli(store, &["import", "legacy", path, "--dry-run"], None));
    let old = ok(&cli(store, &["import-legacy", path, "--dry-run"], None));
    assert_eq!(new, old);
    let help = ok(&cli(store, &["--help"], None));
    assert!(
        help.contains("import") && !help.contains("import-legacy"),
        "{help}"
    );
    ok(&cli(store, &["import", "legacy", path], None));
    let metrics: Value =
        serde_json::from_str(&ok(&cli(store, &["metrics", "old", "--json"], None))).unwrap();
    assert_eq!(metrics[0]["total_invocations"], 1);
    // `session show ID` and the shorthand `session ID` print the same.
    ok(&cli(
        store,
        &["record", "--skill", "s", "--completed", "--session", "s-9"],
        None,
    ));
    let shown = ok(&cli(store, &["session", "show", "s-9", "--json"], None));
    assert_eq!(shown, ok(&cli(store, &["session", "s-9", "--json"], None)));
    ok(&cli(
        store,
        &["session", "end", "s-9", "--at", "2030-01-01T00:00:00Z"],
        None,
    ));
    let ended: Value = serde_json::from_str(&ok(&cli(
        store,
        &["session", "show", "s-9", "--json"],
        None,
    )))
    .unwrap();
    assert_eq!(ended["ended_at"], "2030-01-01T00:00:00.000000Z");
    let missing = cli(store, &["session", "show", "nope"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("not found"),
        "{}",
        text(&missing.stderr)
    );
}

on_both_backends!(
    shared: info_names_the_store_and_its_counts,
    migrate_down_asks_before_dropping_data,
    summary_is_fresh_after_a_write,
    timeline_buckets_in_a_time_zone,
    new_command_names_and_old_aliases_agree,
);
