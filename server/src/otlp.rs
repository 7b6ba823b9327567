//! OTLP/HTTP: `POST /v1/logs` records Claude Code's tool events;
//! `/v1/metrics` and `/v1/traces` are accepted and ignored, so a client
//! configured for every signal logs no errors. Answers follow the OTLP
//! specification: 200 (with a partial success counting refused records),
//! 400 for a body that does not decode, 413 past the size limit after
//! decompression, 415 for another content type or encoding.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use importers::otlp::{Encoding, decode_logs, encode_logs_response, invocations};

use crate::Shared;
use crate::error::ApiError;

/// The body's encoding, from its `Content-Type`: 415 for any other.
fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Encoding::from_content_type(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {value:?}: send application/x-protobuf or application/json"),
        )
    })
}

/// The body as sent, inflated when it is gzip, never past `limit` bytes:
/// a small body that would inflate beyond it is stopped there, not
/// inflated into memory.
fn inflate(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::GzDecoder::new(&body[..])
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad gzip: {e}")))?;
            if out.len() > limit {
                return Err(too_large(limit));
            }
            Ok(out.into())
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content encoding {other:?}: send gzip or none"),
        )),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is over {limit} bytes after decompression"),
    )
}

fn answer(bytes: Vec<u8>, encoding: Encoding) -> Response {
    ([(header::CONTENT_TYPE, encoding.content_type())], bytes).into_response()
}

/// `POST /v1/logs`.
#[utoipa::path(
    post,
    path = "/v1/logs",
    tag = "ingest",
    request_body(
        description = "An OTLP ExportLogsServiceRequest, gzip or not (Content-Encoding)",
        content(
            (String = "application/x-protobuf"),
            (Object = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "ExportLogsServiceResponse, in the request's encoding; partial_success counts records that were not invocations", content(
            (String = "application/x-protobuf"),
            (Object = "application/json"),
        )),
        (status = 400, description = "The body cannot be decoded (or inflated); a google.rpc.Status in the request's encoding", content(
            (String = "application/x-protobuf"),
            (Object = "application/json"),
        )),
        (status = 415, description = "Neither protobuf nor JSON", body = crate::openapi::ErrorBody),
    )
)]
pub(crate) async fn logs(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let encoding = match encoding(&headers) {
        Ok(encoding) => encoding,
        Err(e) => return e.into_response(),
    };
    // Read here, not by an extractor, so that a body past the limit is
    // answered as OTLP asks too; reading stops at the limit.
    let limit = shared.limits.max_body_bytes;
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(_) => return status_answer(&too_large(limit), encoding),
    };
    match receive(&shared, &headers, body, encoding).await {
        Ok(answer) => answer,
        Err(e) => status_answer(&e, encoding),
    }
}

/// A `google.rpc.Status`, the body OTLP gives every 4xx and 5xx answer.
#[derive(Clone, PartialEq, prost::Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Whether `path` is one of the OTLP receiver's, whose refusals (a token
/// missing, unknown or of the wrong scope included) are `Status` bodies.
pub(crate) fn is_otlp_path(path: &str) -> bool {
    matches!(path, "/v1/logs" | "/v1/metrics" | "/v1/traces")
}

/// A refusal of a request to `path` with `headers`: on an OTLP path, the
/// `Status` body in the request's encoding that OTLP asks of every 4xx;
/// elsewhere, or in a content type OTLP does not speak, the API's JSON.
pub(crate) fn refusal(path: &str, headers: &HeaderMap, e: ApiError) -> Response {
    match encoding(headers) {
        Ok(encoding) if is_otlp_path(path) => status_answer(&e, encoding),
        _ => e.into_response(),
    }
}

/// `e` as OTLP answers it: its HTTP status, and a `Status` in the
/// request's encoding (protobuf, or its JSON mapping).
fn status_answer(e: &ApiError, encoding: Encoding) -> Response {
    // The gRPC code nearest the HTTP status, as the Status message wants.
    let code = match e.status() {
        StatusCode::BAD_REQUEST => 3,             // INVALID_ARGUMENT
        StatusCode::UNAUTHORIZED => 16,           // UNAUTHENTICATED
        StatusCode::FORBIDDEN => 7,               // PERMISSION_DENIED
        StatusCode::PAYLOAD_TOO_LARGE => 8,       // RESOURCE_EXHAUSTED
        StatusCode::SERVICE_UNAVAILABLE => 14,    // UNAVAILABLE
        StatusCode::UNSUPPORTED_MEDIA_TYPE => 12, // UNIMPLEMENTED
        _ => 2,                                   // UNKNOWN
    };
    let status = Status {
        code,
        message: e.message().to_owned(),
    };
    let body = match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&status),
        Encoding::Json => serde_json::json!({"code": status.code, "message": status.message})
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        e.status(),
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    e.add_headers(response.headers_mut());
    response
}

/// Inflates and decodes (on a blocking thread: up to 20 MiB of work that
/// must not hold up the server's other requests), maps and records.
async fn receive(
    shared: &Shared,
    headers: &HeaderMap,
    body: Bytes,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let limit = shared.limits.max_body_bytes;
    let headers = headers.clone();
    let events = tokio::task::spawn_blocking(move || {
        let body = inflate(&headers, body, limit)?;
        let request =
            decode_logs(&body, encoding).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
        Ok::<_, ApiError>(invocations(&request))
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping"))??;
    let received = events.invocations.len();
    if received > 0 {
        record(shared, events.invocations).await?;
    }
    tracing::debug!(received, rejected = events.rejected, "otlp logs");
    let message = events.first_error.unwrap_or_default();
    Ok(answer(
        encode_logs_response(events.rejected, &message, encoding),
        encoding,
    ))
}

/// Records a request's invocations in one transaction (shared with the
/// requests beside it); a store that cannot take them now is a 503, which
/// exporters retry (the ids make a retry count once).
async fn record(shared: &Shared, invocations: Vec<domain::Invocation>) -> Result<(), ApiError> {
    shared
        .writer
        .write(&shared.store, invocations)
        .await
        .map_err(|refused| {
            let answer = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store cannot take events now; retry",
            );
            // Only a busy store says when; otherwise the exporter's own
            // backoff decides.
            match refused.retry_after {
                Some(seconds) => answer.retry_after(seconds),
                None => answer,
            }
        })
}

/// `POST /v1/metrics`: accepted, ignored.
#[utoipa::path(
    post,
    path = "/v1/metrics",
    tag = "ingest",
    request_body(description = "An OTLP ExportMetricsServiceRequest; ignored", content((String = "application/x-protobuf"), (Object = "application/json"))),
    responses((status = 200, description = "An empty ExportMetricsServiceResponse", content((String = "application/x-protobuf"), (Object = "application/json"))))
)]
pub(crate) async fn metrics_ignored(
    state: State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ignored(state, headers, body).await
}

/// `POST /v1/traces`: accepted, ignored.
#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "ingest",
    request_body(description = "An OTLP ExportTraceServiceRequest; ignored", content((String = "application/x-protobuf"), (Object = "application/json"))),
    responses((status = 200, description = "An empty ExportTraceServiceResponse", content((String = "application/x-protobuf"), (Object = "application/json"))))
)]
pub(crate) async fn traces_ignored(
    state: State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    ignored(state, headers, body).await
}

/// Other signals: decoded far enough to answer as OTLP says, then dropped.
async fn ignored(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let encoding = encoding(&headers)?;
    inflate(&headers, body, shared.limits.max_body_bytes)?;
    // An empty message is a complete answer in both encodings.
    let empty = match encoding {
        Encoding::Protobuf => Vec::new(),
        Encoding::Json => b"{}".to_vec(),
    };
    Ok(answer(empty, encoding))
}
