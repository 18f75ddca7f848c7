//! Lambda glue: every HTTP function's `main` is one call to [`run_http`], and every invocation
//! goes through [`handle`], which the tests drive directly with API Gateway event fixtures.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use tower::ServiceExt as _;

use crate::app::{App, dynamo_store};
use crate::config::{self, Config, StoreConfig};
use crate::edges::http::{API_PREFIX, Routes, service};

/// The error type a Lambda `main` returns.
pub use lambda_http::Error as LambdaError;

/// Runs an HTTP Lambda function serving `routes` through API Gateway (REST payload 1.0 or
/// HTTP payload 2.0). Configuration is read and clients are built once, before the first
/// invocation; no network I/O happens until a request arrives.
pub async fn run_http(routes: Routes) -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_max_level(config::log_level_from_env()?)
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::lambda_from_env()?;
    // Built here rather than through `App::build`, so the embedded store is unreachable from a
    // function and the linker leaves SQLite out of the package.
    let StoreConfig::Dynamo {
        table_prefix,
        tls_roots,
    } = &config.store
    else {
        return Err("a Lambda function runs on DynamoDB".into());
    };
    let store = Arc::new(dynamo_store(table_prefix, *tls_roots).await);
    let app = Arc::new(App::with_store(store, &config)?);
    let svc = service(app, routes);
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let svc = svc.clone();
        async move { Ok::<_, Infallible>(handle(svc, req).await) }
    }))
    .await
}

/// Answers one API Gateway request (already decoded by `lambda_http` from a REST 1.0 or HTTP
/// 2.0 event) with `svc` — the router of [`service`] — and returns the response in the form
/// `lambda_http` serializes back to API Gateway (JSON as text, anything else as base64).
///
/// The request reaches the router as the client sent it to the API: the stage segment API
/// Gateway may put in front of the path is removed (whatever
/// `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` says), the body is passed on byte for byte, and
/// headers and the query string are left untouched.
pub async fn handle<S>(
    svc: S,
    req: lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
        >,
{
    let resp = match svc.oneshot(into_axum(req)).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    lambda_http::IntoResponse::into_response(resp).await
}

/// Converts a `lambda_http` request into the request the router takes.
fn into_axum(req: lambda_http::Request) -> axum::extract::Request {
    let stage = stage(&req).map(str::to_owned);
    let (mut parts, body) = req.into_parts();
    let path = routed_path(parts.uri.path(), stage.as_deref());
    if path.len() != parts.uri.path().len() {
        let pq = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        if let Ok(pq) = pq.parse::<PathAndQuery>() {
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(uri) {
                parts.uri = uri;
            }
        }
    }
    let body = match body {
        lambda_http::Body::Text(s) => axum::body::Body::from(s),
        lambda_http::Body::Binary(b) => axum::body::Body::from(b),
        other => axum::body::Body::from(other.to_vec()),
    };
    axum::extract::Request::from_parts(parts, body)
}

/// The API Gateway stage of the request, when the event names one.
fn stage(req: &lambda_http::Request) -> Option<&str> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.stage.as_deref(),
        RequestContext::ApiGatewayV2(ctx) => ctx.stage.as_deref(),
        _ => None,
    }
}

/// The path the router sees: `path` without a leading `/{stage}` segment.
///
/// Where the stage shows up depends on the API type and on `lambda_http`:
/// - REST APIs (payload 1.0) send the path without the stage; `lambda_http` prepends it
///   unless `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set.
/// - HTTP APIs (payload 2.0) under a named stage put the stage in `rawPath` themselves, and
///   `lambda_http` keeps it whether or not that variable is set
///   (aws/aws-lambda-rust-runtime#919); under `$default` there is no stage anywhere.
///
/// So the segment is removed here, whatever the variable says, which keeps routing right
/// under any stage and either payload. A path that already starts with one of the router's
/// paths (under `/api/v1`, or `/health`) is left alone, so a stage named like the first segment
/// of a route (`api`) cannot eat that segment when nothing was prepended.
fn routed_path<'a>(path: &'a str, stage: Option<&str>) -> &'a str {
    let Some(stage) = stage.filter(|s| !s.is_empty() && *s != "$default") else {
        return path;
    };
    if is_routed(path) {
        return path;
    }
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Whether `path` is already one the router serves: under `/api/v1`, or `/health`.
fn is_routed(path: &str) -> bool {
    path == "/health"
        || path
            .strip_prefix(API_PREFIX)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::routed_path;

    #[test]
    fn stage_segment_is_removed_once() {
        assert_eq!(
            routed_path("/prod/api/v1/leads", Some("prod")),
            "/api/v1/leads"
        );
        assert_eq!(routed_path("/api/v1/leads", Some("prod")), "/api/v1/leads");
        assert_eq!(
            routed_path("/api/v1/leads", Some("$default")),
            "/api/v1/leads"
        );
        assert_eq!(routed_path("/api/v1/leads", None), "/api/v1/leads");
        assert_eq!(routed_path("/prod", Some("prod")), "/");
        assert_eq!(routed_path("/production/x", Some("prod")), "/production/x");
        // A stage named like a route's first segment.
        assert_eq!(
            routed_path("/api/api/v1/leads", Some("api")),
            "/api/v1/leads"
        );
        assert_eq!(routed_path("/api/v1/leads", Some("api")), "/api/v1/leads");
        assert_eq!(routed_path("/health", Some("health")), "/health");
        assert_eq!(routed_path("/health/health", Some("health")), "/health");
        assert_eq!(
            routed_path("/health/api/v1/leads", Some("health")),
            "/api/v1/leads"
        );
    }
}
