//! `skill-metrics prune`: the archive is gzip JSON Lines that `ingest`
//! reads back, the figures do not move, bad input removes nothing.

use std::io::Read;

use infrastructure::testing::TestStore;
use tests::on_both_backends;

use crate::data::{metrics, ok, run};

const SKILLS: [&str; 3] = ["deploy", "review", "lint"];

/// 96 invocations an hour apart through 2026-01-01..05, three skills.
fn jsonl() -> String {
    (0..96)
        .map(|i| {
            serde_json::json!({
                "id": format!("00000000-0000-4000-8000-{i:012}"),
                "skill_name": SKILLS[i % 3],
                "invoked_at": format!("2026-01-0{}T{:02}:30:00Z", 1 + i / 24, i % 24),
                "completed": i % 5 != 0,
                "duration_seconds": (i % 4 != 0).then_some(1.5 * i as f64),
                "session_id": format!("s{}", i % 5),
                "workflow_path": format!("w{}", i % 2),
                "error_type": (i % 5 == 0).then_some("Timeout"),
            })
            .to_string()
                + "\n"
        })
        .collect()
}

fn export(url: &str) -> Vec<serde_json::Value> {
    let mut lines: Vec<serde_json::Value> = ok(&run(url, &["export"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.sort_by_key(|v| v["id"].as_str().unwrap().to_owned());
    lines
}

async fn prune_archives_and_ingest_restores(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, jsonl()).unwrap();
    let url = store.url();
    ok(&run(url, &["ingest", input.to_str().unwrap()]));
    let figures = metrics(url);
    let whole = export(url);

    // Bad input: named, non-zero, nothing removed.
    let bad = run(url, &["prune", "--before", "last tuesday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--before"));
    let taken = dir.path().join("taken.gz");
    std::fs::write(&taken, b"keep me").unwrap();
    let refused = run(
        url,
        &[
            "prune",
            "--before",
            "2026-01-03T00:00:00Z",
            "--archive",
            taken.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exists already"));
    assert_eq!(std::fs::read(&taken).unwrap(), b"keep me");
    assert_eq!(export(url).len(), 96);

    // Two days out, into a gzip archive.
    let archive = dir.path().join("2026-01-01.jsonl.gz");
    let said = ok(&run(
        url,
        &[
            "prune",
            "--before",
            "2026-01-03T00:00:00Z",
            "--archive",
            archive.to_str().unwrap(),
        ],
    ));
    assert!(said.contains("removed 48 invocations"), "{said}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.lines().count(), 48);
    assert_eq!(export(url).len(), 48);
    assert_eq!(metrics(url), figures, "the figures moved");
    ok(&run(url, &["verify"]));
    ok(&run(url, &["rebuild"]));
    assert_eq!(metrics(url), figures, "rebuild lost the pruned balance");

    // The archive ingested back: the log is whole and nothing counts twice.
    let said = ok(&run(url, &["ingest", archive.to_str().unwrap()]));
    assert!(said.contains("inserted 48"), "{said}");
    assert_eq!(export(url), whole);
    assert_eq!(metrics(url), figures, "restored rows were counted again");
    ok(&run(url, &["verify"]));

    // Without an archive, everything before the time goes.
    let said = ok(&run(url, &["prune", "--before", "2026-01-05T00:00:00Z"]));
    assert!(said.contains("removed 96 invocations"), "{said}");
    assert!(export(url).is_empty());
    assert_eq!(metrics(url), figures);
    ok(&run(url, &["verify"]));
}

on_both_backends!(shared: prune_archives_and_ingest_restores);
