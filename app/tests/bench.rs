//! `bench` as users run it: its one JSON line, and its refusals.

use std::process::{Command, Output};

use infrastructure::testing::TestStore;
use tests::on_both_backends;

use crate::support::{cli, text};

async fn bench_prints_one_json_line_per_scenario(store: &TestStore) {
    let cases: [(&str, &[&str]); 8] = [
        (
            "single",
            &["scenario", "backend", "events", "seconds", "events_per_sec"],
        ),
        (
            "bulk",
            &[
                "scenario",
                "backend",
                "events",
                "seconds",
                "events_per_sec",
                "settled_events_per_sec",
                "loader_events_per_sec",
                "store_vs_loader",
            ],
        ),
        (
            "read",
            &[
                "scenario",
                "backend",
                "events",
                "one_skill_ms",
                "all_skills_ms",
                "summary_ms",
                "refresh_ms",
                "search_ms",
                "exact_ms",
            ],
        ),
        (
            "scale",
            &[
                "scenario",
                "backend",
                "events",
                "ms_per_record_small",
                "ms_per_record_large",
                "ratio",
            ],
        ),
        (
            "concurrent",
            &[
                "scenario",
                "backend",
                "events",
                "writers",
                "seconds",
                "events_per_sec",
                "lost",
            ],
        ),
        (
            "wide",
            &[
                "scenario",
                "backend",
                "events",
                "ms_per_record_small",
                "ms_per_record_large",
                "ratio",
            ],
        ),
        (
            "realistic",
            &[
                "scenario",
                "backend",
                "events",
                "ingest_events_per_sec",
                "ingest_events_per_sec_by_decile",
                "ingest_last_over_first_decile_cost",
                "reads",
                "dashboard",
                "export_events_per_sec",
                "verify_events_per_sec",
                "rebuild_events_per_sec",
                "prune_oldest_tenth_events_per_sec",
                "pruned",
                "bytes_per_event",
                "bytes_per_event_by_object",
                "peak_rss_mb_after_load",
                "peak_rss_mb_after_verify",
                "anon_mb_before_verify",
                "peak_anon_mb_in_verify",
                "anon_mb_before_rebuild",
                "peak_anon_mb_in_rebuild",
            ],
        ),
        (
            "serve",
            &[
                "scenario",
                "backend",
                "events",
                "clients",
                "batch",
                "requests",
                "seconds",
                "events_per_sec",
                "request_p50_ms",
                "request_p99_ms",
                "lost",
            ],
        ),
    ];
    let backend = if store.url().starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    for (scenario, keys) in cases {
        // Each run needs a fresh store: PostgreSQL gets a new database, SQLite
        // the default temporary file.
        let fresh = if backend == "postgres" {
            infrastructure::testing::TestStore::postgres().await
        } else {
            None
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
        cmd.env_remove("SKILL_METRICS_DATABASE_URL");
        if let Some(pg) = &fresh {
            cmd.args(["--database-url", pg.url()]);
        }
        let out = cmd
            .args([
                "bench",
                "--scenario",
                scenario,
                "--events",
                "203",
                "--writers",
                "3",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{scenario}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let line: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let obj = line.as_object().unwrap();
        let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = keys.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{scenario}");
        assert_eq!(line["scenario"], scenario);
        assert_eq!(line["backend"], backend);
        // All of them, even where the writers cannot share them evenly.
        assert_eq!(line["events"], 203, "{scenario}");
        if scenario == "bulk" {
            // The hand-written loader runs beside a SQLite file only, and
            // its store verified (or the run would have failed).
            for key in [
                "settled_events_per_sec",
                "loader_events_per_sec",
                "store_vs_loader",
            ] {
                assert_eq!(line[key].is_f64(), backend == "sqlite", "{key}: {line}");
            }
        }
        if scenario == "concurrent" || scenario == "serve" {
            assert_eq!(line["lost"], 0);
        }
        if scenario == "realistic" {
            // Ten tenths written, nine reads and nine dashboard reads (six pages, three insights)
            // timed, the oldest tenth pruned.
            assert_eq!(
                line["ingest_events_per_sec_by_decile"]
                    .as_array()
                    .unwrap()
                    .len(),
                10
            );
            assert_eq!(line["reads"].as_object().unwrap().len(), 9);
            assert_eq!(line["dashboard"].as_object().unwrap().len(), 9);
            assert_eq!(line["pruned"], 20);
            assert!(line["bytes_per_event"].as_f64().unwrap() > 0.0);
        }
        if scenario == "serve" {
            // 203 events in batches of 512: one request, from one of 3 clients.
            assert_eq!(
                (line["batch"].as_u64(), line["requests"].as_u64()),
                (Some(512), Some(1))
            );
        }
        assert!(!text(&out.stderr).is_empty(), "a human summary on stderr");
    }
    // Refused runs: the exit code, the reason on stderr, nothing on stdout.
    let refused = |out: Output, code: i32, reason: &str| {
        assert_eq!(out.status.code(), Some(code), "{reason}");
        assert!(text(&out.stderr).contains(reason), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    };
    let bench = |url: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
        match url {
            Some(url) => cmd.env("SKILL_METRICS_DATABASE_URL", url),
            None => cmd.env_remove("SKILL_METRICS_DATABASE_URL"),
        };
        cmd.arg("bench").args(args).output().unwrap()
    };

    // Counts that measure nothing, naming the flag.
    let concurrent = ["--scenario", "concurrent"];
    refused(
        bench(None, &[&concurrent[..], &["--events", "0"]].concat()),
        2,
        "--events",
    );
    refused(
        bench(
            None,
            &[&concurrent[..], &["--events", "9", "--writers", "0"]].concat(),
        ),
        2,
        "--writers",
    );
    // Writer processes cannot share a private in-memory database.
    refused(
        bench(
            Some("sqlite::memory:"),
            &[&concurrent[..], &["--events", "10"]].concat(),
        ),
        1,
        "sqlite::memory:",
    );
    // A store holding only the legacy file's opening balances.
    let balances = if backend == "postgres" {
        TestStore::postgres()
            .await
            .expect("the PostgreSQL server of this run")
    } else {
        TestStore::sqlite().await
    };
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("skill_metrics.json");
    let totals = serde_json::json!({
        "invocations": [],
        "skills": {"legacy-skill": {"skill_name": "legacy-skill", "total_invocations": 5,
            "completed_invocations": 5, "abandoned_invocations": 0, "total_duration_seconds": 50.0,
            "workflow_paths": {}, "common_errors": {}, "follow_up_actions": {},
            "first_invoked": "2025-01-01T00:00:00", "last_invoked": "2025-01-02T00:00:00"}},
        "last_updated": "2025-01-02T00:00:00"
    });
    std::fs::write(&legacy, totals.to_string()).unwrap();
    let import = [
        "import-legacy",
        legacy.to_str().unwrap(),
        "--timezone",
        "UTC",
    ];
    let imported = cli(&balances, &import, None);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let single = ["--scenario", "single", "--events", "10"];
    refused(bench(Some(balances.url()), &single), 1, "skill metrics");
    // A store that already holds invocations.
    cli(store, &["record", "--skill", "x", "--completed"], None);
    refused(bench(Some(store.url()), &single), 1, "fresh");
}

on_both_backends!(shared: bench_prints_one_json_line_per_scenario);
