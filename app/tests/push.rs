//! `skill-metrics push`: machines with stores of their own send their logs
//! to one server, incrementally and idempotently, on both backends (the
//! server's store and the machines' are of the backend under test).

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use domain::{Invocation, InvocationId, Scope, SessionId};
use infrastructure::SkillMetricsStore;
use infrastructure::testing::TestStore;
use sea_orm::DbBackend;
use tests::{invocation, on_both_backends};

use crate::support::{Running, ok, run, text};

/// Another fresh store of `like`'s backend: a machine of its own.
async fn machine(like: &TestStore) -> TestStore {
    match like.backend() {
        DbBackend::Postgres => TestStore::postgres().await.expect("PostgreSQL, as `like`"),
        _ => TestStore::sqlite().await,
    }
}

/// `n` invocations of a few skills, some in sessions, with paths and errors.
fn invocations(tag: &str, n: i64) -> Vec<Invocation> {
    (0..n)
        .map(|i| {
            let mut inv = invocation(
                &format!("skill-{}", i % 7),
                i * 60,
                i % 5 != 0,
                Some(0.5 + i as f64),
            );
            inv.workflow_path = Some(format!("{tag}/path-{}", i % 3));
            if i % 5 == 0 {
                inv.error_type = Some("Timeout".into());
            }
            if i % 2 == 0 {
                inv.session_id =
                    Some(SessionId::parse(format!("{tag}-session-{}", i % 4)).unwrap());
            }
            inv.project_path = Some(format!("/work/{tag}"));
            inv
        })
        .collect()
}

/// `skill-metrics push --to URL ARGS` from `machine`, with `token` in the
/// environment.
fn push_command(machine: &TestStore, url: &str, token: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skill-metrics"));
    command
        .env("SKILL_METRICS_DATABASE_URL", machine.url())
        .env("SKILL_METRICS_TOKEN", token)
        .args(["push", "--to", url])
        .args(args);
    command
}

fn push(machine: &TestStore, url: &str, token: &str, args: &[&str]) -> Output {
    run(push_command(machine, url, token, &[]), args, None)
}

/// The whole log of `store`, by id.
async fn log(store: &SkillMetricsStore) -> BTreeMap<InvocationId, Invocation> {
    store
        .written_after(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.invocation.id, l.invocation))
        .collect()
}

async fn two_machines_push_exactly_the_union_of_their_logs(store: &TestStore) {
    let server = Running::start(store, Scope::Ingest).await;
    let (a, b) = (machine(store).await, machine(store).await);
    let mut on_a = invocations("a", 300);
    let on_b = invocations("b", 200);
    // Twenty calls both machines know (the same transcript imported on both).
    on_a.extend(on_b[..20].iter().cloned());
    a.record_batch(on_a).await.unwrap();
    b.record_batch(on_b).await.unwrap();

    let out = ok(&push(
        &a,
        &server.url,
        &server.token,
        &["--batch-size", "64"],
    ));
    assert!(
        out.contains("pushed 320 invocations") && out.contains("320 new there"),
        "{out}"
    );
    let out = ok(&push(&b, &server.url, &server.token, &[]));
    assert!(
        out.contains("pushed 200 invocations") && out.contains("180 new there, 20 it already had"),
        "{out}"
    );

    let mut union = log(&a).await;
    union.extend(log(&b).await);
    assert_eq!(union.len(), 500);
    assert_eq!(
        log(store).await,
        union,
        "the server holds exactly the union"
    );
    let metrics = store.metrics(&[]).await.unwrap();
    assert_eq!(
        metrics.iter().map(|m| m.total_invocations).sum::<i64>(),
        500
    );
    assert!(store.verify().await.unwrap().is_clean());

    // Nothing new: nothing is sent.
    let out = ok(&push(&a, &server.url, &server.token, &[]));
    assert!(out.contains("nothing to push"), "{out}");
    // Ten new calls: exactly those are sent, also when the URL is spelt
    // with a trailing slash.
    a.record_batch(invocations("a-later", 10)).await.unwrap();
    let out = ok(&push(&a, &format!("{}/", server.url), &server.token, &[]));
    assert!(
        out.contains("pushed 10 invocations") && out.contains("10 new there"),
        "{out}"
    );
    let cursor = a.push_cursor(&server.url).await.unwrap();
    assert_eq!(cursor.pushed_invocations, 330);
    // From the start again: everything goes, and the server counts it once.
    let out = ok(&push(&a, &server.url, &server.token, &["--from-start"]));
    assert!(
        out.contains("pushed 330 invocations") && out.contains("0 new there, 330 it already had"),
        "{out}"
    );
    assert_eq!(log(store).await.len(), 510);
    assert!(store.verify().await.unwrap().is_clean());
    server.stop().await;
}

async fn an_interrupted_push_resumes_and_resends_at_most_one_batch(store: &TestStore) {
    let server = Running::start(store, Scope::Ingest).await;
    let a = machine(store).await;
    a.record_batch(invocations("a", 3000)).await.unwrap();

    // Killed (as by a crash or a closed laptop) once the server has some.
    let mut child = push_command(&a, &server.url, &server.token, &["--batch-size", "10"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while store.info().await.unwrap().invocations < 100 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = a.push_cursor(&server.url).await.unwrap().pushed_invocations;
    assert!(first < 3000, "the push ended before it was killed");

    let out = ok(&push(
        &a,
        &server.url,
        &server.token,
        &["--batch-size", "10"],
    ));
    let cursor = a.push_cursor(&server.url).await.unwrap();
    let resent = cursor.pushed_invocations - 3000;
    assert!(
        (0..=10).contains(&resent),
        "only the batch in flight when it was killed may go twice, not {resent}: {out}"
    );
    assert!(out.contains(&format!("{resent} it already had")), "{out}");
    assert_eq!(log(store).await, log(&a).await);
    assert!(store.verify().await.unwrap().is_clean());
    server.stop().await;
}

async fn a_refused_push_moves_no_cursor_and_says_why(store: &TestStore) {
    let server = Running::start(store, Scope::Read).await;
    let a = machine(store).await;
    a.record_batch(invocations("a", 5)).await.unwrap();

    let out = push(&a, &server.url, &server.token, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("403") && err.contains("ingest"), "{err}");
    assert!(
        !err.contains(&server.token),
        "the token is never shown: {err}"
    );

    let out = push(&a, &server.url, "smk_not-a-token", &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    let mut no_token = push_command(&a, &server.url, "", &[]);
    no_token.env_remove("SKILL_METRICS_TOKEN");
    let out = run(no_token, &[], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("set SKILL_METRICS_TOKEN"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(a.push_cursor(&server.url).await.unwrap().last_seq, 0);
    assert_eq!(
        store.info().await.unwrap().invocations,
        0,
        "nothing was written"
    );
    let url = server.url.clone();
    server.stop().await;

    // No server there any more: it retries, then gives up and says how to resume.
    let out = push(&a, &url, "smk_x", &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach") && err.contains("run the same command again"),
        "{err}"
    );
    assert_eq!(a.push_cursor(&url).await.unwrap().last_seq, 0);
}

on_both_backends!(
    shared: two_machines_push_exactly_the_union_of_their_logs,
    an_interrupted_push_resumes_and_resends_at_most_one_batch,
    a_refused_push_moves_no_cursor_and_says_why,
);
