//! The Lambda edge driven the way API Gateway drives it: event fixtures (HTTP API payload 2.0
//! and REST API payload 1.0, under `tests/fixtures/apigw/`) are decoded by `lambda_http` and
//! answered by `klozeo_core::edges::lambda::handle` — the code every Lambda invocation runs —
//! and each answer must equal what `klozeo serve`'s router gives over real HTTP for the same
//! request, on every backend of the run.
//!
//! The fixtures exercise what API Gateway does to a request on its way to the function: a
//! stage segment in the path (`/prod/...`), base64-encoded bodies, repeated `filter` query
//! parameters (2.0: `rawQueryString`, whose `queryStringParameters` joins them with commas;
//! 1.0: `multiValueQueryStringParameters`), and header names in any case.
//!
//! Two tenants on one store play the two sides: the Lambda side and the HTTP side make the
//! same requests with the same clock, so their answers are equal once each side's lead ids are
//! replaced by their creation rank and cursors (which are per tenant) by a placeholder.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use klozeo_core::edges::http::{Routes, service};
use klozeo_core::edges::lambda::handle;
use klozeo_tests::{Backend, TestServer, backends, urlencode};
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use reqwest::{Client, Method};
use serde_json::{Value, json};

/// The `lambda_http` setting whose value must not change routing.
const IGNORE_STAGE: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";

/// The list query of `list.json`, as a client sends it to `klozeo serve`.
const LIST_QUERY: &str = "filter=and.eq.city.paris&filter=and.in.source.api%2Cwebsite\
                          &filter=and.not_contains.name.x+y%26z&sort_by=name&sort_order=asc&limit=2";

/// Headers whose values must be the same on both sides.
const COMPARED_HEADERS: &[&str] = &[
    "content-type",
    "idempotency-replayed",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "location",
];

#[derive(Debug, Clone, Copy)]
enum Payload {
    /// HTTP API, payload format 2.0 (what template.yaml deploys).
    Http2,
    /// REST API, payload format 1.0.
    Rest1,
}

impl Payload {
    fn dir(self) -> &'static str {
        match self {
            Payload::Http2 => "http-2.0",
            Payload::Rest1 => "rest-1.0",
        }
    }
}

/// The body of `create.json` (base64-encoded there).
fn create_body() -> Value {
    json!({"name": "Golf", "source": "website", "city": "Paris", "country": "FR",
           "email": "golf@example.com", "rating": 4.0, "tags": ["inbound", "b2b"]})
}

/// The body of `update.json`.
fn update_body() -> Value {
    json!({"status": "contacted", "rating": 4.5, "phone": "+33 1 02 03 04 05"})
}

fn seeds() -> Vec<Value> {
    [
        ("Alpha", "google_maps", "Paris"),
        ("Bravo", "website", "Paris"),
        ("Charlie", "website", "Lyon"),
        ("Delta", "api", "paris"),
        ("Echo", "api", "PARIS"),
        ("Foxtrot", "api", "Berlin"),
    ]
    .into_iter()
    .map(|(name, source, city)| json!({"name": name, "source": source, "city": city}))
    .collect()
}

/// One side of the comparison: an account and the ids it created, in order.
struct Side {
    key: String,
    ids: Vec<String>,
}

/// A response reduced to what a client observes.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Answer {
    fn new(status: u16, headers: &axum::http::HeaderMap, body: &[u8]) -> Answer {
        let headers = COMPARED_HEADERS
            .iter()
            .filter_map(|h| {
                let v = headers.get(*h)?;
                Some((h.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            })
            .collect();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// The answer with `own`'s ids replaced by `<own N>`, `other`'s by `<other N>`, and the
    /// cursor by `<cursor>`, so both sides' answers compare equal.
    fn scrubbed(&self, own: &Side, other: &Side) -> Answer {
        fn walk(v: &mut Value, subst: &[(String, String)]) {
            match v {
                Value::String(s) => {
                    for (from, to) in subst {
                        if s.contains(from.as_str()) {
                            *s = s.replace(from.as_str(), to);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(|v| walk(v, subst)),
                Value::Object(o) => {
                    for (k, v) in o.iter_mut() {
                        if k == "next_cursor" && v.is_string() {
                            *v = Value::String("<cursor>".into());
                        } else {
                            walk(v, subst);
                        }
                    }
                }
                _ => {}
            }
        }
        let mut subst: Vec<(String, String)> = Vec::new();
        for (i, id) in own.ids.iter().enumerate() {
            subst.push((id.clone(), format!("<own {i}>")));
        }
        for (i, id) in other.ids.iter().enumerate() {
            subst.push((id.clone(), format!("<other {i}>")));
        }
        let mut out = self.clone();
        walk(&mut out.body, &subst);
        out
    }

    fn names(&self) -> Vec<&str> {
        self.body["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect()
    }

    fn cursor(&self) -> String {
        self.body["next_cursor"].as_str().unwrap().to_string()
    }
}

/// The fixture `payload/name.json` with every `{{VAR}}` in its strings replaced.
fn fixture(payload: Payload, name: &str, vars: &[(&str, &str)]) -> String {
    fn substitute(v: &mut Value, vars: &[(&str, &str)]) {
        match v {
            Value::String(s) => {
                for (k, val) in vars {
                    *s = s.replace(&format!("{{{{{k}}}}}"), val);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| substitute(v, vars)),
            Value::Object(o) => o.values_mut().for_each(|v| substitute(v, vars)),
            _ => {}
        }
    }
    let path = format!(
        "{}/fixtures/apigw/{}/{name}.json",
        env!("CARGO_MANIFEST_DIR"),
        payload.dir()
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    substitute(&mut v, vars);
    let text = v.to_string();
    assert!(
        !text.contains("{{"),
        "{path}: a placeholder was left: {text}"
    );
    text
}

/// The answer of the Lambda handler to a fixture event.
async fn via_lambda<S>(svc: &S, payload: Payload, name: &str, vars: &[(&str, &str)]) -> Answer
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    let req = lambda_http::request::from_str(&fixture(payload, name, vars))
        .unwrap_or_else(|e| panic!("{payload:?}/{name}: not an API Gateway event: {e}"));
    // The fixture must be decoded as the payload format it stands for.
    match (payload, req.request_context_ref()) {
        (Payload::Http2, Some(RequestContext::ApiGatewayV2(_)))
        | (Payload::Rest1, Some(RequestContext::ApiGatewayV1(_))) => {}
        (p, ctx) => panic!("{p:?}/{name} decoded as {ctx:?}"),
    }
    match name {
        "create" => assert_eq!(
            serde_json::from_slice::<Value>(req.body()).unwrap(),
            create_body(),
            "{payload:?}/create: the base64 body must decode to the lead"
        ),
        "update" => assert_eq!(
            serde_json::from_slice::<Value>(req.body()).unwrap(),
            update_body()
        ),
        _ => {}
    }
    let resp = handle(svc.clone(), req).await;
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        // API Gateway gets JSON as text, not base64.
        assert!(
            matches!(resp.body(), lambda_http::Body::Text(_)),
            "{payload:?}/{name}: JSON answered as {:?}",
            resp.body()
        );
    }
    Answer::new(resp.status().as_u16(), resp.headers(), resp.body())
}

/// The answer of `klozeo serve`'s router over HTTP.
async fn via_serve(
    c: &Client,
    s: &TestServer,
    method: Method,
    path_and_query: &str,
    key: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut r = c.request(method, format!("{}{path_and_query}", s.origin));
    if let Some(k) = key {
        r = r.header("X-API-Key", k);
    }
    for (h, v) in headers {
        r = r.header(*h, *v);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    Answer::new(status, &headers, &bytes)
}

/// Asserts both sides gave the expected status and the same answer; returns them.
fn same(
    step: &str,
    payload: Payload,
    backend: Backend,
    expected: u16,
    (lam, lam_side): (Answer, &Side),
    (srv, srv_side): (Answer, &Side),
) -> (Answer, Answer) {
    let ctx = format!("{backend:?} {payload:?} {step}");
    assert_eq!(lam.status, expected, "{ctx}: Lambda answered {lam:?}");
    assert_eq!(srv.status, expected, "{ctx}: serve answered {srv:?}");
    assert_eq!(
        lam.scrubbed(lam_side, srv_side),
        srv.scrubbed(srv_side, lam_side),
        "{ctx}: the Lambda answer differs from serve's"
    );
    (lam, srv)
}

async fn scenario(backend: Backend, payload: Payload) {
    let s = TestServer::start(backend).await;
    let svc = service(s.app.clone(), Routes::Leads);
    let c = Client::new();
    let mut lam = Side {
        key: s.account("leads100").await,
        ids: Vec::new(),
    };
    let mut srv = Side {
        key: s.account("leads100").await,
        ids: Vec::new(),
    };

    // The same leads for both accounts, one second apart, through `klozeo serve`.
    for lead in seeds() {
        for side in [&mut lam, &mut srv] {
            let a = via_serve(
                &c,
                &s,
                Method::POST,
                "/api/v1/leads",
                Some(&side.key),
                Some(lead.clone()),
                &[],
            )
            .await;
            assert_eq!(a.status, 201, "{a:?}");
            side.ids.push(a.body["id"].as_str().unwrap().to_string());
        }
        s.clock.advance_secs(1);
    }

    // POST with a base64 body and an Idempotency-Key, twice: created, then replayed.
    for round in 0..2 {
        let l = via_lambda(&svc, payload, "create", &[("API_KEY", &lam.key)]).await;
        let r = via_serve(
            &c,
            &s,
            Method::POST,
            "/api/v1/leads",
            Some(&srv.key),
            Some(create_body()),
            &[("Idempotency-Key", "create-golf-1")],
        )
        .await;
        if round == 0 {
            lam.ids.push(l.body["id"].as_str().unwrap().to_string());
            srv.ids.push(r.body["id"].as_str().unwrap().to_string());
        }
        let (l, _) = same("create", payload, backend, 201, (l, &lam), (r, &srv));
        assert_eq!(
            l.headers.get("idempotency-replayed").map(String::as_str),
            (round == 1).then_some("true"),
            "{payload:?} create round {round}: {l:?}"
        );
    }
    s.clock.advance_secs(1);

    // Repeated filters, a stage in the path, sorting and keyset pagination.
    let l = via_lambda(&svc, payload, "list", &[("API_KEY", &lam.key)]).await;
    let r = via_serve(
        &c,
        &s,
        Method::GET,
        &format!("/api/v1/leads?{LIST_QUERY}"),
        Some(&srv.key),
        None,
        &[],
    )
    .await;
    let (l, r) = same("list", payload, backend, 200, (l, &lam), (r, &srv));
    assert_eq!(l.names(), ["Bravo", "Delta"], "{payload:?}: {l:?}");
    assert_eq!(l.body["has_more"], true);
    let (lam_cursor, srv_cursor) = (l.cursor(), r.cursor());

    let l = via_lambda(
        &svc,
        payload,
        "list_next",
        &[
            ("API_KEY", &lam.key),
            ("CURSOR", &lam_cursor),
            ("CURSOR_URLENCODED", &urlencode(&lam_cursor)),
        ],
    )
    .await;
    let r = via_serve(
        &c,
        &s,
        Method::GET,
        &format!(
            "/api/v1/leads?{LIST_QUERY}&cursor={}",
            urlencode(&srv_cursor)
        ),
        Some(&srv.key),
        None,
        &[],
    )
    .await;
    let (l, _) = same("list_next", payload, backend, 200, (l, &lam), (r, &srv));
    assert_eq!(l.names(), ["Echo", "Golf"], "{payload:?}: {l:?}");
    assert_eq!(l.body["has_more"], false);

    // GET, PUT, cross-tenant GET, DELETE on the created lead.
    let (lam_id, srv_id) = (lam.ids[6].clone(), srv.ids[6].clone());
    let get = async |id_lam: &str, id_srv: &str| {
        let l = via_lambda(
            &svc,
            payload,
            "get",
            &[("API_KEY", &lam.key), ("LEAD_ID", id_lam)],
        )
        .await;
        let r = via_serve(
            &c,
            &s,
            Method::GET,
            &format!("/api/v1/leads/{id_srv}"),
            Some(&srv.key),
            None,
            &[],
        )
        .await;
        (l, r)
    };
    let (l, r) = get(&lam_id, &srv_id).await;
    let (l, _) = same("get", payload, backend, 200, (l, &lam), (r, &srv));
    assert_eq!(l.body["name"], "Golf");

    s.clock.advance_secs(1);
    let l = via_lambda(
        &svc,
        payload,
        "update",
        &[("API_KEY", &lam.key), ("LEAD_ID", &lam_id)],
    )
    .await;
    let r = via_serve(
        &c,
        &s,
        Method::PUT,
        &format!("/api/v1/leads/{srv_id}"),
        Some(&srv.key),
        Some(update_body()),
        &[],
    )
    .await;
    let (l, _) = same("update", payload, backend, 200, (l, &lam), (r, &srv));
    assert_eq!(l.body["status"], "contacted", "{l:?}");

    // Each side asks for the other side's lead: absent, not forbidden.
    let (l, r) = get(&srv_id, &lam_id).await;
    same(
        "get other tenant",
        payload,
        backend,
        404,
        (l, &lam),
        (r, &srv),
    );

    let l = via_lambda(
        &svc,
        payload,
        "delete",
        &[("API_KEY", &lam.key), ("LEAD_ID", &lam_id)],
    )
    .await;
    let r = via_serve(
        &c,
        &s,
        Method::DELETE,
        &format!("/api/v1/leads/{srv_id}"),
        Some(&srv.key),
        None,
        &[],
    )
    .await;
    same("delete", payload, backend, 204, (l, &lam), (r, &srv));
    let (l, r) = get(&lam_id, &srv_id).await;
    same("get deleted", payload, backend, 404, (l, &lam), (r, &srv));

    let l = via_lambda(&svc, payload, "no_key", &[]).await;
    let r = via_serve(&c, &s, Method::GET, "/api/v1/leads", None, None, &[]).await;
    same("no key", payload, backend, 401, (l, &lam), (r, &srv));

    // The not-found message names the path the router saw: no stage in it.
    let l = via_lambda(&svc, payload, "unknown_route", &[("API_KEY", &lam.key)]).await;
    let r = via_serve(
        &c,
        &s,
        Method::GET,
        "/api/v1/nope",
        Some(&srv.key),
        None,
        &[],
    )
    .await;
    let (l, _) = same("unknown route", payload, backend, 404, (l, &lam), (r, &srv));
    assert_eq!(l.body["message"], "No route for /api/v1/nope", "{l:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_payload_2_0_matches_serve() {
    for backend in backends() {
        scenario(backend, Payload::Http2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_payload_1_0_matches_serve() {
    for backend in backends() {
        scenario(backend, Payload::Rest1).await;
    }
}

/// `lambda_http` adds the stage to REST paths unless `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is
/// set (and keeps it in HTTP API paths either way); routing must be right in both cases. The
/// variable is read per request from the process environment, which a test cannot change
/// safely, so the two tests above run again in a child process that has it set.
#[test]
fn routing_does_not_depend_on_ignore_stage_in_path() {
    if std::env::var_os(IGNORE_STAGE).is_some() {
        // This run is already the child (or the variable is set for the whole suite).
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lambda_events::http_api_payload_2_0_matches_serve",
            "lambda_events::rest_api_payload_1_0_matches_serve",
        ])
        .env(IGNORE_STAGE, "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("2 passed"),
        "with {IGNORE_STAGE}=true:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
