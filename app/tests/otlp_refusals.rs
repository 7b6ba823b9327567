//! The OTLP receiver refuses a token as OTLP asks of every 4xx (D106): a
//! `google.rpc.Status` in the request's encoding, for a missing, unknown
//! or under-scoped token alike, and nothing written.

use axum::http::StatusCode;
use domain::Scope;
use infrastructure::testing::TestStore;
use prost::Message;
use tests::on_both_backends;

use crate::otlp::{PROTOBUF, RpcStatus, claude_code_events, post};

async fn a_refused_token_gets_an_otlp_status(store: &TestStore) {
    let read = store
        .create_token("reader", Scope::Read)
        .await
        .unwrap()
        .token;
    let body = claude_code_events().encode_to_vec();
    // (token, HTTP status, gRPC code, a word of the message)
    let cases = [
        ("", StatusCode::UNAUTHORIZED, 16, "Authorization"),
        ("smk_nope", StatusCode::UNAUTHORIZED, 16, "unknown"),
        (read.as_str(), StatusCode::FORBIDDEN, 7, "scope"),
    ];
    for (token, status, code, word) in cases {
        let (got, headers, answer) =
            post(store, "/v1/logs", token, PROTOBUF, false, body.clone()).await;
        assert_eq!(got, status, "{token:?}");
        // A 401 names the scheme that would be accepted, as HTTP asks.
        let scheme = headers.get("www-authenticate").map(|v| v.to_str().unwrap());
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(scheme, Some("Bearer"), "{token:?}");
        } else {
            assert_eq!(scheme, None, "{token:?}");
        }
        let decoded = RpcStatus::decode(&answer[..])
            .unwrap_or_else(|e| panic!("{token:?}: not a Status ({e})"));
        assert_eq!(decoded.code, code, "{token:?}: {decoded:?}");
        assert!(decoded.message.contains(word), "{token:?}: {decoded:?}");

        // The same in OTLP's JSON mapping.
        let (got, _, answer) = post(
            store,
            "/v1/logs",
            token,
            "application/json",
            false,
            b"{}".to_vec(),
        )
        .await;
        assert_eq!(got, status, "{token:?}");
        let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(json["code"], code, "{token:?}: {json}");
        assert!(json["message"].as_str().unwrap().contains(word), "{json}");
    }
    // The API's routes keep their JSON refusals.
    let (got, _, answer) = post(
        store,
        "/api/v1/invocations",
        "smk_nope",
        PROTOBUF,
        false,
        vec![],
    )
    .await;
    assert_eq!(got, StatusCode::UNAUTHORIZED);
    let json: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("unknown"),
        "{json}"
    );
    assert!(
        store.metrics(&[]).await.unwrap().is_empty(),
        "nothing written"
    );
}

on_both_backends!(a_refused_token_gets_an_otlp_status);
