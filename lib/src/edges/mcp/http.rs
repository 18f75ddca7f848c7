//! The `/mcp` endpoint: streamable HTTP, stateless, JSON answers, behind authentication with
//! the same API keys (and the same account service) as REST.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::app::App;
use crate::config::McpConfig;
use crate::edges::http::error::error_response;
use crate::edges::http::extract::presented_key;
use crate::edges::mcp::server::{Caller, LinkBase, McpServer};
use crate::error::Error;

/// The path of the endpoint.
pub const MCP_PATH: &str = "/mcp";

#[derive(Clone)]
struct AuthState {
    app: Arc<App>,
    public_url: Option<String>,
}

/// The server's base URL: the configured public URL (`KLOZEO_PUBLIC_URL`, or the address
/// `klozeo serve` listens on), or else the request's own scheme and host.
fn base_url(s: &AuthState, parts: &axum::http::request::Parts) -> String {
    let configured = s
        .app
        .oauth
        .base_opt()
        .map(str::to_string)
        .or_else(|| s.public_url.clone());
    match configured {
        Some(u) => u,
        None => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = parts
                .headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{scheme}://{host}")
        }
    }
}

/// Where the protected-resource metadata of the endpoint lives (RFC 9728).
fn resource_metadata(s: &AuthState, parts: &axum::http::request::Parts) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource{MCP_PATH}",
        base_url(s, parts)
    )
}

fn unauthorized(s: &AuthState, parts: &axum::http::request::Parts, e: &Error) -> Response {
    let (status, code) = e.status_and_code();
    let mut resp = error_response(status, code, &e.public_message());
    let challenge = format!(
        "Bearer resource_metadata=\"{}\"",
        resource_metadata(s, parts)
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// Authenticates the request (`Authorization: Bearer` or `X-API-Key`) and hands the tenant
/// to the tools; without valid credentials answers 401 with a `WWW-Authenticate` challenge.
async fn authenticate(State(s): State<AuthState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let key = presented_key(&parts)
        .filter(|k| !k.is_empty())
        .map(str::to_string);
    let Some(key) = key else {
        let e = Error::Unauthenticated(
            "Missing API key: send Authorization: Bearer <key> or X-API-Key".into(),
        );
        return unauthorized(&s, &parts, &e);
    };
    match crate::edges::http::extract::authenticate_credential(&s.app, &key).await {
        Ok(tenant) => {
            parts.extensions.insert(tenant);
            parts.extensions.insert(LinkBase(base_url(&s, &parts)));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e @ Error::Unauthenticated(_)) => unauthorized(&s, &parts, &e),
        Err(e) => e.into_response(),
    }
}

/// The rmcp transport settings: stateless, JSON answers, hosts and origins from `cfg`.
pub fn transport_config(app: &App, cfg: &McpConfig) -> StreamableHttpServerConfig {
    let mut c = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        .with_max_request_body_bytes(app.max_body_bytes);
    c = if cfg.allowed_hosts.is_empty() {
        c.disable_allowed_hosts()
    } else {
        c.with_allowed_hosts(cfg.allowed_hosts.clone())
    };
    if cfg.allowed_origins.is_empty() {
        c.disable_allowed_origins()
    } else {
        c.with_allowed_origins(cfg.allowed_origins.clone())
    }
}

/// The `/mcp` routes, to merge into a router.
pub fn router<S: Clone + Send + Sync + 'static>(app: Arc<App>, cfg: &McpConfig) -> Router<S> {
    let handler_app = app.clone();
    let svc = StreamableHttpService::new(
        move || Ok(McpServer::new(handler_app.clone(), Caller::Http)),
        Arc::new(NeverSessionManager::default()),
        transport_config(&app, cfg),
    );
    let state = AuthState {
        app,
        public_url: cfg.public_url.clone(),
    };
    Router::new()
        .route_service(MCP_PATH, svc)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// The status of a 401 answer, for tests.
pub const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
