//! Held-back calls, continued: open skill spans, invalid calls, and
//! `--follow` stopped by Ctrl-C.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::{counts, on_both_backends};

use crate::in_flight::{
    import_all, prompt, recorded, running_session, tool_result, tool_use, turn_end, write_lines,
};
use crate::transcripts::run;

async fn an_open_skill_span_is_held_back(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sess-t.jsonl");
    let mut lines = vec![
        prompt("p1", 0, "deploy"),
        tool_use(
            "a1",
            1,
            "toolu_S1",
            "Skill",
            json!({"skill": "plugin:deploy"}),
        ),
        tool_result("r1", 2, "toolu_S1", "Launching skill: plugin:deploy"),
        tool_use(
            "a2",
            3,
            "toolu_B1",
            "Bash",
            json!({"command": "make deploy"}),
        ),
        tool_result("r2", 5, "toolu_B1", "deployed"),
    ];
    write_lines(&file, &lines);
    let path = file.to_str().unwrap();
    let open = run(store, &["import-claude-code", path]);
    assert!(open.contains("calls found 0, imported 0,"), "{open}");
    assert!(open.contains("1 call(s) held back as in flight"), "{open}");
    assert!(store.metrics(&[]).await.unwrap().is_empty());
    lines.push(turn_end("t1", 9));
    write_lines(&file, &lines);
    let ended = run(store, &["import-claude-code", path]);
    assert!(ended.contains("calls found 1, imported 1,"), "{ended}");
    let m = store.metrics(&["plugin:deploy"]).await.unwrap();
    assert_eq!(m[0].completed_invocations, 1);
    assert_eq!(m[0].total_duration_seconds, 8.0, "to the end of the turn");
    assert_eq!(m[0].follow_up_actions, counts([("Bash", 1)]));

    // Codex: a `<skill>` prompt's span is open until its task ends.
    let rollout = dir.path().join("rollout-t.jsonl");
    let mut lines = vec![
        json!({"timestamp": "2026-02-01T11:00:00.000Z", "type": "session_meta",
            "payload": {"id": "codex-t", "cwd": "/work/t"}}),
        json!({"timestamp": "2026-02-01T11:00:01.000Z", "type": "response_item",
            "payload": {"type": "message", "role": "user", "content": [{"type": "input_text",
                "text": "<skill><name>refactor</name><path>/s</path></skill> tidy"}]}}),
        json!({"timestamp": "2026-02-01T11:00:02.000Z", "type": "response_item",
            "payload": {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}}),
        json!({"timestamp": "2026-02-01T11:00:04.000Z", "type": "response_item",
            "payload": {"type": "function_call_output", "call_id": "c1", "output": "ok"}}),
    ];
    let write = |lines: &[Value]| {
        write_lines(
            &rollout,
            &lines.iter().map(Value::to_string).collect::<Vec<_>>(),
        )
    };
    write(&lines);
    let path = rollout.to_str().unwrap();
    let open = run(store, &["import-codex", path]);
    assert!(open.contains("calls found 0,"), "{open}");
    assert!(open.contains("1 call(s) held back as in flight"), "{open}");
    lines.push(
        json!({"timestamp": "2026-02-01T11:00:06.000Z", "type": "event_msg",
        "payload": {"type": "task_complete", "last_agent_message": "done"}}),
    );
    write(&lines);
    let ended = run(store, &["import-codex", path]);
    assert!(ended.contains("calls found 1, imported 1,"), "{ended}");
    let m = store.metrics(&["refactor"]).await.unwrap();
    assert_eq!(m[0].follow_up_actions, counts([("shell", 1)]));
    assert_eq!(m[0].total_duration_seconds, 3.0);
}

async fn invalid_calls_are_counted(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    write_lines(
        &dir.path().join("sess-t.jsonl"),
        &[
            prompt("p1", 0, "go"),
            tool_use("a1", 1, "toolu_E1", "", json!({})),
            tool_result("r1", 2, "toolu_E1", "?"),
            tool_use("a2", 3, "toolu_E2", "Bad\u{7}Tool", json!({})),
            tool_result("r2", 4, "toolu_E2", "?"),
            tool_use("a3", 5, "toolu_B1", "Bash", json!({"command": "ls"})),
            tool_result("r3", 6, "toolu_B1", "file"),
            turn_end("t1", 7),
        ],
    );
    let report = import_all(store, dir.path());
    assert!(report.contains("calls found 1, imported 1,"), "{report}");
    assert!(
        report.contains(
            "2 call(s) skipped as invalid: invalid skill_name: must not be empty (tool_use:toolu_E1 in sess-t.jsonl)"
        ),
        "{report}"
    );
}

/// `--follow` until Ctrl-C: what finished before it is recorded by a last
/// pass, what still runs stays held back.
async fn follow_records_what_finished_before_ctrl_c(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sess-t.jsonl");
    let mut lines = running_session();
    write_lines(&file, &lines);
    let mut child = Command::new(env!("CARGO_BIN_EXE_skill-metrics"))
        .args(["import-claude-code", "--tools", "all", "--follow"])
        .arg(dir.path())
        .env("SKILL_METRICS_DATABASE_URL", store.url())
        .env("HOME", "/nonexistent")
        .env_remove("CLAUDE_CONFIG_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = Instant::now();
    while !rx
        .recv_timeout(Duration::from_secs(60))
        .is_ok_and(|l| l.starts_with("following"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never followed"
        );
    }
    lines.push(tool_use(
        "a3",
        8,
        "toolu_G1",
        "Grep",
        json!({"pattern": "x"}),
    ));
    lines.push(tool_result("r3", 9, "toolu_G1", "match"));
    lines.push(tool_use(
        "a4",
        10,
        "toolu_B2",
        "Bash",
        json!({"command": "make"}),
    ));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    writeln!(f, "{}", lines[5..].join("\n")).unwrap();
    drop(f);
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("--follow did not stop on Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("stopped; calls still in flight in 1 file(s)"),
        "{stderr}"
    );
    let names: Vec<String> = recorded(store).await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        ["Bash", "Grep", "Read"],
        "the Grep finished before Ctrl-C; the second Bash still runs"
    );
}

on_both_backends!(shared:
    an_open_skill_span_is_held_back,
    invalid_calls_are_counted,
    follow_records_what_finished_before_ctrl_c
);
