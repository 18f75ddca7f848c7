//! The outbound HTTP port that reads Client ID Metadata Documents (an OAuth client whose id
//! is an `https` URL publishes its name and redirect URIs there).

use async_trait::async_trait;

/// Reads a small JSON document from a URL: a GET with size and time limits, following no
/// redirects, refusing private and reserved targets (the webhook SSRF rules).
#[async_trait]
pub trait MetadataFetcher: Send + Sync {
    /// The body of a 200 answer; anything else (refused target, timeout, another status, a
    /// body over the limit) is an error whose text says why, for the person authorizing.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}
