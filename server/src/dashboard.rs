//! The dashboard (decision D93): a page and its assets, embedded in the
//! binary and served at `/` to a browser holding a session cookie, which
//! `/login?code=…` sets once per one-time code. The page reads the same
//! `/api/v1/…` routes as any client, with the cookie in place of a token
//! (read scope only), and asks for nothing from any other origin: its
//! Content-Security-Policy says so to the browser.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infrastructure::{DASHBOARD_SESSION_LIFETIME, SkillMetricsStore};
use serde::Deserialize;

/// The session cookie's name on the server the request was sent to. A
/// browser keeps cookies per host, not per port: each server on a host
/// (one per store) names its own, so logging in to one leaves the others'
/// sessions alone, and none is sent to another server's port.
pub(crate) fn cookie_name(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = match host.rsplit_once(':') {
        Some((_, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => port,
        _ => "80",
    };
    format!("skill_metrics_session_{port}")
}

/// What the page may load and connect to: this origin only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uplot-1.6.32/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/uplot-1.6.32/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/vendor/uplot-1.6.32/LICENSE"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");

/// The session secret of the request's cookie, if it has one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    let wanted = cookie_name(headers);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the request carries a live session cookie.
async fn logged_in(store: &SkillMetricsStore, headers: &HeaderMap) -> Result<bool, Response> {
    let Some(secret) = session_cookie(headers) else {
        return Ok(false);
    };
    store
        .dashboard_session_is_live(secret)
        .await
        .map_err(|e| crate::error::ApiError::from(e).into_response())
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// A page that says what to do, in place of the dashboard.
fn refusal(status: StatusCode, message: &str) -> Response {
    page(
        status,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>skill-metrics</title></head><body><main><h1>skill-metrics</h1>\
             <p>{message}</p><p>Open the dashboard with <code>skill-metrics dashboard</code>: \
             it prints a link that logs this browser in once.</p></main></body></html>"
        ),
    )
}

/// `GET /`: the dashboard, to a browser with a live session.
pub(crate) async fn index(State(store): State<SkillMetricsStore>, headers: HeaderMap) -> Response {
    match logged_in(&store, &headers).await {
        Ok(true) => page(StatusCode::OK, INDEX.to_owned()),
        Ok(false) => refusal(
            StatusCode::UNAUTHORIZED,
            "This browser is not logged in to this server, or its session has expired.",
        ),
        Err(response) => response,
    }
}

/// `GET /assets/{name}`: an embedded file, to a browser with a live session.
pub(crate) async fn asset(
    State(store): State<SkillMetricsStore>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match logged_in(&store, &headers).await {
        Ok(true) => {}
        Ok(false) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(response) => return response,
    }
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "private, max-age=300"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The query of `GET /login`.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    code: Option<String>,
}

/// `GET /login?code=…`: uses a one-time code and, when it is live, sets
/// the session cookie and sends the browser on to `/` with a page that
/// refreshes to it. A page rather than a redirect: when the link was
/// followed from another site, a redirect would still count as that
/// site's navigation and the Strict cookie just set would not go with it.
/// The code leaves the address bar, and no Referer carries it.
pub(crate) async fn login(
    State(store): State<SkillMetricsStore>,
    Query(q): Query<LoginQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 200) else {
        return refusal(StatusCode::BAD_REQUEST, "This login link has no code.");
    };
    match store.redeem_login_code(&code).await {
        Ok(Some(secret)) => {
            let cookie = format!(
                "{}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                cookie_name(&headers),
                DASHBOARD_SESSION_LIFETIME.num_seconds()
            );
            let mut response = page(
                StatusCode::OK,
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>skill-metrics</title>\
                 </head><body><p><a href=\"/\">Open the dashboard</a></p></body></html>"
                    .to_owned(),
            );
            match HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    response.headers_mut().insert(header::SET_COOKIE, value);
                    response
                }
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        Ok(None) => refusal(
            StatusCode::UNAUTHORIZED,
            "This login link was used already, or it has expired (links work once, for five minutes).",
        ),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}
