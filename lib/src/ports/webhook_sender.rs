//! The outbound HTTP port of webhook deliveries.

use async_trait::async_trait;

/// One delivery attempt to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The target URL.
    pub url: String,
    /// Headers, lower-case names.
    pub headers: Vec<(&'static str, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The target answered (any status).
    Answered {
        /// The status code.
        status: u16,
        /// The start of the answer's body, for the delivery log.
        body_start: String,
    },
    /// No answer: refused target, DNS failure, connection error, timeout.
    NoAnswer {
        /// Why, for the delivery log.
        error: String,
    },
}

/// Sends webhook deliveries: a POST with a time limit, following no redirects, refusing
/// targets the policy forbids (checked on the resolved addresses, at delivery time).
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// Makes one attempt.
    async fn post(&self, req: Outgoing) -> Attempt;
}
