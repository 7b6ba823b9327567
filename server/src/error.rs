//! Errors as HTTP answers: a status and `{"error": "..."}`, never a
//! password or a token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use infrastructure::StoreError;

/// An answer other than success.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds a client should wait before it tries again (a 503).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same answer, telling the client to wait `seconds` before it
    /// tries again (`Retry-After`).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Adds the headers this answer carries whatever its body: a
    /// `Retry-After` when worth a retry, and on a 401 the scheme that
    /// would be accepted (`WWW-Authenticate: Bearer`, as HTTP asks).
    pub(crate) fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
    }

    /// Its status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, in words.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::Duplicate { .. } => StatusCode::CONFLICT,
            StoreError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // StoreError's text is already free of passwords.
            tracing::error!(error = %e, "store failure");
        }
        let answer = Self::new(status, e.to_string());
        match e {
            // A rebuild, prune or import holds the store: worth a retry.
            StoreError::Busy { seconds } => answer.retry_after(seconds),
            _ => answer,
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        tracing::error!(error = %e, "cannot serialise a response");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot serialise the response",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        self.add_headers(response.headers_mut());
        response
    }
}
