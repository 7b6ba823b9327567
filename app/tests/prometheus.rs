//! `GET /metrics` in Prometheus' text format, checked by `promtool`.

use std::io::Write;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::Scope;
use http_body_util::BodyExt;
use infrastructure::testing::TestStore;
use server::Limits;
use tests::on_both_backends;
use tower::ServiceExt;

use crate::support::{cli, ok};

async fn scrape(store: &TestStore, token: &str) -> (StatusCode, String) {
    let app = server::router((**store).clone(), &Limits::default());
    let request = Request::get("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

/// `promtool check metrics`'s verdict on `text`; promtool must be there
/// (`.ci/run` installs Debian's `prometheus` package, which has it).
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

async fn the_exposition_passes_promtool(store: &TestStore) {
    let events = concat!(
        r#"{"skill_name":"deploy","invoked_at":"2025-02-10T09:00:00Z","completed":true,"duration_seconds":2}"#,
        "\n",
        r#"{"skill_name":"deploy","invoked_at":"2025-02-10T09:01:00Z","completed":true,"duration_seconds":4}"#,
        "\n",
        r#"{"skill_name":"deploy","invoked_at":"2025-02-10T09:02:00Z","completed":false,"error_type":"Timeout"}"#,
        "\n",
        r#"{"skill_name":"odd \"name\" \\ here","invoked_at":"2025-02-10T09:03:00Z","completed":false}"#,
        "\n",
    );
    ok(&cli(store, &["ingest", "-"], Some(events.as_bytes())));
    let read = store.create_token("prom", Scope::Read).await.unwrap().token;
    let ingest = store.create_token("cc", Scope::Ingest).await.unwrap().token;
    assert_eq!(scrape(store, &ingest).await.0, StatusCode::FORBIDDEN);
    let (status, text) = scrape(store, &read).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"skill_metrics_invocations_total{skill="deploy",outcome="completed"} 2"#,
        r#"skill_metrics_invocations_total{skill="deploy",outcome="abandoned"} 1"#,
        r#"skill_metrics_invocations_total{skill="odd \"name\" \\ here",outcome="abandoned"} 1"#,
        r#"skill_metrics_invocation_duration_seconds_sum{skill="deploy"} 6"#,
        r#"skill_metrics_invocation_duration_seconds_count{skill="deploy"} 2"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    assert!(
        text.contains(
            r#"skill_metrics_invocation_duration_seconds{skill="deploy",quantile="0.5"}"#
        ),
        "{text}"
    );
    let (passed, said) = promtool(&text);
    assert!(passed, "promtool: {said}\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skills_past_the_cap_are_summed_under_other() {
    let store = TestStore::sqlite().await;
    let extra = 3;
    let lines: String = (0..server::PROMETHEUS_MAX_SKILLS + extra)
        .map(|i| {
            format!(
                "{{\"skill_name\":\"s{i:04}\",\"invoked_at\":\"2025-02-10T09:00:00Z\",\"completed\":true,\"duration_seconds\":1}}\n"
            )
        })
        .collect();
    ok(&cli(&store, &["ingest", "-"], Some(lines.as_bytes())));
    let read = store.create_token("prom", Scope::Read).await.unwrap().token;
    let (_, text) = scrape(&store, &read).await;
    let skills = text
        .lines()
        .filter(|l| l.starts_with("skill_metrics_invocations_total{") && l.contains("completed"))
        .count();
    assert_eq!(
        skills,
        server::PROMETHEUS_MAX_SKILLS + 1,
        "the cap, plus other"
    );
    assert!(
        text.lines().any(|l| l
            == format!(
                r#"skill_metrics_invocations_total{{skill="other",folded="true",outcome="completed"}} {extra}"#
            )),
        "{text}"
    );
    let (passed, said) = promtool(&text);
    assert!(passed, "promtool: {said}");
}

on_both_backends!(shared: the_exposition_passes_promtool);
