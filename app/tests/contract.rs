//! The CLI's JSON contract, pinned byte for byte: every `--json` read of a
//! fixed set of events must equal the file under `tests/contract/`, on every
//! backend. Only the times a figure was computed (`last_aggregated_at`,
//! `refresh_time`) are masked. `SKILL_METRICS_BLESS=1` rewrites the files
//! (for a deliberate change of the contract, reviewed in the diff).

use std::path::PathBuf;

use infrastructure::testing::TestStore;

use crate::support::{self, ok};
use tests::on_both_backends;

fn cli(store: &TestStore, args: &[&str], stdin: Option<&[u8]>) -> String {
    ok(&support::cli(store, args, stdin))
}

/// Every field of the ingest format in use, Unicode, nulls, a session with
/// an end, several hours and days, errors and follow-ups.
const EVENTS: &str = r#"{"id":"00000000-0000-4000-8000-000000000001","skill_name":"code-review","invoked_at":"2025-02-10T09:15:00.123456Z","completed":true,"duration_seconds":12.5,"workflow_path":"review/deep","session_id":"s-1","project_path":"/work/shop","follow_up_actions":["git commit","deploy prod"],"user_context":{"model":"opus","turns":3}}
{"id":"00000000-0000-4000-8000-000000000002","skill_name":"code-review","invoked_at":"2025-02-10T09:45:30Z","completed":false,"duration_seconds":3.25,"error_type":"TimeoutError","workflow_path":"review/deep","session_id":"s-1","project_path":"/work/shop"}
{"id":"00000000-0000-4000-8000-000000000003","skill_name":"code-review","invoked_at":"2025-02-10T10:05:00Z","completed":true,"duration_seconds":40.75,"workflow_path":"review/quick","session_id":"s-1","follow_up_actions":["git commit"]}
{"id":"00000000-0000-4000-8000-000000000004","skill_name":"déploiement-prod","invoked_at":"2025-02-10T10:30:00Z","completed":true,"duration_seconds":0.001,"workflow_path":"ci/deploy-prod.v2","session_id":"s-2"}
{"id":"00000000-0000-4000-8000-000000000005","skill_name":"déploiement-prod","invoked_at":"2025-02-11T23:59:59.999999Z","completed":false,"error_type":"ConflictError","session_id":"s-2"}
{"id":"00000000-0000-4000-8000-000000000006","skill_name":"docs-writer","invoked_at":"2025-02-12T08:00:00Z","completed":true,"duration_seconds":1000,"workflow_path":"docs/deploy guide"}
{"id":"00000000-0000-4000-8000-000000000007","skill_name":"code-review","invoked_at":"2025-02-17T12:00:00Z","completed":true,"duration_seconds":7,"workflow_path":"review/deep","session_id":"s-1","follow_up_actions":[]}
"#;

/// The reads whose output is the contract, each with the file that pins it.
const READS: &[(&str, &[&str])] = &[
    ("metrics", &["metrics", "--json"]),
    ("metrics-one", &["metrics", "docs-writer", "--json"]),
    ("metrics-exact", &["metrics", "--json", "--exact"]),
    ("session", &["session", "s-1", "--json"]),
    ("recent", &["recent", "--json", "--limit", "3"]),
    (
        "recent-skill",
        &["recent", "--json", "--skill", "déploiement-prod"],
    ),
    ("search", &["search", "deploy", "--json"]),
    (
        "timeline-hour",
        &["timeline", "code-review", "--bucket", "hour", "--json"],
    ),
    (
        "timeline-week",
        &[
            "timeline",
            "code-review",
            "--bucket",
            "week",
            "--since",
            "2025-02-10T09:30:00Z",
            "--json",
        ],
    ),
    ("summary", &["summary", "--refresh", "--json"]),
    (
        "insights",
        &[
            "insights",
            "--window",
            "7d",
            "--until",
            "2025-02-18T00:00:00Z",
            "--min-invocations",
            "1",
            "--min-usage",
            "1",
            "--retire-after-days",
            "5",
            "--json",
        ],
    ),
];

/// Replaces the value of every `"key": "…"` for the masked keys, and the
/// row ids the store generates (`session_skill`'s), which are random.
fn mask(text: &str) -> String {
    let mut out = text.replace("\"id\": \"00000000-", "\"id\": \"fixed-");
    for key in ["last_aggregated_at", "refresh_time", "id"] {
        let needle = format!("\"{key}\": \"");
        let mut from = 0;
        while let Some(found) = out[from..].find(&needle) {
            let start = from + found + needle.len();
            let end = start + out[start..].find('"').expect("a closed string");
            let value = &out[start..end];
            if key != "id" || (value.len() == 36 && !value.starts_with("fixed-")) {
                out.replace_range(start..end, "<masked>");
            }
            from = start;
        }
    }
    out.replace("\"id\": \"fixed-", "\"id\": \"00000000-")
}

async fn every_json_read_matches_its_pinned_file(store: &TestStore) {
    cli(store, &["ingest", "-"], Some(EVENTS.as_bytes()));
    cli(
        store,
        &["session", "end", "s-1", "--at", "2025-02-17T13:00:00Z"],
        None,
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract");
    let bless = std::env::var_os("SKILL_METRICS_BLESS").is_some();
    for (name, args) in READS {
        let got = mask(&cli(store, args, None));
        let path = dir.join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with SKILL_METRICS_BLESS=1)", path.display()));
        assert!(
            got == want,
            "`skill-metrics {}` differs from {}:\n--- got\n{got}\n--- pinned\n{want}",
            args.join(" "),
            path.display()
        );
    }
}

on_both_backends!(shared: every_json_read_matches_its_pinned_file);
