//! The server's API over a real store, on both backends: tokens and
//! scopes, all-or-nothing posts, limits, and reads byte-identical to the
//! CLI's `--json`.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::Scope;
use http_body_util::BodyExt;
use infrastructure::testing::TestStore;
use server::Limits;
use tests::on_both_backends;
use tower::ServiceExt;

use crate::support::{cli, ok};

/// One request to a fresh router over `store`: the status and the body.
pub(crate) async fn call(
    store: &TestStore,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let app = server::router((**store).clone(), &Limits::default());
    let response = app
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) const LINES: &str = concat!(
    r#"{"id":"00000000-0000-4000-8000-0000000000a1","skill_name":"deploy","invoked_at":"2025-02-10T09:00:00Z","completed":true,"duration_seconds":2.5,"workflow_path":"ci/deploy","session_id":"s-1"}"#,
    "\n",
    r#"{"skill_name":"review","invoked_at":"2025-02-10T10:00:00Z","completed":false,"error_type":"Timeout","session_id":"s-1"}"#,
    "\n",
);

async fn tokens_and_scopes_guard_every_route(store: &TestStore) {
    let ingest = store
        .create_token("ingest", Scope::Ingest)
        .await
        .unwrap()
        .token;
    let read = store.create_token("read", Scope::Read).await.unwrap().token;
    let admin = store
        .create_token("admin", Scope::Admin)
        .await
        .unwrap()
        .token;
    assert_eq!(
        call(store, "GET", "/healthz", None, vec![]).await.0,
        StatusCode::OK
    );
    for token in [None, Some("smk_unknown")] {
        for (method, path) in [
            ("GET", "/readyz"),
            ("GET", "/api/v1/metrics"),
            ("POST", "/api/v1/invocations"),
        ] {
            let (status, body) = call(store, method, path, token, LINES.into()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}: {body}"
            );
        }
    }
    assert_eq!(
        call(store, "GET", "/readyz", Some(&read), vec![]).await.0,
        StatusCode::OK
    );
    // A read token may not post, an ingest token may not read.
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&read),
        LINES.into(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("needs ingest"), "{body}");
    assert_eq!(
        call(store, "GET", "/api/v1/metrics", Some(&ingest), vec![])
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "nothing written"
    );
    // Ingest and admin may post; read and admin may read.
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&ingest),
        LINES.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"inserted\":2"), "{body}");
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&admin),
        LINES.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("\"duplicates\":2"),
        "the same lines count once: {body}"
    );
    assert_eq!(
        call(store, "GET", "/api/v1/metrics", Some(&admin), vec![])
            .await
            .0,
        StatusCode::OK
    );
    // Revoked: refused at the next request.
    store.revoke_token("read").await.unwrap();
    assert_eq!(
        call(store, "GET", "/api/v1/metrics", Some(&read), vec![])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

async fn a_bad_line_writes_nothing_and_is_named(store: &TestStore) {
    let token = store.create_token("t", Scope::Ingest).await.unwrap().token;
    let bad = format!("{LINES}{}\n", r#"{"skill_name":"x","completed":"yes"}"#);
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&token),
        bad.into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.contains("line 3") && body.contains("completed"),
        "{body}"
    );
    let (status, _) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&token),
        b"not json".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(store, "POST", "/api/v1/invocations", Some(&token), vec![]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let big = vec![b' '; Limits::default().max_body_bytes + 1];
    let (status, _) = call(store, "POST", "/api/v1/invocations", Some(&token), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "nothing written"
    );
    // One object alone is a body too.
    let one = r#"{"skill_name":"solo","completed":true}"#;
    assert_eq!(
        call(
            store,
            "POST",
            "/api/v1/invocations",
            Some(&token),
            one.into()
        )
        .await
        .0,
        StatusCode::OK
    );
}

async fn reads_answer_what_the_cli_prints(store: &TestStore) {
    let token = store.create_token("t", Scope::Admin).await.unwrap().token;
    call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&token),
        LINES.into(),
    )
    .await;
    for (path, args) in [
        ("/api/v1/metrics", vec!["metrics", "--json"]),
        (
            "/api/v1/metrics?skill=review&skill=deploy&skill=nope",
            vec!["metrics", "review", "deploy", "nope", "--json"],
        ),
        (
            "/api/v1/metrics/deploy",
            vec!["metrics", "deploy", "--json"],
        ),
        (
            "/api/v1/recent?limit=5",
            vec!["recent", "--limit", "5", "--json"],
        ),
        (
            "/api/v1/search?q=deploy",
            vec!["search", "deploy", "--json"],
        ),
        (
            "/api/v1/sessions/s-1",
            vec!["session", "show", "s-1", "--json"],
        ),
        (
            "/api/v1/sessions?limit=5",
            vec!["session", "list", "--limit", "5", "--json"],
        ),
        (
            "/api/v1/timeline/deploy?bucket=hour&tz=Europe/Berlin",
            vec![
                "timeline",
                "deploy",
                "--bucket",
                "hour",
                "--tz",
                "Europe/Berlin",
                "--json",
            ],
        ),
        (
            "/api/v1/timeline/deploy?project=",
            vec!["timeline", "deploy", "--project", "", "--json"],
        ),
        (
            "/api/v1/timeline/deploy?project=%2Fnope",
            vec!["timeline", "deploy", "--project", "/nope", "--json"],
        ),
        ("/api/v1/summary", vec!["summary", "--stored", "--json"]),
        (
            "/api/v1/summary/range?since=2025-01-01T00:30:00Z&until=2030-01-01T00:00:00%2B01:00",
            vec![
                "summary",
                "--since",
                "2025-01-01T00:30:00Z",
                "--until",
                "2030-01-01T00:00:00+01:00",
                "--json",
            ],
        ),
        (
            "/api/v1/summary/range?project=",
            vec!["summary", "--project", "", "--json"],
        ),
    ] {
        let (status, body) = call(store, "GET", path, Some(&token), vec![]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body, ok(&cli(store, &args, None)), "{path}");
    }
    assert_eq!(
        call(store, "GET", "/api/v1/metrics/nope", Some(&token), vec![])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(store, "GET", "/api/v1/sessions/nope", Some(&token), vec![])
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = call(
        store,
        "GET",
        "/api/v1/timeline/deploy?tz=Mars",
        Some(&token),
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

on_both_backends!(
    shared: tokens_and_scopes_guard_every_route,
    a_bad_line_writes_nothing_and_is_named,
    reads_answer_what_the_cli_prints,
);

/// A post that finds the store held past its busy timeout (a rebuild of a
/// large store, say) is a 503 with `Retry-After`, names the reason, and
/// writes nothing; once the store is free the same post goes through.
async fn a_busy_store_answers_503_with_retry_after(store: &TestStore) {
    let token = store
        .create_token("ingest", Scope::Ingest)
        .await
        .unwrap()
        .token;
    let impatient = tests::impatient_store(store, 300).await;
    let post = |app: axum::Router| {
        let request = Request::builder()
            .method("POST")
            .uri("/api/v1/invocations")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(LINES))
            .unwrap();
        app.oneshot(request)
    };
    let holder = tests::hold_the_store(store).await;
    let response = post(server::router(impatient.clone(), &Limits::default()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let wait = response.headers()[header::RETRY_AFTER].to_str().unwrap();
    assert!(wait.parse::<u64>().unwrap() >= 1, "{wait}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("busy") && body.contains("try again"),
        "{body}"
    );
    holder.rollback().await.unwrap();
    assert!(impatient.metrics(&["deploy"]).await.unwrap().is_empty());
    let response = post(server::router(impatient, &Limits::default()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(store.metrics(&["deploy"]).await.unwrap().len(), 1);
}

on_both_backends!(shared: a_busy_store_answers_503_with_retry_after);
