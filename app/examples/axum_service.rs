//! skill-metrics behind an axum HTTP service.
//!
//! `cargo run -p skill-metrics --example axum_service` then
//! `curl -X POST localhost:3000/invocations -d '{"skill_name":"x","completed":true}'`
//! and `curl localhost:3000/metrics/x`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use skill_metrics::{SkillMetricsStore, StoreError, domain::Invocation};

/// Maps store errors to HTTP answers; database details stay in the log.
fn reply(e: StoreError) -> (StatusCode, Json<Value>) {
    let status = match &e {
        StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
        StoreError::Duplicate { .. } => StatusCode::CONFLICT,
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({ "error": e.to_string() })))
}

async fn record(
    State(store): State<SkillMetricsStore>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let invocation = match Invocation::from_json(&body, chrono::Utc::now()) {
        Ok(inv) => inv,
        Err(e) => return reply(StoreError::Invalid(e)),
    };
    match store.record(invocation).await {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id.to_string() }))),
        Err(e) => reply(e),
    }
}

async fn metrics(
    State(store): State<SkillMetricsStore>,
    Path(skill): Path<String>,
) -> (StatusCode, Json<Value>) {
    match store.metrics(&[skill.as_str()]).await {
        Ok(rows) if rows.is_empty() => reply(StoreError::NotFound {
            what: format!("skill {skill:?}"),
        }),
        Ok(rows) => {
            let m = &rows[0];
            (
                StatusCode::OK,
                Json(json!({
                    "skill_name": m.skill_name,
                    "total_invocations": m.total_invocations,
                    "completion_rate": m.completion_rate,
                    "p50_duration_seconds": m.p50_duration_seconds,
                    "p95_duration_seconds": m.p95_duration_seconds,
                })),
            )
        }
        Err(e) => reply(e),
    }
}

/// The service's routes over one shared store (cheap to clone per request).
fn app(store: SkillMetricsStore) -> Router {
    Router::new()
        .route("/invocations", post(record))
        .route("/metrics/{skill}", get(metrics))
        .with_state(store)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("SKILL_METRICS_DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://skill-metrics.db".into());
    let store = SkillMetricsStore::connect(&url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app(store)).await?;
    Ok(())
}
