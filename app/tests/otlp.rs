//! The OTLP/HTTP receiver, on both backends: Claude Code's events in
//! protobuf, JSON and gzip become exactly the expected invocations; hostile
//! bodies are answered by the specification and write nothing; a call
//! received live and imported from its transcript counts once.

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::Scope;
use http_body_util::BodyExt;
use importers::otlp::string_attribute as attr;
use infrastructure::testing::TestStore;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::json;
use server::Limits;
use tests::on_both_backends;
use tower::ServiceExt;

/// A `google.rpc.Status`, as OTLP error answers carry it.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
}

use crate::in_flight::{prompt, tool_result, tool_use, turn_end, write_lines};
use crate::transcripts::run;

/// A Claude Code event record with `attrs` besides its name.
pub(crate) fn event(name: &str, attrs: &[(&str, &str)]) -> LogRecord {
    let mut attributes: Vec<KeyValue> = attrs.iter().map(|(k, v)| attr(k, v)).collect();
    attributes.push(attr("event.name", name));
    LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!("claude_code.{name}"))),
        }),
        attributes,
        ..Default::default()
    }
}

fn export(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "claude-code")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// POSTs `body` to `path` with `content_type` (and gzip when asked); the
/// answer's status, headers and body.
pub(crate) async fn post(
    store: &TestStore,
    path: &str,
    token: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> (StatusCode, header::HeaderMap, Vec<u8>) {
    let mut request = Request::post(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type);
    if gzip {
        request = request.header(header::CONTENT_ENCODING, "gzip");
    }
    let app = server::router((**store).clone(), &Limits::default());
    let response = app
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub(crate) const PROTOBUF: &str = "application/x-protobuf";

pub(crate) fn claude_code_events() -> ExportLogsServiceRequest {
    let common = [("session.id", "live-1"), ("user.email", "me@example.com")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        common.iter().chain(extra).copied().collect()
    };
    export(vec![
        event(
            "tool_result",
            &with(&[
                ("tool_name", "Skill"),
                ("tool_use_id", "toolu_S1"),
                ("success", "true"),
                ("duration_ms", "1500"),
                ("tool_parameters", r#"{"skill_name":"plugin:deploy"}"#),
                ("event.timestamp", "2025-02-10T10:00:00.000Z"),
            ]),
        ),
        event(
            "tool_result",
            &with(&[
                ("tool_name", "Bash"),
                ("tool_use_id", "toolu_B1"),
                ("success", "false"),
                ("duration_ms", "250"),
                ("error", "Command failed with exit code 2"),
            ]),
        ),
        event(
            "tool_decision",
            &with(&[
                ("tool_name", "Write"),
                ("tool_use_id", "toolu_W1"),
                ("decision", "reject"),
            ]),
        ),
        event(
            "tool_decision",
            &with(&[("tool_name", "Read"), ("decision", "accept")]),
        ),
        event("user_prompt", &with(&[("prompt_length", "12")])),
        // A tool event without its tool: refused, the others still land.
        event("tool_result", &with(&[("success", "true")])),
    ])
}

async fn claude_code_events_become_invocations(store: &TestStore) {
    let token = store.create_token("cc", Scope::Ingest).await.unwrap().token;
    let body = claude_code_events().encode_to_vec();
    let (status, _, answer) = post(store, "/v1/logs", &token, PROTOBUF, false, body).await;
    assert_eq!(status, StatusCode::OK);
    let answer = ExportLogsServiceResponse::decode(&answer[..]).unwrap();
    let partial = answer.partial_success.expect("one record was refused");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("tool_name"),
        "{}",
        partial.error_message
    );
    let metrics = store.metrics(&[]).await.unwrap();
    let names: Vec<_> = metrics.iter().map(|m| m.skill_name.as_str()).collect();
    assert_eq!(names, ["Bash", "Write", "plugin:deploy"]);
    let deploy = &metrics[2];
    assert_eq!(
        (deploy.total_invocations, deploy.completed_invocations),
        (1, 1)
    );
    assert_eq!(deploy.total_duration_seconds, 1.5);
    assert_eq!(metrics[0].common_errors.get("NonZeroExit"), Some(&1));
    assert_eq!(metrics[1].common_errors.get("UserRejected"), Some(&1));
    let recent = store.recent(&Default::default(), 10).await.unwrap();
    let live = recent
        .iter()
        .find(|i| i.skill_name.as_str() == "plugin:deploy")
        .unwrap();
    assert_eq!(live.session_id.as_ref().map(|s| s.as_str()), Some("live-1"));
    assert_eq!(live.invoked_at.to_rfc3339(), "2025-02-10T10:00:00+00:00");
    let ctx = serde_json::to_string(&live.user_context).unwrap();
    assert!(!ctx.contains("example.com"), "no personal data kept: {ctx}");
    // An exporter's retry of the same request counts nothing twice; gzip
    // is the same request.
    let again = gzip(&claude_code_events().encode_to_vec());
    assert_eq!(
        post(store, "/v1/logs", &token, PROTOBUF, true, again)
            .await
            .0,
        StatusCode::OK
    );
    let total: i64 = store
        .metrics(&[])
        .await
        .unwrap()
        .iter()
        .map(|m| m.total_invocations)
        .sum();
    assert_eq!(total, 3);
    // The OTLP JSON mapping, with a number where a string is usual.
    let json_body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
    "timeUnixNano": "1739181600000000000",
    "body": {"stringValue": "claude_code.tool_result"},
    "attributes": [
        {"key": "tool_name", "value": {"stringValue": "Grep"}},
        {"key": "tool_use_id", "value": {"stringValue": "toolu_G1"}},
        {"key": "success", "value": {"boolValue": true}},
        {"key": "duration_ms", "value": {"intValue": "40"}}
    ]}]}]}]});
    let (status, _, answer) = post(
        store,
        "/v1/logs",
        &token,
        "application/json",
        false,
        json_body.to_string().into(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let grep = store.metrics(&["Grep"]).await.unwrap();
    assert_eq!(grep[0].total_duration_seconds, 0.04);
    assert_eq!(
        grep[0].first_invoked.unwrap().to_rfc3339(),
        "2025-02-10T10:00:00+00:00"
    );
}

async fn hostile_bodies_are_answered_and_write_nothing(store: &TestStore) {
    let token = store.create_token("cc", Scope::Ingest).await.unwrap().token;
    let read = store.create_token("r", Scope::Read).await.unwrap().token;
    let good = claude_code_events().encode_to_vec();
    let limit = Limits::default().max_body_bytes;
    let bomb = gzip(&vec![0u8; limit + 10 * 1024 * 1024]);
    assert!(bomb.len() < 1024 * 1024, "a small body: {}", bomb.len());
    let cases: Vec<(&str, &str, bool, Vec<u8>, StatusCode)> = vec![
        (
            "truncated protobuf",
            PROTOBUF,
            false,
            good[..good.len() / 2].to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong content type",
            "text/plain",
            false,
            good.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "gzip bomb",
            PROTOBUF,
            true,
            bomb,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "not gzip",
            PROTOBUF,
            true,
            good.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "30 MiB body",
            PROTOBUF,
            false,
            vec![0u8; 30 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "JSON of wrong types",
            "application/json",
            false,
            br#"{"resourceLogs": 7}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid UTF-8",
            "application/json",
            false,
            b"{\"resourceLogs\": [\xff]}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, content_type, gzipped, body, expected) in cases {
        let (status, _, answer) =
            post(store, "/v1/logs", &token, content_type, gzipped, body).await;
        assert_eq!(status, expected, "{what}");
        // The body of an OTLP error is a google.rpc.Status in the
        // request's encoding (a content type the server does not speak
        // gets its usual JSON error).
        if content_type == PROTOBUF {
            let status = RpcStatus::decode(&answer[..])
                .unwrap_or_else(|e| panic!("{what}: not a Status ({e})"));
            assert!(
                status.code > 0 && !status.message.is_empty(),
                "{what}: {status:?}"
            );
        } else if content_type == "application/json" {
            let status: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            assert!(status["code"].as_i64() > Some(0), "{what}: {status}");
            assert!(status["message"].is_string(), "{what}: {status}");
        }
    }
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "nothing written"
    );
    // 10,000 attributes on one record: refused as a partial success,
    // nothing written.
    let mut crowded = event("tool_result", &[("tool_name", "Edit"), ("success", "true")]);
    crowded
        .attributes
        .extend((0..10_000).map(|i| attr(&format!("k{i}"), "v")));
    let (status, _, body) = post(
        store,
        "/v1/logs",
        &token,
        PROTOBUF,
        false,
        export(vec![crowded]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer = ExportLogsServiceResponse::decode(&body[..]).unwrap();
    let partial = answer.partial_success.unwrap();
    assert_eq!(partial.rejected_log_records, 1);
    assert!(
        partial.error_message.contains("10003 attributes"),
        "{}",
        partial.error_message
    );
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "nothing written"
    );
    // A NUL in an attribute kept in user_context (which PostgreSQL's jsonb
    // cannot hold) is dropped, and the call is recorded on both backends.
    let nul = event(
        "tool_result",
        &[
            ("tool_name", "Edit"),
            ("success", "true"),
            ("prompt.id", "p\u{0}1"),
        ],
    );
    let (status, _, _) = post(
        store,
        "/v1/logs",
        &token,
        PROTOBUF,
        false,
        export(vec![nul]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let recent = store.recent(&Default::default(), 1).await.unwrap();
    assert_eq!(recent[0].user_context.as_ref().unwrap()["prompt.id"], "p1");
    store.revoke_token("cc").await.unwrap();
    assert_eq!(
        post(store, "/v1/logs", &token, PROTOBUF, false, good.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(store, "/v1/logs", "nope", PROTOBUF, false, good.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(store, "/v1/logs", &read, PROTOBUF, false, good)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        store.metrics(&[]).await.unwrap().len(),
        1,
        "nothing else written"
    );
    // Other signals: accepted and ignored.
    let ingest = store
        .create_token("cc2", Scope::Ingest)
        .await
        .unwrap()
        .token;
    for path in ["/v1/metrics", "/v1/traces"] {
        assert_eq!(
            post(store, path, &ingest, PROTOBUF, false, vec![]).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
}

/// A Skill call as its transcript holds it.
fn transcript(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("proj/live-1.jsonl");
    write_lines(
        &file,
        &[
            prompt("p1", 0, "deploy"),
            tool_use(
                "a1",
                1,
                "toolu_S1",
                "Skill",
                json!({"skill": "plugin:deploy"}),
            ),
            tool_result("r1", 2, "toolu_S1", "Launching skill: plugin:deploy"),
            turn_end("t1", 3),
        ],
    );
    file
}

async fn a_call_received_live_and_imported_counts_once(store: &TestStore) {
    let token = store.create_token("cc", Scope::Ingest).await.unwrap().token;
    let dir = tempfile::tempdir().unwrap();
    let file = transcript(dir.path());
    let live = || claude_code_events().encode_to_vec();
    let count = || async { store.metrics(&["plugin:deploy"]).await.unwrap()[0].total_invocations };
    // Live first, then the transcript.
    post(store, "/v1/logs", &token, PROTOBUF, false, live()).await;
    run(store, &["import", "claude-code", file.to_str().unwrap()]);
    assert_eq!(count().await, 1);
    // And the other way round, on a second store.
    let other = match store.backend() {
        sea_orm::DbBackend::Postgres => TestStore::postgres().await.expect("a server"),
        _ => TestStore::sqlite().await,
    };
    run(&other, &["import", "claude-code", file.to_str().unwrap()]);
    let token = other.create_token("cc", Scope::Ingest).await.unwrap().token;
    post(&other, "/v1/logs", &token, PROTOBUF, false, live()).await;
    assert_eq!(
        other.metrics(&["plugin:deploy"]).await.unwrap()[0].total_invocations,
        1
    );
}

on_both_backends!(
    shared: claude_code_events_become_invocations,
    hostile_bodies_are_answered_and_write_nothing,
    a_call_received_live_and_imported_counts_once,
);
