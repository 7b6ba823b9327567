//! Importing assistants' transcripts, on the project's own fixtures.

use std::path::PathBuf;
use std::process::{Command, Output};

use infrastructure::testing::TestStore;
use serde_json::json;
use tests::{counts, on_both_backends};

pub(crate) fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

pub(crate) fn run(store: &TestStore, args: &[&str]) -> String {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(args)
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .env("HOME", "/nonexistent")
        .env_remove("CLAUDE_CONFIG_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn count_of(report: &str, name: &str) -> Option<u64> {
    report.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some(name))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

async fn every_tool_call_counts_once(store: &TestStore) {
    let dir = fixtures("claude");
    // sess-a ends in a crash (a truncated line after a call with no result):
    // only an idle file makes that call final, and a checkout is fresh.
    let report = run(
        store,
        &[
            "import-claude-code",
            dir.to_str().unwrap(),
            "--tools",
            "all",
            "--idle-after",
            "0s",
        ],
    );
    assert!(
        report.contains(
            "files 4, lines 27, calls found 8, imported 8, already present 0, skipped lines 1"
        ),
        "{report}"
    );
    for (tool, n) in [
        ("Skill", 1),
        ("Bash", 3),
        ("Read", 1),
        ("Grep", 1),
        ("Edit", 1),
        ("SlashCommand", 1),
    ] {
        assert_eq!(count_of(&report, tool), Some(n), "{tool} in {report}");
    }
    let again = run(
        store,
        &[
            "import-claude-code",
            dir.to_str().unwrap(),
            "--tools",
            "all",
            "--idle-after",
            "0s",
        ],
    );
    assert!(again.contains("imported 0, already present 8"), "{again}");
    let m = store.metrics(&["Read", "Grep", "Bash"]).await.unwrap();
    let read = m.iter().find(|r| r.skill_name == "Read").unwrap();
    assert_eq!(
        read.common_errors,
        counts([("NotFound", 1)]),
        "a failed tool gets a short class"
    );
    let grep = m.iter().find(|r| r.skill_name == "Grep").unwrap();
    assert_eq!(
        grep.common_errors,
        counts([("NoResult", 1)]),
        "a call with no result"
    );
    let bash = m.iter().find(|r| r.skill_name == "Bash").unwrap();
    assert_eq!(bash.completed_invocations, 3);
    assert_eq!(bash.max_duration_seconds, Some(3.0), "result minus call");
    let session = store.session("sess-a").await.unwrap();
    assert_eq!(session.session.project_path.as_deref(), Some("/work/shop"));
    assert_eq!(
        session.session.started_at.to_rfc3339(),
        "2026-01-05T10:00:00+00:00"
    );
    assert!(session.session.ended_at.is_some());
}

async fn skills_span_the_work_they_drove(store: &TestStore) {
    let report = run(
        store,
        &["import-claude-code", fixtures("claude").to_str().unwrap()],
    );
    assert!(report.contains("calls found 3"), "{report}");
    let m = store.metrics(&[]).await.unwrap();
    let names: Vec<&str> = m.iter().map(|r| r.skill_name.as_str()).collect();
    assert_eq!(names, ["commit", "plugin:deploy", "review-pr"]);
    let deploy = &m[1];
    assert_eq!(deploy.completed_invocations, 1);
    assert_eq!(
        deploy.total_duration_seconds, 9.0,
        "from the call to the end of the turn"
    );
    assert_eq!(deploy.follow_up_actions, counts([("Bash", 1), ("Read", 1)]));
    let inv = &store
        .recent(&Default::default(), 10)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.skill_name.as_str() == "plugin:deploy")
        .unwrap();
    let ctx = inv.user_context.clone().unwrap();
    assert_eq!(ctx["load_seconds"], json!(0.5));
    assert_eq!(ctx["args"], "prod");
    assert_eq!(ctx["git_branch"], "main");
    assert_eq!(ctx["model"], "claude-opus-4-6");
    let commit = &m[0];
    assert_eq!(
        commit.follow_up_actions,
        counts([("Bash", 1)]),
        "a typed command's work"
    );
    assert_eq!(commit.total_duration_seconds, 4.0);
    let since = run(
        store,
        &[
            "import-claude-code",
            fixtures("claude").to_str().unwrap(),
            "--since",
            "2026-01-01T00:00:00Z",
            "--dry-run",
        ],
    );
    assert!(since.contains("calls found 1,"), "{since}");
}

async fn codex_calls_and_skills(store: &TestStore) {
    let dir = fixtures("codex");
    let all = run(
        store,
        &["import-codex", dir.to_str().unwrap(), "--tools", "all"],
    );
    assert_eq!(count_of(&all, "shell"), Some(2), "{all}");
    let skills = run(store, &["import-codex", dir.to_str().unwrap()]);
    assert!(skills.contains("calls found 1"), "{skills}");
    let m = store.metrics(&["shell", "refactor"]).await.unwrap();
    assert_eq!(m[1].common_errors, counts([("NonZeroExit", 1)]));
    assert_eq!(m[0].skill_name, "refactor");
    assert_eq!(m[0].follow_up_actions, counts([("shell", 2)]));
    assert_eq!(
        store.session("codex-s1").await.unwrap().invocations.len(),
        3
    );
}

on_both_backends!(shared:
    every_tool_call_counts_once,
    skills_span_the_work_they_drove,
    codex_calls_and_skills,
);
