//! Lambda glue: every HTTP function's `main` is one call to [`run_http`].

use std::sync::Arc;

use crate::app::App;
use crate::config::Config;
use crate::edges::http::{Routes, service};

/// The error type a Lambda `main` returns.
pub use lambda_http::Error as LambdaError;

/// Runs an HTTP Lambda function serving `routes` through API Gateway (REST payload 1.0 or
/// HTTP payload 2.0). Configuration is read and clients are built once, before the first
/// invocation; no network I/O happens until a request arrives.
pub async fn run_http(routes: Routes) -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let config = Config::lambda_from_env()?;
    let app = Arc::new(App::build(&config).await?);
    let svc = tower::ServiceExt::map_request(service(app, routes), |req: lambda_http::Request| {
        req.map(|body| axum::body::Body::from(body.to_vec()))
    });
    lambda_http::run(svc).await
}
