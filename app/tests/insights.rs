//! `insights` from the command line and the API: the same bytes for the
//! same query, and bad input refused by name with exit code 1.

use domain::Scope;
use infrastructure::testing::TestStore;
use tests::{insight_end, insight_events, on_both_backends};

use crate::support::{Running, cli, ok, text};

async fn the_command_and_the_api_answer_the_same_findings(store: &TestStore) {
    for chunk in insight_events(3, true).chunks(1_000) {
        store.record_batch(chunk.to_vec()).await.unwrap();
    }
    let until = insight_end().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let printed = ok(&cli(
        store,
        &[
            "insights",
            "--until",
            &until,
            "--retire-after-days",
            "10",
            "--json",
        ],
        None,
    ));
    let report: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let kinds: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "latency_regression",
        "completion_drop",
        "error_rise",
        "usage_fall",
        "new_skill",
        "retire_candidate",
        "slow_hot_spot",
        "failing_hot_spot",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(report["settings"]["retire_after_days"], 10);

    let server = Running::start(store, Scope::Read).await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answered = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/insights?until={}&retire_after_days=10",
            server.url,
            until.replace(':', "%3A")
        ))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.stop().await;
    assert_eq!(answered.trim_end(), printed.trim_end());

    // The text names each kind of finding with its evidence.
    let shown = ok(&cli(
        store,
        &["insights", "--until", &until, "--retire-after-days", "10"],
        None,
    ));
    for line in [
        "Latency regressions",
        "p95 of render rose",
        "completion of lint dropped",
        "upload has a new error, \"quota\"",
        "Retire candidates",
        "stale was used 0 times in the window",
    ] {
        assert!(shown.contains(line), "{line:?} not in\n{shown}");
    }

    // Bad input: exit code 1, the field named, nothing else printed.
    for (args, field) in [
        (vec!["insights", "--window", "0d"], "--window"),
        (vec!["insights", "--window", "400d"], "window"),
        (vec!["insights", "--against", "last-week"], "--against"),
        (vec!["insights", "--until", "yesterday"], "--until"),
        (vec!["insights", "--alpha", "2"], "alpha"),
        (
            vec![
                "insights",
                "--until",
                "2026-01-08T00:00:00Z",
                "--against",
                "2026-01-05T00:00:00Z..2026-01-06T00:00:00Z",
            ],
            "overlaps",
        ),
        (vec!["insights", "--usage-factor", "0.5"], "usage_factor"),
    ] {
        let out = cli(store, &args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(field),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

on_both_backends!(shared: the_command_and_the_api_answer_the_same_findings);
