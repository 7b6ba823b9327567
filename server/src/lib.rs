//! `skill-metrics serve`: one HTTP server over one store. Every route but
//! `/healthz` needs `Authorization: Bearer TOKEN` (tokens: `skill-metrics
//! token …`); a route's scope is checked before it reads or writes.
//! Requests are bounded in size, time and number at the router, once.

mod api;
mod auth;
mod error;
mod otlp;
mod prometheus;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use domain::Scope;
use infrastructure::{LedgerState, SkillMetricsStore};
use tower::ServiceBuilder;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use prometheus::MAX_SKILLS as PROMETHEUS_MAX_SKILLS;

/// The address `serve` listens on by default: loopback, OTLP/HTTP's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";

/// Limits on every request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes (20 MiB, as OTLP receivers allow).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Requests handled at once; more wait their turn.
    pub max_concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
        }
    }
}

/// What every handler can reach: the store, and the limits in force.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: SkillMetricsStore,
    pub(crate) limits: Limits,
}

impl FromRef<Shared> for SkillMetricsStore {
    fn from_ref(shared: &Shared) -> Self {
        shared.store.clone()
    }
}

/// `GET /healthz`: the process answers. Needs no token.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the store answers and its migrations are current.
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

/// The whole server as a router over `store`.
pub fn router(store: SkillMetricsStore, limits: &Limits) -> Router {
    let read = Router::new()
        .route("/api/v1/metrics", get(api::metrics))
        .route("/api/v1/metrics/{skill}", get(api::metrics_of))
        .route("/api/v1/summary", get(api::summary))
        .route("/api/v1/timeline/{skill}", get(api::timeline))
        .route("/api/v1/recent", get(api::recent))
        .route("/api/v1/search", get(api::search))
        .route("/api/v1/sessions", get(api::sessions))
        .route("/api/v1/sessions/{id}", get(api::session))
        .route("/metrics", get(prometheus::metrics))
        .route_layer(from_fn(|r, n| auth::require(Scope::Read, r, n)));
    let ingest = Router::new()
        .route("/api/v1/invocations", post(api::post_invocations))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/metrics", post(otlp::ignored))
        .route("/v1/traces", post(otlp::ignored))
        .route_layer(from_fn(|r, n| auth::require(Scope::Ingest, r, n)));
    Router::new()
        .merge(read)
        .merge(ingest)
        .route("/readyz", get(readyz))
        .layer(from_fn_with_state(store.clone(), auth::authenticate))
        // Added after the token check, so the only route without one.
        .route("/healthz", get(healthz))
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
                .layer(ConcurrencyLimitLayer::new(limits.max_concurrent_requests)),
        )
        .with_state(Shared {
            store,
            limits: limits.clone(),
        })
}

/// Serves `store` on `listener` until `shutdown` completes, then stops
/// taking connections, lets the requests in flight finish, and waits for
/// the store's background records. Nothing answered 200 is lost.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    store: SkillMetricsStore,
    listener: tokio::net::TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(store.clone(), &limits);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    store.flush().await;
    Ok(())
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
