//! The HTTP edge: one axum router serves the Lambda functions and `klozeo serve` alike.

pub mod accounts;
pub mod enrich;
pub mod error;
pub mod export;
pub mod extract;
pub mod guard;
pub mod leads;
pub mod oauth;
pub mod openapi;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use tower::ServiceExt as _;

use crate::app::App;
use crate::edges::http::error::error_response;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The composed application.
    pub app: Arc<App>,
}

/// Prefix of every API route.
pub const API_PREFIX: &str = "/api/v1";

/// Which route groups a router serves: everything (`klozeo serve`) or one Lambda's concern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// Every route of the product.
    All,
    /// The leads routes.
    Leads,
    /// The notes routes.
    Notes,
    /// The attributes routes.
    Attributes,
    /// The scoring routes (rules, rescoring, explanations, jobs).
    Scoring,
    /// The webhook routes (subscriptions, delivery log, retry, test).
    Webhooks,
    /// The account routes (register, login, the account, API keys) and analytics.
    Accounts,
    /// The MCP endpoint (`/mcp`) only.
    Mcp,
    /// The export route (`GET /leads/export`).
    Export,
}

/// Builds the router for `routes`.
pub fn router(app: Arc<App>, routes: Routes) -> Router {
    let state = AppState { app };
    let mut api = Router::new();
    if matches!(routes, Routes::All | Routes::Leads) {
        api = api
            .route("/leads", get(leads::list).post(leads::create))
            .route(
                "/leads/batch",
                axum::routing::post(leads::batch_create)
                    .put(leads::batch_update)
                    .delete(leads::batch_delete),
            )
            .route(
                "/leads/{id}",
                get(leads::get)
                    .put(leads::update)
                    .patch(leads::update)
                    .delete(leads::delete),
            );
    }
    if matches!(routes, Routes::All | Routes::Notes) {
        use axum::routing::put;
        api = api
            .route(
                "/leads/{id}/notes",
                get(enrich::list_notes).post(enrich::create_note),
            )
            .route(
                "/notes/{note_id}",
                put(enrich::update_note).delete(enrich::delete_note),
            );
    }
    if matches!(routes, Routes::All | Routes::Attributes) {
        use axum::routing::put;
        api = api
            .route(
                "/leads/{id}/attributes",
                get(enrich::list_attributes).post(enrich::create_attribute),
            )
            .route(
                "/leads/{id}/attributes/{attr_id}",
                put(enrich::update_attribute).delete(enrich::delete_attribute),
            );
    }
    if matches!(routes, Routes::All | Routes::Scoring) {
        use axum::routing::post;
        api = api
            .route(
                "/scoring-rules",
                get(enrich::list_rules).post(enrich::create_rule),
            )
            .route(
                "/scoring-rules/{id}",
                get(enrich::get_rule)
                    .put(enrich::update_rule)
                    .delete(enrich::delete_rule),
            )
            .route("/leads/{id}/score", post(enrich::rescore_one))
            .route("/leads/score/batch", post(enrich::rescore_all))
            .route("/leads/{id}/score/explain", get(enrich::explain))
            .route("/jobs/{id}", get(enrich::get_job));
    }
    if matches!(routes, Routes::All | Routes::Webhooks) {
        use axum::routing::post;
        api = api
            .route("/webhooks", get(webhooks::list).post(webhooks::create))
            .route(
                "/webhooks/{id}",
                get(webhooks::get)
                    .put(webhooks::update)
                    .patch(webhooks::update)
                    .delete(webhooks::delete),
            )
            .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
            .route(
                "/webhooks/{id}/deliveries/{delivery_id}/retry",
                post(webhooks::retry),
            )
            .route("/webhooks/{id}/test", post(webhooks::test));
    }
    if matches!(routes, Routes::All | Routes::Accounts) {
        api = api
            .route("/account", get(accounts::get_account))
            .route(
                "/api-keys",
                get(accounts::list_keys).post(accounts::create_key),
            )
            .route(
                "/api-keys/{id}",
                axum::routing::delete(accounts::delete_key),
            )
            .route("/stats", get(accounts::stats))
            .route("/categories", get(accounts::categories))
            .route("/cities", get(accounts::cities));
    }
    if matches!(routes, Routes::All | Routes::Export) {
        api = api.route("/leads/export", get(export::export));
    }
    let mut root = Router::new();
    if routes == Routes::All {
        // The signed links of `delivery=url` under `klozeo serve`: no API key, by design.
        root = root.route("/downloads/{*key}", get(export::download));
    }
    // The MCP function serves no REST route (and a layer over no route is refused).
    if routes != Routes::Mcp {
        let mut api = api.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ));
        // Routes without an API key: they sit outside the guard.
        if matches!(routes, Routes::All | Routes::Accounts) {
            use axum::routing::post;
            api = api
                .route("/register", post(accounts::register))
                .route("/login", post(accounts::login))
                .route("/openapi.json", get(openapi::serve));
        }
        root = root.nest(API_PREFIX, api);
    }
    if matches!(routes, Routes::All | Routes::Mcp) {
        use crate::config::{McpConfig, mcp_from_env};
        let cfg = mcp_from_env(if routes == Routes::Mcp {
            McpConfig::public_endpoint()
        } else {
            McpConfig::default()
        });
        root = root.merge(crate::edges::mcp::http::router(state.app.clone(), &cfg));
        // OAuth for MCP clients: discovery, registration, the authorize page, tokens.
        root = root.merge(oauth::routes());
    }
    root.route(
        "/health",
        get(|| async { axum::Json(crate::edges::wire::HealthResponse { status: "ok" }) }),
    )
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("No route for {}", uri.path()),
    )
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed on this route",
    )
}

/// Collapses repeated slashes and drops a trailing slash before routing, so a base URL
/// configured as `.../api/v1/` (which the Rust and Go SDKs turn into `//leads`) still works.
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if !(path.contains("//") || (path.len() > 1 && path.ends_with('/'))) {
        return req;
    }
    let mut clean = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(seg);
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if let Some(q) = req.uri().query() {
        clean.push('?');
        clean.push_str(q);
    }
    if let Ok(pq) = clean.parse::<axum::http::uri::PathAndQuery>() {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// The router wrapped with path normalization, ready to serve.
pub fn service(
    app: Arc<App>,
    routes: Routes,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    router(app, routes).map_request(normalize_path)
}

/// [`service`] as a make-service that records each connection's peer address, so that login
/// throttling can count failures per client address under `klozeo serve`.
pub fn service_with_client_addr(
    app: Arc<App>,
    routes: Routes,
) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, std::net::SocketAddr> {
    let inner = router(app, routes).map_request(normalize_path as fn(Request) -> Request);
    Router::new()
        .fallback_service(inner)
        .into_make_service_with_connect_info::<std::net::SocketAddr>()
}
