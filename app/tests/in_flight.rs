//! Transcript calls still running are held back until they end (D40, D41).

use std::path::Path;
use std::process::Command;

use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::{counts, on_both_backends};

use crate::transcripts::run;

/// `import claude-code PATH --tools all`, its report.
pub(crate) fn import_all(store: &TestStore, path: &Path) -> String {
    run(
        store,
        &[
            "import",
            "claude-code",
            path.to_str().unwrap(),
            "--tools",
            "all",
        ],
    )
}

/// One line of a Claude Code transcript in session `sess-t`, `secs` after 10:00.
pub(crate) fn claude(kind: &str, uuid: &str, secs: u32, fields: Value) -> String {
    let mut line = json!({
        "parentUuid": null, "isSidechain": false, "userType": "external",
        "cwd": "/work/t", "sessionId": "sess-t", "version": "2.1.39", "gitBranch": "main",
        "type": kind, "uuid": uuid,
        "timestamp": format!("2026-02-01T10:{:02}:{:02}.000Z", secs / 60, secs % 60),
    });
    line.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    line.to_string()
}

pub(crate) fn prompt(uuid: &str, secs: u32, text: &str) -> String {
    claude(
        "user",
        uuid,
        secs,
        json!({"message": {"role": "user", "content": text}}),
    )
}

pub(crate) fn tool_use(uuid: &str, secs: u32, id: &str, name: &str, input: Value) -> String {
    let content = json!([{"type": "tool_use", "id": id, "name": name, "input": input}]);
    claude(
        "assistant",
        uuid,
        secs,
        json!({"message": {"model": "claude-opus-4-6", "id": format!("msg_{uuid}"),
            "role": "assistant", "content": content}}),
    )
}

pub(crate) fn tool_result(uuid: &str, secs: u32, id: &str, text: &str) -> String {
    let content = json!([{"type": "tool_result", "tool_use_id": id, "content": text}]);
    claude(
        "user",
        uuid,
        secs,
        json!({"message": {"role": "user", "content": content}}),
    )
}

pub(crate) fn turn_end(uuid: &str, secs: u32) -> String {
    claude(
        "system",
        uuid,
        secs,
        json!({"subtype": "turn_duration", "durationMs": 1000}),
    )
}

pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Sets a file's modification time `ago` into the past.
pub(crate) fn age(path: &Path, ago: &str) {
    let ok = Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// What the store holds: `(name, completed, error type, duration)`, by name.
pub(crate) async fn recorded(
    store: &TestStore,
) -> Vec<(String, bool, Option<String>, Option<f64>)> {
    let mut all: Vec<_> = store
        .recent(&Default::default(), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                i.skill_name.to_string(),
                i.completed,
                i.error_type,
                i.duration_seconds,
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// A transcript read while its last call runs: cut just before that call's
/// result, then whole again.
pub(crate) fn running_session() -> Vec<String> {
    vec![
        prompt("p1", 0, "look around"),
        tool_use("a1", 1, "toolu_B1", "Bash", json!({"command": "ls"})),
        tool_result("r1", 2, "toolu_B1", "file"),
        tool_use(
            "a2",
            3,
            "toolu_R1",
            "Read",
            json!({"file_path": "/work/t/file"}),
        ),
        tool_result("r2", 7, "toolu_R1", "contents"),
    ]
}

async fn a_running_call_is_held_back_until_its_result(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("projects/-work-t/sess-t.jsonl");
    let lines = running_session();
    write_lines(&file, &lines[..lines.len() - 1]);
    let path = dir.path().to_str().unwrap();
    let cut = run(store, &["import-claude-code", path, "--tools", "all"]);
    assert!(cut.contains("calls found 1, imported 1,"), "{cut}");
    assert!(
        cut.contains("1 call(s) held back as in flight: no result yet; recorded once their session moves on or its file is idle for 30m"),
        "{cut}"
    );
    assert_eq!(
        recorded(store).await,
        [("Bash".to_owned(), true, None, Some(1.0))],
        "the running Read is not recorded"
    );
    write_lines(&file, &lines);
    let whole = run(store, &["import-claude-code", path, "--tools", "all"]);
    assert!(
        whole.contains("calls found 2, imported 1, already present 1,"),
        "{whole}"
    );
    assert!(!whole.contains("in flight"), "{whole}");
    assert_eq!(
        recorded(store).await,
        [
            ("Bash".to_owned(), true, None, Some(1.0)),
            ("Read".to_owned(), true, None, Some(4.0)),
        ],
        "the Read is recorded with its real result"
    );
}

async fn an_idle_call_without_result_is_final(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let lines = running_session();
    let cut = &lines[..lines.len() - 1];
    let old = dir.path().join("old/sess-t.jsonl");
    write_lines(&old, cut);
    let fresh = import_all(store, &old);
    assert!(
        fresh.contains("1 call(s) held back as in flight"),
        "{fresh}"
    );
    // Idle for longer than the default 30 minutes: the crash is final.
    age(&old, "2 hours ago");
    let idle = import_all(store, &old);
    assert!(
        idle.contains("calls found 2, imported 1, already present 1,"),
        "{idle}"
    );
    assert!(!idle.contains("in flight"), "{idle}");
    let read = ("Read".to_owned(), false, Some("NoResult".to_owned()), None);
    assert!(recorded(store).await.contains(&read));

    // A shorter threshold, and a subagent still at work keeping its
    // parent's Task call alive.
    let parent = dir.path().join("tasks/sess-u.jsonl");
    let agent = dir.path().join("tasks/sess-u/subagents/agent-x.jsonl");
    write_lines(
        &parent,
        &[
            prompt("q1", 0, "delegate"),
            tool_use("q2", 1, "toolu_T1", "Task", json!({"description": "dig"})),
        ],
    );
    write_lines(&agent, &[prompt("x1", 2, "dig")]);
    age(&parent, "10 minutes ago");
    let args = [
        "import-claude-code",
        parent.to_str().unwrap(),
        "--tools",
        "all",
    ];
    let working = run(store, &[&args[..], &["--idle-after", "5m"]].concat());
    assert!(
        working.contains("1 call(s) held back as in flight"),
        "{working}"
    );
    assert!(working.contains("idle for 5m"), "{working}");
    age(&agent, "10 minutes ago");
    let done = run(store, &[&args[..], &["--idle-after", "5m"]].concat());
    assert!(done.contains("calls found 1, imported 1,"), "{done}");
    let task = ("Task".to_owned(), false, Some("NoResult".to_owned()), None);
    assert!(recorded(store).await.contains(&task));

    // `0s`: anything without a result is final at once.
    let now = dir.path().join("now/sess-t.jsonl");
    write_lines(&now, &lines[..4]);
    let report = run(
        store,
        &[
            "import-claude-code",
            now.to_str().unwrap(),
            "--tools",
            "all",
            "--idle-after",
            "0s",
        ],
    );
    assert!(
        report.contains("calls found 2, imported 0, already present 2,"),
        "{report}"
    );
}

async fn a_call_followed_by_a_later_turn_is_final(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write_lines(
        &dir.path().join("sess-t.jsonl"),
        &[
            prompt("p1", 0, "search"),
            tool_use("a1", 1, "toolu_G1", "Grep", json!({"pattern": "x"})),
            turn_end("t1", 2),
            prompt("p2", 10, "[Request interrupted by user]"),
            tool_use("a2", 11, "toolu_W1", "WebFetch", json!({"url": "u"})),
            prompt("p3", 20, "never mind, list the files"),
            tool_use("a3", 21, "toolu_B1", "Bash", json!({"command": "ls"})),
            tool_result("r3", 22, "toolu_B1", "file"),
            tool_use("a4", 23, "toolu_B2", "Bash", json!({"command": "make"})),
        ],
    );
    let report = import_all(store, dir.path());
    assert!(report.contains("calls found 3, imported 3,"), "{report}");
    assert!(
        report.contains("1 call(s) held back as in flight"),
        "{report}"
    );
    let no_result = Some("NoResult".to_owned());
    assert_eq!(
        recorded(store).await,
        [
            ("Bash".to_owned(), true, None, Some(1.0)),
            ("Grep".to_owned(), false, no_result.clone(), None),
            ("WebFetch".to_owned(), false, no_result.clone(), None),
        ],
        "a turn after a call without result makes it final; the last Bash still runs"
    );

    // Codex: a task's end, or the next prompt, does the same.
    let rollout = dir.path().join("codex/rollout-t.jsonl");
    let codex = |secs: u32, kind: &str, payload: Value| {
        json!({"timestamp": format!("2026-02-01T11:00:{secs:02}.000Z"), "type": kind, "payload": payload})
            .to_string()
    };
    let call = |secs: u32, id: &str| {
        codex(
            secs,
            "response_item",
            json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": id}),
        )
    };
    write_lines(
        &rollout,
        &[
            codex(
                0,
                "session_meta",
                json!({"id": "codex-t", "cwd": "/work/t"}),
            ),
            call(1, "c1"),
            codex(
                2,
                "event_msg",
                json!({"type": "turn_aborted", "reason": "interrupted"}),
            ),
            call(3, "c2"),
            codex(
                4,
                "response_item",
                json!({"type": "function_call_output", "call_id": "c2",
                    "output": "{\"output\":\"\",\"metadata\":{\"exit_code\":0}}"}),
            ),
            call(5, "c3"),
        ],
    );
    let report = run(
        store,
        &["import-codex", rollout.to_str().unwrap(), "--tools", "all"],
    );
    assert!(report.contains("calls found 2, imported 2,"), "{report}");
    assert!(
        report.contains("1 call(s) held back as in flight"),
        "{report}"
    );
    let m = store.metrics(&["shell"]).await.unwrap();
    assert_eq!(m[0].total_invocations, 2);
    assert_eq!(m[0].completed_invocations, 1);
    assert_eq!(m[0].common_errors, counts([("NoResult", 1)]));
}

on_both_backends!(shared:
    a_running_call_is_held_back_until_its_result,
    an_idle_call_without_result_is_final,
    a_call_followed_by_a_later_turn_is_final,
);
