//! The OpenAPI document at `/api/v1/openapi.json` describes every route
//! the server has, and the server's real answers validate against the
//! schemas it gives, on both backends.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use domain::Scope;
use infrastructure::testing::TestStore;
use serde_json::Value;
use tests::on_both_backends;

use crate::serve::{LINES, call};

/// Every route the server answers: (method, path).
const ROUTES: [(&str, &str); 19] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/metrics"),
    ("get", "/api/v1/metrics/{skill}"),
    ("get", "/api/v1/summary"),
    ("get", "/api/v1/summary/range"),
    ("get", "/api/v1/overview"),
    ("get", "/api/v1/insights"),
    ("get", "/api/v1/timeline/{skill}"),
    ("get", "/api/v1/recent"),
    ("get", "/api/v1/search"),
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{id}"),
    ("post", "/api/v1/invocations"),
    ("post", "/v1/logs"),
    ("post", "/v1/metrics"),
    ("post", "/v1/traces"),
];

/// The schema of `status`'s JSON answer to `method path`.
fn answer_schema<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "no JSON schema for {status} of {method} {path}"
    );
    schema
}

/// Checks `answer` against `schema`, with the document's component schemas
/// made strict: an object may hold no property its schema does not name.
fn check(doc: &Value, schema: &Value, answer: &str, what: &str) {
    let mut defs = doc["components"]["schemas"].clone();
    // Schemas that others extend (`allOf`, from a flattened struct) stay
    // open; the one that extends them is closed with unevaluatedProperties.
    let extended: BTreeSet<String> = defs
        .as_object()
        .unwrap()
        .values()
        .filter_map(|def| def.get("allOf")?.as_array())
        .flatten()
        .filter_map(|part| part.get("$ref")?.as_str())
        .map(|r| r.trim_start_matches("#/components/schemas/").to_owned())
        .collect();
    for (name, def) in defs.as_object_mut().unwrap() {
        if extended.contains(name) {
            continue;
        }
        if def.get("allOf").is_some() {
            def["unevaluatedProperties"] = Value::Bool(false);
        } else if def.get("properties").is_some() {
            def["additionalProperties"] = Value::Bool(false);
        }
    }
    let mut root = schema.clone();
    root["$defs"] = defs;
    let root: Value = serde_json::from_str(
        &serde_json::to_string(&root)
            .unwrap()
            .replace("#/components/schemas/", "#/$defs/"),
    )
    .unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let instance: Value =
        serde_json::from_str(answer).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {answer}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{answer}");
}

async fn the_document_describes_every_route_and_every_answer(store: &TestStore) {
    let read = store.create_token("r", Scope::Read).await.unwrap().token;
    let ingest = store.create_token("i", Scope::Ingest).await.unwrap().token;
    let path = "/api/v1/openapi.json";
    assert_eq!(
        call(store, "GET", path, None, vec![]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(store, "GET", path, Some(&ingest), vec![]).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, text) = call(store, "GET", path, Some(&read), vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(documented, expected);
    for (method, path) in &expected {
        let responses = &doc["paths"][path][method]["responses"];
        assert!(responses.get("200").is_some(), "{method} {path}: no 200");
        let open = path == "/healthz";
        for status in ["401", "403"] {
            assert_eq!(
                responses.get(status).is_none(),
                open,
                "{method} {path}: {status}"
            );
        }
        // Every documented route exists: a wrong token gets 401 from it,
        // not 404 or 405 from the router.
        if !open {
            let concrete = path.replace("{skill}", "x").replace("{id}", "x");
            let (status, _) = call(
                store,
                &method.to_uppercase(),
                &concrete,
                Some("smk_nope"),
                vec![],
            )
            .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }

    // Real answers over real data, against the document's schemas.
    let context = concat!(
        r#"{"skill_name":"deploy","invoked_at":"2025-02-10T11:00:00Z","completed":true,"duration_seconds":4,"#,
        r#""session_id":"s-1","project_path":"/work/p","follow_up_actions":["git commit"],"user_context":{"model":"x","n":2}}"#,
        "\n"
    );
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&ingest),
        format!("{LINES}{context}").into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    check(
        &doc,
        answer_schema(&doc, "post", "/api/v1/invocations", 200),
        &body,
        "POST invocations",
    );
    let (status, body) = call(
        store,
        "POST",
        "/api/v1/invocations",
        Some(&ingest),
        b"{\"skill_name\":1}".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    check(
        &doc,
        answer_schema(&doc, "post", "/api/v1/invocations", 422),
        &body,
        "422",
    );
    store.refresh_summary().await.unwrap();

    for (template, concrete) in [
        ("/api/v1/metrics", "/api/v1/metrics"),
        (
            "/api/v1/metrics",
            "/api/v1/metrics?skill=deploy&skill=review",
        ),
        ("/api/v1/metrics/{skill}", "/api/v1/metrics/deploy"),
        ("/api/v1/summary", "/api/v1/summary"),
        (
            "/api/v1/summary/range",
            "/api/v1/summary/range?since=2025-01-01T00:00:00Z&project=",
        ),
        (
            "/api/v1/overview",
            "/api/v1/overview?since=2025-02-09T00:00:00Z&until=2025-02-12T00:00:00Z&kind=skills",
        ),
        (
            "/api/v1/insights",
            "/api/v1/insights?window=14d&until=2025-02-14T00:00:00Z&min_usage=1",
        ),
        (
            "/api/v1/timeline/{skill}",
            "/api/v1/timeline/deploy?bucket=hour",
        ),
        ("/api/v1/recent", "/api/v1/recent?limit=5"),
        ("/api/v1/search", "/api/v1/search?q=deploy"),
        ("/api/v1/sessions", "/api/v1/sessions"),
        ("/api/v1/sessions/{id}", "/api/v1/sessions/s-1"),
    ] {
        let (status, body) = call(store, "GET", concrete, Some(&read), vec![]).await;
        assert_eq!(status, StatusCode::OK, "{concrete}: {body}");
        assert!(
            body.len() > 2,
            "{concrete} answered nothing to check: {body}"
        );
        check(
            &doc,
            answer_schema(&doc, "get", template, 200),
            &body,
            concrete,
        );
    }
    for (template, concrete, status, token) in [
        (
            "/api/v1/metrics/{skill}",
            "/api/v1/metrics/nope",
            404,
            Some(read.as_str()),
        ),
        (
            "/api/v1/sessions/{id}",
            "/api/v1/sessions/nope",
            404,
            Some(read.as_str()),
        ),
        (
            "/api/v1/insights",
            "/api/v1/insights?window=7x",
            400,
            Some(read.as_str()),
        ),
        ("/api/v1/metrics", "/api/v1/metrics", 401, None),
        (
            "/api/v1/metrics",
            "/api/v1/metrics",
            403,
            Some(ingest.as_str()),
        ),
    ] {
        let (got, body) = call(store, "GET", concrete, token, vec![]).await;
        assert_eq!(got.as_u16(), status, "{concrete}: {body}");
        check(
            &doc,
            answer_schema(&doc, "get", template, status),
            &body,
            concrete,
        );
    }
}

on_both_backends!(the_document_describes_every_route_and_every_answer);
