//! The one error type of the product, named by meaning.
//!
//! Every layer returns [`Error`]; the HTTP edge maps it to the flat Klozeo error body in exactly one
//! place (`edges::http::error`).

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
        /// Stable machine-readable code, e.g. `conflict` or `idempotency_conflict`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// A plan limit would be exceeded; nothing was written.
    #[error("{message}")]
    LimitReached {
        /// Stable machine-readable code, e.g. `leads_limit_reached`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// Too many requests in the rate-limit window; nothing was done.
    #[error("Rate limit exceeded")]
    RateLimited {
        /// Whole seconds until a request slot frees.
        retry_after_secs: u64,
    },
    /// The request body is larger than the configured limit.
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

    /// The not-found error for a lead, identical whether it is missing or another tenant's.
    pub fn lead_not_found() -> Self {
        Error::NotFound("Lead not found".into())
    }
}
