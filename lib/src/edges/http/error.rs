//! The one place where [`Error`] becomes an HTTP answer: the flat Klozeo error body
//! `{"error": code, "message": text, "code": code}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// The flat error body every error answer carries.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The stable code (same as `code`; the SDKs read either).
    pub error: String,
    /// What went wrong, for people.
    pub message: String,
    /// The stable code.
    pub code: String,
}

/// A flat error body with a status.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: code.to_string(),
        message: message.to_string(),
        code: code.to_string(),
    };
    (status, axum::Json(body)).into_response()
}

impl Error {
    /// The HTTP status and stable code of this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        let code = self.code();
        (
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code.as_str(),
        )
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Error::Internal(detail) = &self {
            tracing::error!(error = %detail, "internal error");
        }
        let mut resp = error_response(status, code, &self.public_message());
        // Both say "try again later"; the header tells clients (and the SDKs' retry loops)
        // when. A store that is throttling usually recovers within a second.
        let retry_after = match self {
            Error::RateLimited { retry_after_secs } => Some(retry_after_secs.max(1)),
            Error::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
