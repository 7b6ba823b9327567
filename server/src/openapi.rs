//! The OpenAPI document served at `/api/v1/openapi.json`. It is built from
//! the code: each handler's `#[utoipa::path]`, registered on the router by
//! `utoipa_axum::routes!` (so a route cannot exist without its entry), and
//! the read types' own schemas. The answers every authenticated route may
//! give (401, 403, 408, 413, 503) are added to each operation here.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// Every answer other than success: `{"error": "…"}`.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// What went wrong, in words; never a token or a password.
    pub(crate) error: String,
}

/// What `POST /api/v1/invocations` answers.
#[derive(serde::Serialize, ToSchema)]
pub(crate) struct Accepted {
    /// Invocations new to the store.
    pub(crate) inserted: u64,
    /// Invocations whose ids the store already had (counted once).
    pub(crate) duplicates: u64,
}

/// The name the bearer scheme goes by in the document.
const BEARER: &str = "bearer";

/// The document's fixed parts.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "skill-metrics",
        description = "Per-skill usage metrics of AI-assistant skills and tools: \
            the CLI's reads as JSON (the same bytes as `--json`), JSON Lines and \
            OTLP/HTTP logs in, Prometheus out. Every route but /healthz needs \
            `Authorization: Bearer TOKEN`; `read` tokens read, `ingest` tokens \
            write, `admin` tokens do both (`skill-metrics token create`)."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "read", description = "Reads (read or admin scope)"),
        (name = "ingest", description = "Writes (ingest or admin scope)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub(crate) struct ApiDoc;

/// Bearer authentication on every operation that does not opt out, and
/// the refusals each may answer with.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from `skill-metrics token create`"))
                    .build(),
            ),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            BEARER,
            Vec::<String>::new(),
        )]);
    }
}

/// A refusal with the error body.
fn refusal(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// A refusal of the OTLP receiver: a `google.rpc.Status` in the request's
/// encoding.
fn otlp_refusal(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(format!(
                "{description}. The body is a google.rpc.Status (code, message) in the \
                 request's encoding, as OTLP asks"
            ))
            .content(
                "application/x-protobuf",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::schema::Object::with_type(
                        utoipa::openapi::schema::Type::String,
                    )))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::schema::Object::with_type(
                        utoipa::openapi::schema::Type::Object,
                    )))
                    .build(),
            )
            .build(),
    )
}

/// The routes that need no token (their operations say `security(())`).
pub(crate) const OPEN_PATHS: [&str; 1] = ["/healthz"];

/// An answer described in words only: its body is not the error body.
fn bare(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(ResponseBuilder::new().description(description).build())
}

/// Adds to every operation the answers the layers in front of it give.
pub(crate) fn add_refusals(openapi: &mut OpenApi) {
    for (path, item) in &mut openapi.paths.paths {
        let open = OPEN_PATHS.contains(&path.as_str());
        // The OTLP receiver refuses in OTLP's own body (D106).
        let refusal = if crate::otlp::is_otlp_path(path) {
            otlp_refusal
        } else {
            refusal
        };
        let operations = [(&mut item.get, false), (&mut item.post, true)];
        for (operation, is_post) in operations {
            let Some(operation) = operation else { continue };
            let responses = &mut operation.responses.responses;
            if !open {
                responses.entry("401".into()).or_insert_with(|| {
                    refusal(
                        "No token, or one that is unknown or revoked; nothing was read or written",
                    )
                });
                responses.entry("403".into()).or_insert_with(|| {
                    refusal(
                        "The token's scope does not allow this route; nothing was read or written",
                    )
                });
            }
            responses.entry("408".into()).or_insert_with(|| {
                bare("The request took longer than the server allows (30 s); the body is empty")
            });
            if is_post {
                responses.entry("413".into()).or_insert_with(|| {
                    bare("The body is larger than the server takes (20 MiB); the body says so in plain text, or as the route's other errors do when the size shows only after decompression")
                });
            }
            responses
                .entry("503".into())
                .or_insert_with(|| refusal("The store cannot answer now; try again"));
        }
    }
}

/// The document, rendered once when the router is built.
#[derive(Clone)]
pub(crate) struct Document(pub(crate) Arc<String>);

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "read",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server", content_type = "application/json", body = Object))
)]
pub(crate) async fn document(State(doc): State<Document>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
        .into_response()
}
