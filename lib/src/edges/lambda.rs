//! Lambda glue: every HTTP function's `main` is one call to [`run_http`], and every invocation
//! goes through [`handle`], which the tests drive directly with API Gateway event fixtures.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::Uri;
use axum::http::uri::PathAndQuery;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use tower::ServiceExt as _;

use crate::app::App;
use crate::config::{self, Config};
use crate::edges::http::{API_PREFIX, Routes, service};

/// The error type a Lambda `main` returns.
pub use lambda_http::Error as LambdaError;

/// Runs an HTTP Lambda function serving `routes` through API Gateway (REST payload 1.0 or
/// HTTP payload 2.0). Configuration is read and clients are built once, before the first
/// invocation; no network I/O happens until a request arrives.
///
/// A function that cannot start (a setting missing or invalid) says why to Lambda through the
/// Runtime API's init error, so the reason shows in the invocation's error and in the logs,
/// and then exits.
pub async fn run_http(routes: Routes) -> Result<(), lambda_http::Error> {
    let svc = match init(routes).await {
        Ok(svc) => svc,
        Err(e) => {
            start_failed(&e);
            return Err(e);
        }
    };
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let svc = svc.clone();
        async move { Ok::<_, Infallible>(handle(svc, req).await) }
    }))
    .await
}

/// Runs the `export` function behind API Gateway, which buffers a response of at most 6 MB:
/// an export over `KLOZEO_EXPORT_INLINE_LIMIT_BYTES` answers 413 naming `delivery=url`.
pub async fn run_export() -> Result<(), lambda_http::Error> {
    run_http(Routes::Export).await
}

/// Runs the `export-stream` function behind a Function URL with `InvokeMode:
/// RESPONSE_STREAM`: every response is streamed, so an inline export of any size goes out as
/// it is encoded.
pub async fn run_export_streaming() -> Result<(), lambda_http::Error> {
    let svc = match init(Routes::Export).await {
        Ok(svc) => svc,
        Err(e) => {
            start_failed(&e);
            return Err(e);
        }
    };
    serve_streaming(svc).await
}

/// Serves `svc` — the router of [`service`] — to the Lambda Runtime API named by
/// `AWS_LAMBDA_RUNTIME_API`, streaming every response (Function URL payload 2.0 in, the
/// `RESPONSE_STREAM` protocol out: a metadata prelude, then the body as it is produced). It
/// runs until the runtime stops; [`run_export_streaming`] calls it, and the tests drive it
/// against a stand-in Runtime API.
pub async fn serve_streaming<S>(svc: S) -> Result<(), lambda_http::Error>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static,
{
    lambda_http::run_with_streaming_response(lambda_http::service_fn(
        move |req: lambda_http::Request| {
            let svc = svc.clone();
            async move {
                let resp = match svc.oneshot(into_axum(req)).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp)
            }
        },
    ))
    .await
}

/// Reads the configuration and builds the router with its clients.
async fn init(
    routes: Routes,
) -> Result<
    impl tower::Service<
        axum::extract::Request,
        Response = axum::response::Response,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
    lambda_http::Error,
> {
    let app = init_app(|_| Ok(crate::app::no_webhook_sender())).await?;
    Ok(service(app, routes))
}

/// Starts logging, reads the configuration and composes the application on DynamoDB (and
/// SQS, when `KLOZEO_JOBS_QUEUE_URL` is set), with the webhook sender `sender` builds.
async fn init_app(
    sender: impl FnOnce(&Config) -> crate::Result<Arc<dyn crate::ports::WebhookSender>>,
) -> Result<Arc<App>, lambda_http::Error> {
    // Logging first, so a later failure is logged; a bad log level still leaves the default.
    let level = config::log_level_from_env();
    let max = level
        .as_ref()
        .map_or(tracing::level_filters::LevelFilter::INFO, |l| *l);
    tracing_subscriber::fmt()
        .json()
        .with_max_level(max)
        .with_current_span(false)
        .without_time()
        .init();
    level?;
    let config = Config::lambda_from_env()?;
    let sender = sender(&config)?;
    Ok(Arc::new(App::build_lambda(&config, sender).await?))
}

/// Reports a failed start to the Runtime API and logs it.
fn start_failed(e: &lambda_http::Error) {
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API")
        && let Err(io) = report_init_error(&api, &e.to_string())
    {
        tracing::error!(error = %io, "could not report the init error");
    }
    tracing::error!(error = %e, "cannot start");
}

/// Runs the webhook-worker function: SQS batches of job messages (webhook deliveries,
/// rescoring continuations; failures reported per message), the outbox table's stream (new
/// events become deliveries), and a schedule that sweeps what the stream left (orphaned batch
/// members, events whose dispatch failed).
pub async fn run_worker() -> Result<(), lambda_http::Error> {
    let app = match init_app(crate::app::webhook_sender).await {
        Ok(app) => app,
        Err(e) => {
            start_failed(&e);
            return Err(e);
        }
    };
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |ev: lambda_http::LambdaEvent<serde_json::Value>| {
            let app = app.clone();
            async move { handle_worker_event(&app, ev.payload).await }
        },
    ))
    .await
}

/// Handles one invocation of the webhook-worker function (see [`run_worker`]); the tests
/// drive it with events shaped as Lambda sends them.
pub async fn handle_worker_event(
    app: &App,
    event: serde_json::Value,
) -> Result<serde_json::Value, lambda_http::Error> {
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    match records.first().and_then(|r| r["eventSource"].as_str()) {
        Some("aws:sqs") => {
            let runs = records.iter().map(|r| async move {
                let id = r["messageId"].as_str().unwrap_or_default().to_string();
                let body = r["body"].as_str().unwrap_or_default();
                match app.jobs.run(body).await {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, message = %id, "job failed; SQS will redeliver it");
                        Some(id)
                    }
                }
            });
            let failed: Vec<serde_json::Value> = futures_util::future::join_all(runs)
                .await
                .into_iter()
                .flatten()
                .map(|id| serde_json::json!({ "itemIdentifier": id }))
                .collect();
            Ok(serde_json::json!({ "batchItemFailures": failed }))
        }
        Some("aws:dynamodb") => {
            for r in &records {
                if r["eventName"] != "INSERT" {
                    continue;
                }
                let Some(item) = stream_item(&r["dynamodb"]["NewImage"]) else {
                    tracing::warn!("stream record without a readable item; skipped");
                    continue;
                };
                // An error fails the batch, and Lambda retries it from this record on.
                app.webhooks.dispatch_item(&item).await?;
            }
            Ok(serde_json::json!({}))
        }
        _ => {
            let seen = app.webhooks.dispatch_pending().await?;
            tracing::info!(items = seen, "outbox sweep");
            Ok(serde_json::json!({ "swept": seen }))
        }
    }
}

/// The key and document of an item in a DynamoDB stream image (DynamoDB JSON: `{"pk":
/// {"S": ...}, ...}`; the attribute names of `adapters::dynamodb`).
fn stream_item(image: &serde_json::Value) -> Option<crate::ports::Item> {
    let s = |name: &str| image[name]["S"].as_str().map(str::to_string);
    Some(crate::ports::Item::new(
        crate::ports::Key::new(s("pk")?, s("sk")?),
        s("b")?.into_bytes(),
    ))
}

/// Tells the Runtime API at `api` (`host:port`, from `AWS_LAMBDA_RUNTIME_API`) that the function
/// could not start, and why. Plain HTTP/1.1 over a blocking socket: it runs once, before the
/// runtime client exists, and only on the way out.
pub fn report_init_error(api: &str, message: &str) -> std::io::Result<()> {
    use std::io::{Read as _, Write as _};
    let body = serde_json::json!({
        "errorType": "Runtime.InitError",
        "errorMessage": message,
        "stackTrace": [],
    })
    .to_string();
    let mut conn = std::net::TcpStream::connect(api)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    write!(
        conn,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // The answer (202) only says the report arrived; read it so the connection closes cleanly.
    let mut answer = [0u8; 256];
    let _ = conn.read(&mut answer);
    Ok(())
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
    let client = source_ip(&req);
    let (mut parts, body) = req.into_parts();
    if let Some(ip) = client {
        parts
            .extensions
            .insert(crate::edges::http::accounts::ClientAddr(ip));
    }
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

/// The client's address as API Gateway saw it (login throttling counts per address).
fn source_ip(req: &lambda_http::Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV1(ctx) => ctx.identity.source_ip.clone(),
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.clone(),
        _ => None,
    }
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
    use super::{report_init_error, routed_path};

    #[test]
    fn init_errors_are_reported_to_the_runtime_api() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let api = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            use std::io::{BufRead as _, BufReader, Read as _, Write as _};
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn);
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_string());
            }
            let len: usize = head
                .iter()
                .find_map(|h| h.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            r.get_mut()
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            (head, body)
        });
        report_init_error(&api, "missing setting KLOZEO_TABLE_PREFIX").unwrap();
        let (head, body) = server.join().unwrap();
        assert_eq!(head[0], "POST /2018-06-01/runtime/init/error HTTP/1.1");
        assert!(
            head.iter()
                .any(|h| h == "Lambda-Runtime-Function-Error-Type: Runtime.InitError"),
            "{head:?}"
        );
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "errorType": "Runtime.InitError",
                "errorMessage": "missing setting KLOZEO_TABLE_PREFIX",
                "stackTrace": []
            })
        );
        // Nobody listening: an error to log, not a panic or a hang.
        assert!(report_init_error("127.0.0.1:1", "x").is_err());
    }

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
