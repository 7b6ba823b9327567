//! `skill-metrics serve`: one HTTP server over one store. Every route but
//! `/healthz` needs `Authorization: Bearer TOKEN` (tokens: `skill-metrics
//! token …`); a route's scope is checked before it reads or writes.
//! Requests are bounded in size, time and number at the router, once;
//! connections in number, and in the time a request's head may take, where
//! they are accepted.

mod api;
mod auth;
mod dashboard;
mod error;
mod group;
mod openapi;
mod otlp;
mod prometheus;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use domain::Scope;
use infrastructure::{LedgerState, SkillMetricsStore};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use prometheus::MAX_SKILLS as PROMETHEUS_MAX_SKILLS;

/// The header of `/healthz` that names the store served ([`SkillMetricsStore::store_id`]).
pub const STORE_ID_HEADER: &str = "x-skill-metrics-store";

/// The address `serve` listens on by default: loopback, OTLP/HTTP's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";

/// Limits on every connection and request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (20 MiB, as OTLP receivers allow).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Requests handled at once; more wait their turn.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait, unaccepted, until one closes.
    pub max_connections: usize,
    /// Longest a connection may take to send a request's head (its line
    /// and headers), idle time before it included; then it is closed.
    pub header_read_timeout: Duration,
    /// Longest a write to a connection may wait for the client to take
    /// what was sent before (a client that stops reading); then the
    /// connection is closed. Each write that goes through starts it anew.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
            max_connections: 512,
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What every handler can reach: the store, and the limits in force.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: SkillMetricsStore,
    pub(crate) limits: Limits,
    pub(crate) document: openapi::Document,
    pub(crate) writer: group::GroupWriter,
    pub(crate) exposed: prometheus::Exposed,
}

impl FromRef<Shared> for openapi::Document {
    fn from_ref(shared: &Shared) -> Self {
        shared.document.clone()
    }
}

impl FromRef<Shared> for SkillMetricsStore {
    fn from_ref(shared: &Shared) -> Self {
        shared.store.clone()
    }
}

/// `GET /healthz`: the process answers. Needs no token.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, description = "The process answers; the header x-skill-metrics-store names the store it serves (when the store answers)", body = String, content_type = "text/plain"))
)]
async fn healthz(State(store): State<SkillMetricsStore>) -> axum::response::Response {
    // Which store this is (when the store answers), so that `skill-metrics
    // dashboard` can tell a server of its own store from whatever else
    // answers at an address a dead server left behind.
    match store.store_id().await {
        Ok(Some(id)) => ([(STORE_ID_HEADER, id)], "ok\n").into_response(),
        _ => "ok\n".into_response(),
    }
}

/// `GET /readyz`: the store answers and its migrations are current.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "The store answers and its migrations are current", body = String, content_type = "text/plain"),
        (status = 503, description = "The store does not answer, or its migrations are not current", body = String, content_type = "text/plain"),
    )
)]
async fn readyz(State(store): State<SkillMetricsStore>) -> impl IntoResponse {
    match store.migration_status().await {
        Ok(entries) if entries.iter().all(|e| e.state == LedgerState::Matches) => {
            (StatusCode::OK, "ready\n".to_owned())
        }
        Ok(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "migrations are not current: run `skill-metrics migrate status`\n".to_owned(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the store does not answer\n".to_owned(),
            )
        }
    }
}

/// Every route, each with its OpenAPI entry, and the document they make.
fn routes(store: &SkillMetricsStore) -> (Router<Shared>, utoipa::openapi::OpenApi) {
    let read = OpenApiRouter::new()
        .routes(routes!(api::metrics))
        .routes(routes!(api::metrics_of))
        .routes(routes!(api::summary))
        .routes(routes!(api::summary_range))
        .routes(routes!(api::overview))
        .routes(routes!(api::insights))
        .routes(routes!(api::timeline))
        .routes(routes!(api::recent))
        .routes(routes!(api::search))
        .routes(routes!(api::sessions))
        .routes(routes!(api::session))
        .routes(routes!(prometheus::metrics))
        .routes(routes!(openapi::document))
        .route_layer(from_fn(|r, n| auth::require(Scope::Read, r, n)));
    let ingest = OpenApiRouter::new()
        .routes(routes!(api::post_invocations))
        .routes(routes!(otlp::logs))
        .routes(routes!(otlp::metrics_ignored))
        .routes(routes!(otlp::traces_ignored))
        .route_layer(from_fn(|r, n| auth::require(Scope::Ingest, r, n)));
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(read)
        .merge(ingest)
        .routes(routes!(readyz))
        .layer(from_fn_with_state(store.clone(), auth::authenticate))
        // Added after the token check, so the only route without one
        // (openapi::OPEN_PATHS).
        .routes(routes!(healthz))
        .split_for_parts();
    // The dashboard's page and assets check the session cookie themselves
    // (a browser without one gets a page saying what to do), and are not
    // part of the API document.
    let router = router
        .route("/", axum::routing::get(dashboard::index))
        .route("/assets/{name}", axum::routing::get(dashboard::asset))
        .route("/login", axum::routing::get(dashboard::login));
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    openapi::add_refusals(&mut doc);
    (router, doc)
}

/// The whole server as a router over `store`.
pub fn router(store: SkillMetricsStore, limits: &Limits) -> Router {
    let (routes, doc) = routes(&store);
    let document = openapi::Document(std::sync::Arc::new(
        doc.to_pretty_json()
            .expect("an OpenAPI document built in code serialises"),
    ));
    routes
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(
                    |request: &axum::http::Request<_>| {
                        let id = request
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        // The path only: a query could hold anything.
                        tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
                    },
                ))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                ))
                // One limit for the whole server: a layer on a router wraps each
                // route apart, and a plain ConcurrencyLimitLayer would then
                // allow this many per route.
                .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests)),
        )
        .with_state(Shared {
            store,
            limits: limits.clone(),
            document,
            writer: group::GroupWriter::default(),
            exposed: prometheus::Exposed::default(),
        })
}

/// Serves `store` on `listener` until `shutdown` completes, then stops
/// taking connections, lets the requests in flight finish, and waits for
/// the store's background records. Nothing answered 200 is lost.
///
/// At most [`Limits::max_connections`] connections are open at once: the
/// next waits in the listen queue until one closes. A connection that
/// takes longer than [`Limits::header_read_timeout`] to send a request's
/// head, or stays idle that long between requests, is closed, and so is
/// one whose client takes nothing of an answer for
/// [`Limits::write_timeout`], so that neither silent nor deaf connections
/// can hold the places, nor hold up a shutdown past those bounds. Only
/// HTTP/1.1 is spoken (what OTLP/HTTP exporters, browsers and `push`
/// use); a client that opens with HTTP/2's preface is closed.
///
/// # Errors
/// None at present: a failed accept is logged and retried. The `Result`
/// is kept for the callers' sake.
pub async fn serve(
    store: SkillMetricsStore,
    listener: tokio::net::TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store.clone(), &limits);
    let places = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let open = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let place = tokio::select! {
            place = places.clone().acquire_owned() => place.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Most likely no descriptor left for the moment: wait
                    // rather than spin, then try again.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_timeout));
        let io = hyper_util::rt::TokioIo::new(Box::pin(stream));
        let connection = open.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    open.shutdown().await;
    store.flush().await;
    Ok(())
}

/// A failure of one connection before it was accepted: the next may be
/// fine at once.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
    )
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// The lines that point Claude Code at a server on `address` with `token`.
pub fn claude_code_environment(address: &str, token: &str) -> String {
    format!(
        "export CLAUDE_CODE_ENABLE_TELEMETRY=1\n\
         export OTEL_LOGS_EXPORTER=otlp\n\
         export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n\
         export OTEL_EXPORTER_OTLP_ENDPOINT=http://{address}\n\
         export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer {token}\"\n\
         export OTEL_LOG_TOOL_DETAILS=1\n"
    )
}
