//! Client ID Metadata Documents fetched with reqwest: a GET with a 5 s limit, no redirects, at
//! most [`MAX_METADATA_BYTES`], and the webhook target policy applied to the resolved addresses.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::adapters::http_sender::PolicyResolver;
use crate::domain::webhook::is_forbidden_target;
use crate::ports::MetadataFetcher;

/// Largest metadata document read (the documents are a few hundred bytes).
pub const MAX_METADATA_BYTES: usize = 5 * 1024;
/// Time limit of one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The fetcher.
#[derive(Clone)]
pub struct HttpMetadataFetcher {
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    allow_private: bool,
}

impl HttpMetadataFetcher {
    /// A fetcher; `allow_private` lets it read loopback and private targets (development).
    pub fn new(allow_private: bool) -> Self {
        HttpMetadataFetcher {
            client: Arc::default(),
            allow_private,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private: self.allow_private,
            }))
            .no_proxy()
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(self.client.get_or_init(|| built))
    }
}

#[async_trait]
impl MetadataFetcher for HttpMetadataFetcher {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let u = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        // A literal address never goes through the resolver, so it is checked here.
        let literal = match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal
            && !self.allow_private
            && is_forbidden_target(ip)
        {
            return Err(format!(
                "refused target: {ip} is a private or reserved address"
            ));
        }
        let resp = self
            .client()?
            .get(u)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_string()
                } else {
                    format!("could not be fetched: {e}")
                }
            })?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("answered {}", resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_METADATA_BYTES as u64)
        {
            return Err(format!("is larger than {MAX_METADATA_BYTES} bytes"));
        }
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("could not be read: {e}"))?
        {
            if body.len() + chunk.len() > MAX_METADATA_BYTES {
                return Err(format!("is larger than {MAX_METADATA_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
