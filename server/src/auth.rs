//! Bearer tokens: who is asking (401 when nobody known), and whether their
//! scope allows the route (403). Nothing is read or written before both.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use domain::Scope;
use infrastructure::{SkillMetricsStore, TokenInfo};

use crate::error::ApiError;

/// The token of `Authorization: Bearer TOKEN`, if the header is there and
/// of that form.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = value.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Finds the request's token and keeps it in the request's extensions for
/// [`require`]; a missing, unknown or revoked token gets 401.
pub(crate) async fn authenticate(
    State(store): State<SkillMetricsStore>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(request.headers()) else {
        // A dashboard's browser: its session cookie reads, nothing more.
        if let Some(secret) = crate::dashboard::session_cookie(request.headers()) {
            return match store.dashboard_session_is_live(secret).await {
                Ok(true) => {
                    request.extensions_mut().insert(TokenInfo {
                        name: "dashboard".to_owned(),
                        scope: Scope::Read,
                        created_at: chrono::Utc::now(),
                        last_used_at: None,
                        revoked_at: None,
                    });
                    next.run(request).await
                }
                Ok(false) => refuse(
                    &request,
                    ApiError::unauthorized(
                        "the dashboard session has expired: run `skill-metrics dashboard` again",
                    ),
                ),
                Err(e) => refuse(&request, ApiError::from(e)),
            };
        }
        return refuse(
            &request,
            ApiError::unauthorized("an Authorization: Bearer TOKEN header is required"),
        );
    };
    match store.authenticate(token).await {
        Ok(Some(who)) => {
            tracing::debug!(token = %who.name, scope = %who.scope, "authenticated");
            request.extensions_mut().insert(who);
            next.run(request).await
        }
        Ok(None) => refuse(&request, ApiError::unauthorized("unknown or revoked token")),
        Err(e) => refuse(&request, ApiError::from(e)),
    }
}

/// A guard for routes that need `scope`: 403 for a token without it.
pub(crate) async fn require(scope: Scope, request: Request, next: Next) -> Response {
    match request.extensions().get::<TokenInfo>() {
        Some(who) if who.scope.allows(scope) => next.run(request).await,
        Some(who) => {
            let e = ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "token {:?} has scope {}; this needs {scope}",
                    who.name, who.scope
                ),
            );
            refuse(&request, e)
        }
        None => refuse(&request, ApiError::unauthorized("not authenticated")),
    }
}

/// `e` in the body the request's route speaks: OTLP's `Status` on the
/// receiver's paths, the API's JSON elsewhere.
fn refuse(request: &Request, e: ApiError) -> Response {
    crate::otlp::refusal(request.uri().path(), request.headers(), e)
}
