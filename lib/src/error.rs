//! The one error type of the product, named by meaning, with a stable [`Code`] for callers.
//!
//! Every layer returns [`Error`]. Each protocol maps it in exactly one place: the HTTP edge to
//! the flat Klozeo error body (`edges::http::error`), the MCP edge to its tool error codes
//! ([`Code::mcp`]). Services never choose protocol status codes themselves.

use serde::Serialize;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stable, machine-readable error code: the `code` (and `error`) field of the flat REST
/// error body, spelled as the Klozeo SDKs expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// The addressed thing does not exist for this tenant.
    NotFound,
    /// The request is malformed or breaks a rule.
    BadRequest,
    /// No valid credentials.
    Unauthorized,
    /// A concurrent change or a taken unique value.
    Conflict,
    /// An `Idempotency-Key` reused with another request, or still in flight.
    IdempotencyConflict,
    /// The plan's lead limit would be exceeded.
    LeadsLimitReached,
    /// Too many requests in the window.
    RateLimitExceeded,
    /// The request body or a stored document is too large.
    PayloadTooLarge,
    /// A dependency is temporarily unavailable.
    ServiceUnavailable,
    /// The operator does not allow this (e.g. registration is closed).
    Forbidden,
    /// The API key's scope does not cover this request.
    InsufficientScope,
    /// A bug or an unexpected failure.
    InternalError,
}

impl Code {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "not_found",
            Code::BadRequest => "bad_request",
            Code::Unauthorized => "unauthorized",
            Code::Conflict => "conflict",
            Code::IdempotencyConflict => "idempotency_conflict",
            Code::LeadsLimitReached => "leads_limit_reached",
            Code::RateLimitExceeded => "rate_limit_exceeded",
            Code::PayloadTooLarge => "payload_too_large",
            Code::ServiceUnavailable => "service_unavailable",
            Code::Forbidden => "forbidden",
            Code::InsufficientScope => "insufficient_scope",
            Code::InternalError => "internal_error",
        }
    }

    /// The HTTP status that carries this code (REST, and the `status` of MCP error results).
    pub fn http_status(self) -> u16 {
        match self {
            Code::NotFound => 404,
            Code::BadRequest => 400,
            Code::Unauthorized => 401,
            Code::Conflict | Code::IdempotencyConflict => 409,
            Code::LeadsLimitReached | Code::Forbidden | Code::InsufficientScope => 403,
            Code::RateLimitExceeded => 429,
            Code::PayloadTooLarge => 413,
            Code::ServiceUnavailable => 503,
            Code::InternalError => 500,
        }
    }

    /// The MCP tool-error code of the vendor's MCP server for this code.
    pub fn mcp(self) -> &'static str {
        match self {
            Code::NotFound => "RESOURCE_NOT_FOUND",
            Code::BadRequest | Code::PayloadTooLarge => "VALIDATION_ERROR",
            Code::Unauthorized | Code::Forbidden | Code::InsufficientScope => "UNAUTHORIZED",
            Code::Conflict | Code::IdempotencyConflict | Code::LeadsLimitReached => "CONFLICT",
            Code::RateLimitExceeded => "RATE_LIMITED",
            Code::ServiceUnavailable | Code::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What went wrong, by meaning rather than by source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The addressed thing does not exist for this tenant (another tenant's data looks the same).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed or violates a rule; the message says which field and why.
    #[error("{0}")]
    Invalid(String),
    /// No valid credentials were presented.
    #[error("{0}")]
    Unauthenticated(String),
    /// The request conflicts with the current state (a concurrent change, a taken unique value).
    #[error("{message}")]
    Conflict {
        /// [`Code::Conflict`] or [`Code::IdempotencyConflict`].
        code: Code,
        /// Human-readable explanation.
        message: String,
    },
    /// A plan limit would be exceeded; nothing was written.
    #[error("{message}")]
    LimitReached {
        /// Which limit, e.g. [`Code::LeadsLimitReached`].
        code: Code,
        /// Human-readable explanation.
        message: String,
    },
    /// The credentials are valid but do not allow this; nothing was done.
    #[error("{message}")]
    Forbidden {
        /// [`Code::Forbidden`] or [`Code::InsufficientScope`].
        code: Code,
        /// Human-readable explanation.
        message: String,
    },
    /// Too many requests in the rate-limit window; nothing was done.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// Whole seconds until a request slot frees.
        retry_after_secs: u64,
    },
    /// The request body, or a document it would store, is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A dependency is temporarily unavailable; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details go to the log, not to the caller.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// A [`Code::Conflict`] error: a lost race the caller may retry.
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict {
            code: Code::Conflict,
            message: msg.into(),
        }
    }

    /// The not-found error for a lead, identical whether it is missing or another tenant's.
    pub fn lead_not_found() -> Self {
        Error::NotFound("Lead not found".into())
    }

    /// The stable code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::NotFound(_) => Code::NotFound,
            Error::Invalid(_) => Code::BadRequest,
            Error::Unauthenticated(_) => Code::Unauthorized,
            Error::Conflict { code, .. }
            | Error::LimitReached { code, .. }
            | Error::Forbidden { code, .. } => *code,
            Error::RateLimited { .. } => Code::RateLimitExceeded,
            Error::TooLarge(_) => Code::PayloadTooLarge,
            Error::Unavailable(_) => Code::ServiceUnavailable,
            Error::Internal(_) => Code::InternalError,
        }
    }

    /// Whether this is a lost race that the same request may win when tried again.
    pub fn is_retryable_conflict(&self) -> bool {
        matches!(
            self,
            Error::Conflict {
                code: Code::Conflict,
                ..
            }
        )
    }

    /// What a caller may be shown: the message, except for internal errors, whose detail is
    /// for the log only.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "Internal server error".to_string(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_is_never_public() {
        let e = Error::internal("DynamoDB TransactWriteItems failed: secret table name");
        assert_eq!(e.public_message(), "Internal server error");
        assert_eq!(e.code(), Code::InternalError);
        assert_eq!(
            Error::invalid("rating: bad").public_message(),
            "rating: bad"
        );
    }

    #[test]
    fn codes_map_to_statuses_and_mcp_codes() {
        assert_eq!(Error::lead_not_found().code().http_status(), 404);
        assert_eq!(Error::lead_not_found().code().mcp(), "RESOURCE_NOT_FOUND");
        assert_eq!(Code::RateLimitExceeded.mcp(), "RATE_LIMITED");
        assert_eq!(
            serde_json::to_value(Code::LeadsLimitReached).unwrap_or_default(),
            serde_json::json!("leads_limit_reached")
        );
        assert_eq!(Code::IdempotencyConflict.as_str(), "idempotency_conflict");
    }
}
