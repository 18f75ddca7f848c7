//! The two Lambda entry points of exports, driven in-process the way Lambda drives them, on
//! every backend of the run:
//!
//! - `export-stream` (Function URL, `InvokeMode: RESPONSE_STREAM`): the loop of
//!   `klozeo_core::edges::lambda::serve_streaming` — what `run_export_streaming` runs — talks to
//!   a stand-in Lambda Runtime API that hands it a Function URL event and reads the streamed
//!   answer (metadata prelude, eight NUL bytes, body). The body must equal the inline export of
//!   `klozeo serve` for the same request, byte for byte, in every format, with the same headers.
//! - `export` (API Gateway, which buffers at most 6 MB): through `edges::lambda::handle` with a
//!   payload 2.0 event, an export over the configured inline limit answers a flat 413 that
//!   names `delivery=url`, and one under it is the whole file.
//!
//! The Runtime API client reads its address from the environment, which a test cannot change
//! safely, so the streaming test runs itself again in a child process that has it set.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use klozeo_core::edges::http::{Routes, service};
use klozeo_core::edges::lambda::{handle, serve_streaming};
use klozeo_tests::{Api, Backend, TestServer, assert_flat_error, backends};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Leads seeded per backend: more than one list page (1,000) on the embedded store, so the
/// streamed body is several chunks; fewer on the emulator, whose writes are slow.
fn lead_count(backend: Backend) -> usize {
    match backend {
        Backend::Embedded => 1_150,
        Backend::Dynamo => 120,
    }
}

/// Seeds `n` leads through `POST /leads/batch`, with attribute columns and a formula-like
/// value, so every format has something to encode.
async fn seed(api: &Api, n: usize) {
    let cities = ["Berlin", "Paris", "Athens"];
    for start in (0..n).step_by(100) {
        let leads: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| {
                let mut l = json!({
                    "name": if i % 7 == 0 { format!("=HYPERLINK(\"x\") {i}") } else { format!("Lead {i:05}") },
                    "source": "website",
                    "city": cities[i % 3],
                    "rating": (i % 50) as f64 / 10.0,
                    "tags": ["vip", "b2b"],
                });
                if i % 2 == 0 {
                    l["attributes"] =
                        json!([{"name": "employees", "type": "number", "value": i}]);
                }
                l
            })
            .collect();
        let (st, body) = api
            .send(
                reqwest::Method::POST,
                "/leads/batch",
                Some(json!({ "leads": leads })),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
    }
}

/// What the stand-in Runtime API received as the answer to one invocation.
#[derive(Debug)]
struct Posted {
    /// `response` or `error`.
    kind: String,
    headers: HeaderMap,
    body: Bytes,
}

/// The stand-in Runtime API: each `GET …/invocation/next` takes the next queued event (and
/// waits while there is none, as Lambda does between invocations); each answer is passed on.
#[derive(Clone)]
struct Runtime {
    events: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    answers: mpsc::UnboundedSender<Posted>,
}

async fn next_event(State(rt): State<Runtime>) -> axum::response::Response {
    let (id, event) = rt
        .events
        .lock()
        .await
        .recv()
        .await
        .expect("events queue open");
    axum::response::Response::builder()
        .header("lambda-runtime-aws-request-id", id)
        .header("lambda-runtime-deadline-ms", "4102444800000")
        .header(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:klozeo-export-stream",
        )
        .header("content-type", "application/json")
        .body(axum::body::Body::from(event.to_string()))
        .unwrap()
}

async fn answer(
    State(rt): State<Runtime>,
    Path((_id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = rt.answers.send(Posted {
        kind,
        headers,
        body,
    });
    StatusCode::ACCEPTED
}

/// A Function URL event (payload 2.0) for `GET /api/v1/leads/export?{query}` with `key`.
fn function_url_event(query: &str, key: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/v1/leads/export",
        "rawQueryString": query,
        "headers": {
            "accept": "*/*",
            "host": "abcdefghijklmnopqrstuvwxyz.lambda-url.us-east-1.on.aws",
            "user-agent": "klozeo-python/0.1.5",
            "x-amzn-trace-id": "Root=1-65f1a2b3-0c1d2e3f4a5b6c7d8e9f0a11",
            "x-forwarded-for": "198.51.100.7",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
            "x-api-key": key
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz",
            "domainName": "abcdefghijklmnopqrstuvwxyz.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz",
            "http": {
                "method": "GET",
                "path": "/api/v1/leads/export",
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "klozeo-python/0.1.5"
            },
            "requestId": "8f9e7d6c-5b4a-3c2d-1e0f-a1b2c3d4e5f6",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:01:50:00 +0000",
            "timeEpoch": 1795000000000u64
        },
        "isBase64Encoded": false
    })
}

/// The inline export of `klozeo serve` for the same request: status, headers, body.
async fn inline(api: &Api, query: &str) -> (StatusCode, HeaderMap, Bytes) {
    let resp = reqwest::Client::new()
        .get(format!("{}/leads/export?{query}", api.base))
        .header("X-API-Key", &api.key)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut headers = HeaderMap::new();
    for (k, v) in resp.headers() {
        headers.insert(
            axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    (status, headers, resp.bytes().await.unwrap())
}

/// The environment variable naming the Runtime API (`host:port`).
const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

/// The name of the streaming test, which the parent process runs again as its child.
const STREAM_TEST: &str =
    "export_lambda::export_stream_function_streams_the_same_file_as_the_inline_export";

/// Starts the stand-in Runtime API at the address in `AWS_LAMBDA_RUNTIME_API`.
async fn start_runtime(
    addr: &str,
) -> (
    mpsc::UnboundedSender<(String, Value)>,
    mpsc::UnboundedReceiver<Posted>,
) {
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (ans_tx, ans_rx) = mpsc::unbounded_channel();
    let rt = Runtime {
        events: Arc::new(tokio::sync::Mutex::new(ev_rx)),
        answers: ans_tx,
    };
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            axum::routing::get(next_event),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/{kind}",
            axum::routing::post(answer),
        )
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (ev_tx, ans_rx)
}

/// Runs [`STREAM_TEST`] in a child process with the Lambda environment set (a free loopback
/// port for the stand-in Runtime API) and checks that it passed.
fn run_streaming_test_in_child() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", STREAM_TEST, "--nocapture"])
        .env(RUNTIME_API, format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "klozeo-export-stream")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the streaming test in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_stream_function_streams_the_same_file_as_the_inline_export() {
    let Ok(addr) = std::env::var(RUNTIME_API) else {
        return tokio::task::spawn_blocking(run_streaming_test_in_child)
            .await
            .unwrap();
    };
    // One account per backend; the function serves them all, picking the backend by API key
    // (one runtime loop per process, as in Lambda).
    let mut accounts = Vec::new();
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let api = Api::on_plan(&server, "unlimited").await;
        seed(&api, lead_count(backend)).await;
        accounts.push((backend, server, api));
    }
    let routes: Arc<Vec<_>> = Arc::new(
        accounts
            .iter()
            .map(|(_, server, api)| (api.key.clone(), service(server.app.clone(), Routes::Export)))
            .collect(),
    );
    let svc = tower::service_fn(move |req: axum::extract::Request| {
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|k| k.to_str().ok())
            .unwrap_or_default();
        let svc = routes
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or(&routes[0])
            .1
            .clone();
        tower::ServiceExt::oneshot(svc, req)
    });
    let (events, mut answers) = start_runtime(&addr).await;
    // The function's loop, as `run_export_streaming` runs it once configured.
    let function = tokio::spawn(serve_streaming(svc));
    let mut invocation = 0;
    for (backend, _server, api) in &accounts {
        let backend = *backend;
        for query in [
            "format=csv&sort_by=name",
            "format=json&sort_by=name&sort_order=desc",
            "format=xlsx&filter=and.eq.city.Paris",
            "format=csv&filter=and.eq.city.Nowhere",
        ] {
            invocation += 1;
            let id = format!("req-{invocation}");
            events
                .send((id, function_url_event(query, &api.key)))
                .unwrap();
            let posted = tokio::time::timeout(std::time::Duration::from_secs(120), answers.recv())
                .await
                .expect("the function answers")
                .unwrap();
            assert_eq!(posted.kind, "response", "{backend:?} {query}: {posted:?}");
            assert_eq!(
                posted.headers["lambda-runtime-function-response-mode"], "streaming",
                "{backend:?} {query}"
            );
            assert_eq!(
                posted.headers["content-type"],
                "application/vnd.awslambda.http-integration-response"
            );
            let sep = posted
                .body
                .windows(8)
                .position(|w| w == [0u8; 8])
                .expect("the prelude ends with eight NUL bytes");
            let prelude: Value = serde_json::from_slice(&posted.body[..sep]).unwrap();
            let body = &posted.body[sep + 8..];

            let (status, headers, expected) = inline(api, query).await;
            assert_eq!(status, StatusCode::OK, "{backend:?} {query}");
            assert_eq!(prelude["statusCode"], 200, "{backend:?} {query}: {prelude}");
            for h in ["content-type", "content-disposition"] {
                assert_eq!(
                    prelude["headers"][h].as_str(),
                    Some(headers[h].to_str().unwrap()),
                    "{backend:?} {query}: {h} in {prelude}"
                );
            }
            assert!(
                prelude["headers"]["content-disposition"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("attachment; filename=\"leads-")),
                "{prelude}"
            );
            assert!(!expected.is_empty());
            assert!(
                body == expected.as_ref(),
                "{backend:?} {query}: streamed {} bytes, inline {} bytes",
                body.len(),
                expected.len()
            );
            // The file holds the leads, not just a well-formed envelope.
            if query.starts_with("format=csv&sort_by") {
                let rows = body.iter().filter(|b| **b == b'\n').count();
                assert_eq!(rows, lead_count(backend) + 1, "{backend:?}: header + rows");
                assert!(!body.windows(2).any(|w| w == b",="), "formulas neutralised");
            }
            if query.starts_with("format=json") {
                let v: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(v.as_array().unwrap().len(), lead_count(backend));
            }
            if query.starts_with("format=xlsx") {
                assert!(body.starts_with(b"PK\x03\x04"), "a zip container");
            }
        }

        // A bad request streams a flat error, not a file.
        invocation += 1;
        events
            .send((
                format!("req-{invocation}"),
                function_url_event("format=pdf", &api.key),
            ))
            .unwrap();
        let posted = answers.recv().await.unwrap();
        let sep = posted.body.windows(8).position(|w| w == [0u8; 8]).unwrap();
        let prelude: Value = serde_json::from_slice(&posted.body[..sep]).unwrap();
        assert_eq!(prelude["statusCode"], 400, "{prelude}");
        let err: Value = serde_json::from_slice(&posted.body[sep + 8..]).unwrap();
        assert_flat_error(&err, "bad_request");
    }
    function.abort();
}

#[tokio::test]
async fn api_gateway_export_function_answers_413_naming_delivery_url_over_its_limit() {
    for backend in backends() {
        // KLOZEO_EXPORT_INLINE_LIMIT_BYTES, lowered so a few leads cross it.
        let server = TestServer::start_with_config(backend, |c| {
            c.exports.inline_limit_bytes = Some(4_000);
        })
        .await;
        let api = Api::on_plan(&server, "unlimited").await;
        seed(&api, 60).await;
        let call = |query: &str| {
            let mut event = function_url_event(query, &api.key);
            // Through the HTTP API (template.yaml's ExportLeads route), under a named stage.
            event["routeKey"] = json!("GET /api/v1/leads/export");
            event["rawPath"] = json!("/prod/api/v1/leads/export");
            event["requestContext"]["routeKey"] = json!("GET /api/v1/leads/export");
            event["requestContext"]["stage"] = json!("prod");
            event["requestContext"]["domainName"] =
                json!("r3pmxmplak.execute-api.us-east-1.amazonaws.com");
            let req = lambda_http::request::from_str(&event.to_string()).unwrap();
            handle(service(server.app.clone(), Routes::Export), req)
        };

        let resp = call("format=csv").await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{backend:?}");
        let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_flat_error(&v, "payload_too_large");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains("delivery=url"), "{msg}");

        // Under the limit: the whole file, equal to the unlimited inline export's rows.
        let resp = call("format=csv&filter=and.eq.city.Paris&filter=and.lt.rating.1").await;
        assert_eq!(resp.status(), StatusCode::OK, "{backend:?}");
        assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
        let body = resp.body().as_ref().to_vec();
        assert!(body.len() <= 4_000);
        let text = String::from_utf8(body).unwrap();
        // Paris is every third lead; ratings below 1 are i % 50 < 10.
        let expected = (0..60).filter(|i| i % 3 == 1 && i % 50 < 10).count();
        assert!(expected > 0);
        assert_eq!(text.lines().count(), expected + 1, "{text}");

        // The same large export by link is accepted.
        let resp = call("format=csv&delivery=url").await;
        assert_eq!(resp.status(), StatusCode::OK, "{backend:?}");
        let v: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(v["rows"], 60, "{v}");
    }
}
