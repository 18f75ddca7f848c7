//! Helpers shared by the official Rust SDK test files.

// The SDK test modules use only some of these.
#![allow(dead_code)]

use std::time::Duration;

use klozeo_sdk::{Client, ClientConfig};
use klozeo_tests::TestServer;

/// An SDK client for `key` pointed at `server`, with `retries` (`None` keeps the SDK's default
/// of 3).
pub fn sdk_with(server: &TestServer, key: &str, retries: Option<u32>) -> Client {
    let mut b = ClientConfig::builder()
        .base_url(server.base_url.clone())
        .timeout(Duration::from_secs(60));
    if let Some(n) = retries {
        b = b.max_retries(n);
    }
    Client::with_config(key, b.build())
}

/// An SDK client for `key` pointed at `server`. Retries are off so that a 5xx fails the test
/// at once instead of being hidden by the SDK's backoff.
pub fn sdk(server: &TestServer, key: &str) -> Client {
    sdk_with(server, key, Some(0))
}
