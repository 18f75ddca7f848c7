//! The one place where [`Error`] becomes an HTTP answer: the flat Klozeo error body
//! `{"error": code, "message": text, "code": code}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// A flat error body with a status.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message, "code": code });
    (status, axum::Json(body)).into_response()
}

impl Error {
    /// The HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Error::LimitReached { code, .. } => (StatusCode::FORBIDDEN, code),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "Internal server error".to_string()
            }
            other => other.to_string(),
        };
        let mut resp = error_response(status, code, &message);
        if let Error::RateLimited { retry_after_secs } = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs.max(1)),
            );
        }
        resp
    }
}
