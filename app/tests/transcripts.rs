//! Importing assistants' transcripts, on the project's own fixtures.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use infrastructure::testing::TestStore;
use serde_json::{Value, json};
use tests::{counts, on_both_backends};

fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn run(store: &TestStore, args: &[&str]) -> String {
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

fn count_of(report: &str, name: &str) -> Option<u64> {
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

/// One line of a Claude Code transcript in session `sess-t`, `secs` after 10:00.
fn claude(kind: &str, uuid: &str, secs: u32, fields: Value) -> String {
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

fn prompt(uuid: &str, secs: u32, text: &str) -> String {
    claude(
        "user",
        uuid,
        secs,
        json!({"message": {"role": "user", "content": text}}),
    )
}

fn tool_use(uuid: &str, secs: u32, id: &str, name: &str, input: Value) -> String {
    let content = json!([{"type": "tool_use", "id": id, "name": name, "input": input}]);
    claude(
        "assistant",
        uuid,
        secs,
        json!({"message": {"model": "claude-opus-4-6", "id": format!("msg_{uuid}"),
            "role": "assistant", "content": content}}),
    )
}

fn tool_result(uuid: &str, secs: u32, id: &str, text: &str) -> String {
    let content = json!([{"type": "tool_result", "tool_use_id": id, "content": text}]);
    claude(
        "user",
        uuid,
        secs,
        json!({"message": {"role": "user", "content": content}}),
    )
}

fn turn_end(uuid: &str, secs: u32) -> String {
    claude(
        "system",
        uuid,
        secs,
        json!({"subtype": "turn_duration", "durationMs": 1000}),
    )
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// Sets a file's modification time `ago` into the past.
fn age(path: &Path, ago: &str) {
    let ok = Command::new("touch")
        .args(["-d", ago])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// What the store holds: `(name, completed, error type, duration)`, by name.
async fn recorded(store: &TestStore) -> Vec<(String, bool, Option<String>, Option<f64>)> {
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
fn running_session() -> Vec<String> {
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
    let fresh = run(
        store,
        &[
            "import-claude-code",
            old.to_str().unwrap(),
            "--tools",
            "all",
        ],
    );
    assert!(
        fresh.contains("1 call(s) held back as in flight"),
        "{fresh}"
    );
    // Idle for longer than the default 30 minutes: the crash is final.
    age(&old, "2 hours ago");
    let idle = run(
        store,
        &[
            "import-claude-code",
            old.to_str().unwrap(),
            "--tools",
            "all",
        ],
    );
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
    let report = run(
        store,
        &[
            "import-claude-code",
            dir.path().to_str().unwrap(),
            "--tools",
            "all",
        ],
    );
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
    let report = run(
        store,
        &[
            "import-claude-code",
            dir.path().to_str().unwrap(),
            "--tools",
            "all",
        ],
    );
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
    every_tool_call_counts_once,
    skills_span_the_work_they_drove,
    codex_calls_and_skills,
    a_running_call_is_held_back_until_its_result,
    an_idle_call_without_result_is_final,
    a_call_followed_by_a_later_turn_is_final,
    an_open_skill_span_is_held_back,
    invalid_calls_are_counted,
    follow_records_what_finished_before_ctrl_c
);
