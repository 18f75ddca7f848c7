//! Webhook deliveries over HTTPS with reqwest: one POST per attempt, a 5 s limit, no
//! redirects, and the target policy applied to the addresses the name resolves to when the
//! attempt is made (so a name that is re-pointed at a private address after the webhook was
//! registered is refused too).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::webhook::{DELIVERY_TIMEOUT_SECS, MAX_ERROR_LEN, is_forbidden_target};
use crate::error::{Error, Result};
use crate::ports::{Attempt, Outgoing, WebhookSender};

/// Resolves names with the system resolver and drops every address the policy forbids; a
/// name left with none fails to resolve, so no connection is ever opened to it.
pub(crate) struct PolicyResolver {
    /// Whether loopback and private targets are allowed (local development).
    pub(crate) allow_private: bool,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || !is_forbidden_target(a.ip()))
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!(
                    "refused target: {host} resolves only to private or reserved addresses ({})",
                    shown.join(", ")
                )
                .into());
            }
            let it: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(it)
        })
    }
}

/// The webhook sender.
#[derive(Clone)]
pub struct HttpSender {
    // Built on first use: every Lambda function composes the whole application, and only the
    // webhook worker sends, so the others never pay for loading the TLS roots at cold start.
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
    allow_private: bool,
}

impl HttpSender {
    /// A sender; `allow_private` lets it call loopback and private targets (local development).
    pub fn new(allow_private: bool) -> Result<Self> {
        Ok(HttpSender {
            client: Arc::default(),
            allow_private,
        })
    }

    fn client(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let built = reqwest::Client::builder()
            .timeout(Duration::from_secs(DELIVERY_TIMEOUT_SECS))
            .connect_timeout(Duration::from_secs(DELIVERY_TIMEOUT_SECS))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PolicyResolver {
                allow_private: self.allow_private,
            }))
            .no_proxy()
            .build()
            .map_err(|e| Error::internal(format!("webhook HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| built))
    }
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The whole chain of an error, which is where reqwest keeps the useful part.
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        format!("timed out after {DELIVERY_TIMEOUT_SECS} s")
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

#[async_trait]
impl WebhookSender for HttpSender {
    async fn post(&self, req: Outgoing) -> Attempt {
        // A literal address never goes through the resolver, so it is checked here.
        if let Ok(u) = url::Url::parse(&req.url) {
            let literal = match u.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal
                && !self.allow_private
                && is_forbidden_target(ip)
            {
                return Attempt::NoAnswer {
                    error: format!("refused target: {ip} is a private or reserved address"),
                };
            }
        }
        let client = match self.client() {
            Ok(c) => c,
            Err(e) => {
                return Attempt::NoAnswer {
                    error: e.to_string(),
                };
            }
        };
        let mut r = client.post(&req.url).body(req.body);
        for (k, v) in &req.headers {
            r = r.header(*k, v);
        }
        match r.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                Attempt::Answered {
                    status,
                    body_start: clip(body),
                }
            }
            Err(e) => Attempt::NoAnswer {
                error: clip(describe(&e)),
            },
        }
    }
}
