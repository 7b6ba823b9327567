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
    scrape_from(server::router((**store).clone(), &Limits::default()), token).await
}

/// A scrape through `app`: a running server's router, kept between scrapes.
async fn scrape_from(app: axum::Router, token: &str) -> (StatusCode, String) {
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

/// The folded line's completed count in `text`.
fn folded_completed(text: &str) -> Option<i64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"skill_metrics_invocations_total{skill="other",folded="true",outcome="completed"} "#,
            )
        })
        .map(|n| n.parse().unwrap())
}

/// A skill that overtakes one with series of its own stays folded while
/// the process runs (D107): the folded counter only grows.
async fn the_folded_counter_never_falls(store: &TestStore) {
    // Distinct minutes, so that no line repeats another (ingest would
    // count a repeat once).
    let line = |i: usize, minute: usize| {
        format!(
            "{{\"skill_name\":\"s{i:04}\",\"invoked_at\":\"2025-02-10T09:{minute:02}:00Z\",\"completed\":true,\"duration_seconds\":1}}\n"
        )
    };
    let cap = server::PROMETHEUS_MAX_SKILLS;
    let lines: String = (0..cap + 3).map(|i| line(i, 0)).collect();
    ok(&cli(store, &["ingest", "-"], Some(lines.as_bytes())));
    let read = store.create_token("prom", Scope::Read).await.unwrap().token;
    let app = server::router((**store).clone(), &Limits::default());
    let (_, first) = scrape_from(app.clone(), &read).await;
    assert_eq!(folded_completed(&first), Some(3), "s0500..s0502 folded");

    // The last folded skill becomes the busiest of all.
    let busier: String = (1..=5).map(|minute| line(cap + 2, minute)).collect();
    ok(&cli(store, &["ingest", "-"], Some(busier.as_bytes())));
    let (_, second) = scrape_from(app, &read).await;
    assert_eq!(folded_completed(&second), Some(3 + 5), "{second}");
    let own = |text: &str, skill: &str| {
        text.contains(&format!(
            r#"skill_metrics_invocations_total{{skill="{skill}",outcome="completed"}} "#
        ))
    };
    assert!(!own(&second, "s0502") && own(&second, "s0499"), "{second}");
    let (passed, said) = promtool(&second);
    assert!(passed, "promtool: {said}");

    // A new process chooses afresh: the busiest has its own series.
    let (_, fresh) = scrape(store, &read).await;
    assert!(own(&fresh, "s0502") && !own(&fresh, "s0499"), "{fresh}");
    assert_eq!(folded_completed(&fresh), Some(3));
}

on_both_backends!(shared: the_exposition_passes_promtool, the_folded_counter_never_falls);
