//! The cross-tenant sweep, generated from the OpenAPI description and from MCP's `tools/list`:
//! account A holds data in every resource (leads, notes, attributes, scoring rules, a job,
//! webhooks and their deliveries, API keys, an export), and then EVERY operation the
//! description names and EVERY tool the MCP endpoint lists is called
//!
//! - with account B's key, A's ids substituted into the path (or the arguments): 404 /
//!   `RESOURCE_NOT_FOUND` where the operation addresses something, B's own data otherwise —
//!   and never one of A's ids, e-mails or names that the caller did not send itself;
//! - with a revoked key of A, an expired login session of A, and no credentials: 401;
//! - with a read-scoped key of A: 403 `insufficient_scope` on everything that is not a read;
//! - and the same again with OAuth access tokens obtained through the consent page: a third
//!   account C's token as the intruder, A's revoked token (401) and A's read-scoped token (403);
//!
//! then OAuth's own endpoints (outside the OpenAPI description) with A's code, refresh token and
//! access token presented by B's client, and A's grant revoked with B's key: refused, A's
//! token still works. Afterwards everything A can list is byte-identical to a snapshot taken before the sweep.
//! An operation or a tool without a probe strategy (a request body, an argument the sweep
//! cannot fill) fails the test, so a new route cannot slip past. Runs on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use klozeo_tests::oauth::{authorize, exchange, new_client, token_request, tokens_for};
use klozeo_tests::{Backend, TestServer, backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How a probe presents itself.
#[derive(Debug, Clone)]
enum Cred {
    /// `X-API-Key: KEY`.
    Key(String),
    /// `Authorization: Bearer TOKEN` (a login session).
    Bearer(String),
    /// Nothing at all.
    None,
}

/// Who probes: intruders (another account's key or token), credentials that must be refused
/// (A's revoked key and token, none at all), and A's read-scoped key and token.
struct Creds {
    intruders: Vec<Cred>,
    refused: Vec<Cred>,
    read: Vec<Cred>,
}

/// A's OAuth grant through its own client: what the OAuth endpoint probes present.
struct OwnerOAuth {
    client: String,
    access: String,
    refresh: String,
    grant_id: String,
    read_access: String,
    revoked_access: String,
}

/// A's data: every id by the path parameter it fills, and every marker that must not leak.
struct Owner {
    email: String,
    password: String,
    admin: String,
    read: String,
    revoked: String,
    lead: String,
    note: String,
    attr: String,
    rule: String,
    job: String,
    webhook: String,
    delivery: String,
    key_id: String,
    markers: Vec<String>,
}

struct Sweep {
    origin: String,
    base: String,
    client: reqwest::Client,
    probes: usize,
}

impl Sweep {
    async fn call(
        &mut self,
        cred: &Cred,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, String) {
        self.probes += 1;
        let mut r = self
            .client
            .request(method.clone(), format!("{}{}", self.base, path));
        match cred {
            Cred::Key(k) => r = r.header("X-API-Key", k),
            Cred::Bearer(t) => r = r.header("Authorization", format!("Bearer {t}")),
            Cred::None => {}
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let resp = r.send().await.expect("the server answers");
        let st = resp.status();
        (st, resp.text().await.expect("a body"))
    }

    async fn mcp(&mut self, cred: &Cred, tool: &str, args: &Value) -> (StatusCode, Value) {
        self.probes += 1;
        let mut r = self
            .client
            .post(format!("{}/mcp", self.origin))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": tool, "arguments": args}}));
        match cred {
            Cred::Key(k) => r = r.header("X-API-Key", k),
            Cred::Bearer(t) => r = r.header("Authorization", format!("Bearer {t}")),
            Cred::None => {}
        }
        let resp = r.send().await.expect("the server answers");
        let st = resp.status();
        let text = resp.text().await.expect("a body");
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Fails when `body` holds one of A's markers that the caller did not send itself.
fn assert_no_leak(owner: &Owner, sent: &str, body: &str, what: &str) {
    for m in &owner.markers {
        if !sent.contains(m.as_str()) {
            assert!(
                !body.contains(m.as_str()),
                "{what}: A's '{m}' leaked into: {body}"
            );
        }
    }
}

/// A's id for path parameter `param` of `path`.
fn path_value(owner: &Owner, path: &str, param: &str) -> String {
    match param {
        "note_id" => owner.note.clone(),
        "attr_id" => owner.attr.clone(),
        "delivery_id" => owner.delivery.clone(),
        "id" if path.starts_with("/leads/") => owner.lead.clone(),
        "id" if path.starts_with("/scoring-rules/") => owner.rule.clone(),
        "id" if path.starts_with("/jobs/") => owner.job.clone(),
        "id" if path.starts_with("/webhooks/") => owner.webhook.clone(),
        "id" if path.starts_with("/api-keys/") => owner.key_id.clone(),
        _ => panic!("no probe strategy for path parameter {{{param}}} of {path}"),
    }
}

/// The request body the sweep sends to an operation that takes one: valid, so that the
/// answer is about who is asking and not about the body.
fn body_for(owner: &Owner, op_id: &str) -> Value {
    match op_id {
        "register" => json!({"email": owner.email, "password": "another password 1"}),
        "login" => json!({"email": owner.email, "password": "not the password"}),
        "create_api_key" => json!({"name": "probe", "scope": "read"}),
        "create_lead" | "replace_lead" | "update_lead" => {
            json!({"name": "Probe Co", "source": "probe", "email": "probe@b.example"})
        }
        "batch_create_leads" => json!({"leads": [{"name": "Probe B", "source": "probe"}]}),
        "batch_update_leads" => json!({"ids": [owner.lead], "data": {"name": "Stolen"}}),
        "batch_delete_leads" => json!({"ids": [owner.lead]}),
        "create_note" | "update_note" => json!({"content": "probe note"}),
        "create_attribute" | "update_attribute" => {
            json!({"name": "probe", "type": "text", "value": "x"})
        }
        "create_scoring_rule" | "update_scoring_rule" | "replace_scoring_rule" => {
            json!({"name": "probe rule", "expression": "rating * 2"})
        }
        "create_webhook" | "replace_webhook" | "update_webhook" => {
            json!({"url": "http://127.0.0.1:9/probe", "events": ["lead.created"]})
        }
        _ => panic!("no probe strategy for the request body of operation {op_id}"),
    }
}

/// The query string the sweep sends to an operation that requires one.
fn query_for(op: &Value, op_id: &str) -> String {
    let required: Vec<&str> = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .filter_map(|p| p["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut q = Vec::new();
    for name in required {
        match name {
            "format" => q.push("format=json"),
            _ => panic!("no probe strategy for the required query parameter {name} of {op_id}"),
        }
    }
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

async fn req_ok(s: &mut Sweep, key: &str, m: Method, path: &str, body: Option<Value>) -> Value {
    let (st, text) = s
        .call(&Cred::Key(key.into()), &m, path, body.as_ref())
        .await;
    assert!(st.is_success(), "{m} {path}: {st} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Creates account A with data in every resource.
async fn seed_owner(server: &TestServer, s: &mut Sweep) -> Owner {
    let (email, password, admin, account_id) = register_account(s, "owner").await;
    let lead = req_ok(
        s,
        &admin,
        Method::POST,
        "/leads",
        Some(json!({"name": "Secret Owner Ltd", "source": "owner-src",
            "email": "secret@owner.example", "city": "Ownerville", "category": "OwnerCat",
            "phone": "+33 1 23 45 67 89", "rating": 4.5,
            "attributes": [{"name": "owner_attr", "type": "number", "value": 7}]})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let batch = req_ok(
        s,
        &admin,
        Method::POST,
        "/leads/batch",
        Some(
            json!({"leads": [{"name": "Second Owner Lead", "source": "owner-src",
                               "email": "second@owner.example"}]}),
        ),
    )
    .await;
    let lead2 = batch["created"][0]["id"].as_str().unwrap().to_string();
    let note = req_ok(
        s,
        &admin,
        Method::POST,
        &format!("/leads/{lead}/notes"),
        Some(json!({"content": "owner private note"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let attrs = req_ok(
        s,
        &admin,
        Method::GET,
        &format!("/leads/{lead}/attributes"),
        None,
    )
    .await;
    let attr = attrs["attributes"][0]["id"].as_str().unwrap().to_string();
    let rule = req_ok(
        s,
        &admin,
        Method::POST,
        "/scoring-rules",
        Some(json!({"name": "owner rule", "expression": "rating * 10"})),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let job = req_ok(s, &admin, Method::POST, "/leads/score/batch", None).await["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let webhook = req_ok(
        s,
        &admin,
        Method::POST,
        "/webhooks",
        Some(
            json!({"url": "http://127.0.0.1:9/owner-hook", "events": ["lead.created"],
                    "secret": "whsec_owner_secret_value"}),
        ),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let delivery = req_ok(
        s,
        &admin,
        Method::POST,
        &format!("/webhooks/{webhook}/test"),
        None,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read_key = req_ok(
        s,
        &admin,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "owner reader", "scope": "read"})),
    )
    .await;
    let revoked_key = req_ok(
        s,
        &admin,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "owner revoked", "scope": "admin"})),
    )
    .await;
    let revoked_id = revoked_key["id"].as_str().unwrap();
    let (st, text) = s
        .call(
            &Cred::Key(admin.clone()),
            &Method::DELETE,
            &format!("/api-keys/{revoked_id}"),
            None,
        )
        .await;
    assert!(st.is_success(), "revoke: {st} {text}");
    let key_id = read_key["id"].as_str().unwrap().to_string();
    // The sweep uses the read key, which stamps its `last_used_at`; using it once now (on a
    // clock that stands still) keeps that out of the before/after comparison.
    req_ok(
        s,
        read_key["key"].as_str().unwrap(),
        Method::GET,
        "/stats",
        None,
    )
    .await;
    let markers = vec![
        account_id,
        email.clone(),
        lead.clone(),
        lead2,
        note.clone(),
        attr.clone(),
        rule.clone(),
        job.clone(),
        webhook.clone(),
        delivery.clone(),
        key_id.clone(),
        "Secret Owner Ltd".into(),
        "Second Owner Lead".into(),
        "secret@owner.example".into(),
        "second@owner.example".into(),
        "Ownerville".into(),
        "OwnerCat".into(),
        "owner-src".into(),
        "owner private note".into(),
        "owner_attr".into(),
        "owner rule".into(),
        "owner-hook".into(),
        "whsec_owner_secret_value".into(),
        "owner reader".into(),
        admin.clone(),
        read_key["key"].as_str().unwrap().to_string(),
    ];
    let _ = server;
    Owner {
        email,
        password,
        admin,
        read: read_key["key"].as_str().unwrap().to_string(),
        revoked: revoked_key["key"].as_str().unwrap().to_string(),
        lead,
        note,
        attr,
        rule,
        job,
        webhook,
        delivery,
        key_id,
        markers,
    }
}

/// Everything A can read, as A reads it.
async fn snapshot(s: &mut Sweep, o: &Owner) -> BTreeMap<String, String> {
    let mut paths = vec![
        "/account".to_string(),
        "/api-keys".into(),
        "/stats".into(),
        "/categories".into(),
        "/cities".into(),
        "/leads?limit=1000".into(),
        "/leads/export?format=json".into(),
        "/scoring-rules".into(),
        format!("/scoring-rules/{}", o.rule),
        format!("/jobs/{}", o.job),
        "/webhooks".into(),
        format!("/webhooks/{}", o.webhook),
        format!("/webhooks/{}/deliveries", o.webhook),
    ];
    let (_, list) = s
        .call(
            &Cred::Key(o.admin.clone()),
            &Method::GET,
            "/leads?limit=1000",
            None,
        )
        .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    for l in list["leads"].as_array().unwrap() {
        let id = l["id"].as_str().unwrap();
        paths.push(format!("/leads/{id}"));
        paths.push(format!("/leads/{id}/notes"));
        paths.push(format!("/leads/{id}/attributes"));
        paths.push(format!("/leads/{id}/score/explain"));
    }
    let mut out = BTreeMap::new();
    for p in paths {
        let (st, text) = s
            .call(&Cred::Key(o.admin.clone()), &Method::GET, &p, None)
            .await;
        assert_eq!(st, StatusCode::OK, "snapshot {p}: {text}");
        out.insert(p, text);
    }
    out
}

fn is_read(method: &Method, path: &str) -> bool {
    *method == Method::GET && !(path == "/account" || path.starts_with("/api-keys"))
}

async fn rest_sweep(server: &TestServer, s: &mut Sweep, o: &Owner, creds: &Creds) -> usize {
    let doc: Value = reqwest::get(format!("{}/openapi.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = 0;
    for (full_path, item) in doc["paths"].as_object().unwrap() {
        let path = full_path
            .strip_prefix("/api/v1")
            .unwrap_or_else(|| panic!("{full_path} is outside /api/v1: no probe strategy"));
        for (method, op) in item.as_object().unwrap() {
            ops += 1;
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let op_id = op["operationId"].as_str().unwrap();
            let mut concrete = path.to_string();
            let mut addressed = false;
            for seg in path.split('/') {
                if let Some(param) = seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    concrete = concrete.replace(seg, &path_value(o, path, param));
                    addressed = true;
                }
            }
            concrete.push_str(&query_for(op, op_id));
            let body = op.get("requestBody").map(|_| body_for(o, op_id));
            let sent = format!("{concrete} {}", body.clone().unwrap_or(Value::Null));
            let what = format!("{method} {path} ({op_id})");
            let public = op["security"].as_array().is_some_and(|a| a.is_empty());
            if public {
                // No key is needed, so every credential gets the same answer, and none of
                // them reaches A's account: registering A's e-mail again is a conflict,
                // logging in with the wrong password a 401.
                let expected = match op_id {
                    "register" => StatusCode::CONFLICT,
                    "login" => StatusCode::UNAUTHORIZED,
                    "get_openapi" => StatusCode::OK,
                    _ => panic!("{what}: a public operation without a probe strategy"),
                };
                // (One of each kind: wrong-password logins are rate limited per address.)
                for c in [&creds.intruders[0], &Cred::None, &creds.read[0]] {
                    let (st, text) = s.call(c, &m, &concrete, body.as_ref()).await;
                    assert_eq!(st, expected, "{what} with {c:?}: {text}");
                    assert_no_leak(o, &sent, &text, &what);
                }
                continue;
            }
            // B's key and C's OAuth token.
            for b in &creds.intruders {
                let (st, text) = s.call(b, &m, &concrete, body.as_ref()).await;
                let what = format!("{what} as {b:?}");
                assert!(st.as_u16() < 500, "{what}: {st} {text}");
                if addressed {
                    assert_eq!(st, StatusCode::NOT_FOUND, "{what}: {text}");
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["code"], "not_found", "{what}: {text}");
                } else if op_id == "batch_update_leads" || op_id == "batch_delete_leads" {
                    // A's ids in the body: each is reported as not found, none is touched.
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    assert!(
                        st == StatusCode::NOT_FOUND || (v["failed"] == 1 && v["success"] == 0),
                        "{what} with A's ids: {st} {text}"
                    );
                } else {
                    assert!(st.is_success(), "{what}: {st} {text}");
                }
                assert_no_leak(o, &sent, &text, &what);
            }
            // A's revoked key and token, and no credentials.
            for c in &creds.refused {
                let (st, text) = s.call(c, &m, &concrete, body.as_ref()).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{what} with {c:?}: {text}");
                assert_no_leak(o, &sent, &text, &what);
            }
            // A's read-scoped key and token: reads pass, everything else is refused before
            // it acts.
            if !is_read(&m, path) {
                for read in &creds.read {
                    let (st, text) = s.call(read, &m, &concrete, body.as_ref()).await;
                    assert_eq!(st, StatusCode::FORBIDDEN, "{what} with {read:?}: {text}");
                    let v: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["code"], "insufficient_scope", "{what}: {text}");
                }
            }
        }
    }
    let _ = server;
    ops
}

/// The same probes with an expired login session of A (run last: it moves the clock).
async fn expired_session_sweep(server: &TestServer, s: &mut Sweep, o: &Owner, oauth: &str) {
    let (st, text) = s
        .call(
            &Cred::None,
            &Method::POST,
            "/login",
            Some(&json!({"email": o.email, "password": o.password})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let token = serde_json::from_str::<Value>(&text).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let session = Cred::Bearer(token);
    let oauth = Cred::Bearer(oauth.to_string());
    for c in [&session, &oauth] {
        let (st, text) = s.call(c, &Method::GET, "/account", None).await;
        assert_eq!(st, StatusCode::OK, "a fresh session or token works: {text}");
    }
    server
        .clock
        .advance_secs(klozeo_core::config::AccountsConfig::default().session_ttl_secs + 1);
    let doc = klozeo_core::edges::http::openapi::document();
    for (full_path, item) in doc["paths"].as_object().unwrap() {
        let path = full_path.strip_prefix("/api/v1").unwrap();
        for (method, op) in item.as_object().unwrap() {
            if op["security"].as_array().is_some_and(|a| a.is_empty()) {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let op_id = op["operationId"].as_str().unwrap();
            let mut concrete = path.to_string();
            for seg in path.split('/') {
                if let Some(param) = seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    concrete = concrete.replace(seg, &path_value(o, path, param));
                }
            }
            concrete.push_str(&query_for(op, op_id));
            let body = op.get("requestBody").map(|_| body_for(o, op_id));
            for c in [&session, &oauth] {
                let (st, text) = s.call(c, &m, &concrete, body.as_ref()).await;
                assert_eq!(
                    st,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} with an expired session or token: {text}"
                );
            }
        }
    }
}

/// A value for MCP argument `prop` of `tool`, addressing A's data where it names an id.
fn mcp_arg(o: &Owner, tool: &str, prop: &str) -> Value {
    let id_of = || -> String {
        if tool.ends_with("_note") {
            o.note.clone()
        } else if tool.ends_with("_attribute") {
            o.attr.clone()
        } else if tool.ends_with("_scoring_rule") {
            o.rule.clone()
        } else if tool.ends_with("_webhook") {
            o.webhook.clone()
        } else if tool.ends_with("_api_key") {
            o.key_id.clone()
        } else if tool.contains("lead") {
            o.lead.clone()
        } else {
            panic!("no probe strategy for the id of tool {tool}")
        }
    };
    match prop {
        "id" => json!(id_of()),
        "lead_id" => json!(o.lead),
        "ids" => json!([o.lead]),
        "confirm" => json!(true),
        "content" => json!("probe note"),
        "tag" => json!("probe-tag"),
        "name" if tool.ends_with("_attribute") => json!("probe"),
        "name" => json!("probe"),
        "type" => json!("text"),
        "value" => json!("x"),
        "expression" => json!("rating * 2"),
        "url" => json!("http://127.0.0.1:9/probe"),
        "events" => json!(["lead.created"]),
        "source" => json!("probe"),
        "scope" => json!("read"),
        "data" => json!({"name": "Stolen"}),
        "leads" => json!([{"name": "Probe B", "source": "probe"}]),
        _ => panic!("no probe strategy for argument {prop} of tool {tool}"),
    }
}

async fn mcp_sweep(s: &mut Sweep, o: &Owner, b_key: &str, creds: &Creds) -> usize {
    let resp = s
        .client
        .post(format!("{}/mcp", s.origin))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("X-API-Key", b_key)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    let list: Value = resp.json().await.unwrap();
    let tools = list["result"]["tools"].as_array().unwrap().clone();
    for t in &tools {
        let name = t["name"].as_str().unwrap();
        let schema = &t["inputSchema"];
        let props: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let mut args = serde_json::Map::new();
        for p in &props {
            // Required arguments, plus what makes the call meaningful: an id, a confirmation,
            // and what a create needs to pass validation.
            let wanted = required.contains(p)
                || matches!(
                    p.as_str(),
                    "id" | "lead_id"
                        | "ids"
                        | "confirm"
                        | "expression"
                        | "url"
                        | "events"
                        | "value"
                )
                || (p == "name" && !name.ends_with("_api_key"))
                || (p == "source" && name == "create_lead");
            if wanted {
                args.insert(p.clone(), mcp_arg(o, name, p));
            }
        }
        let args = Value::Object(args);
        let sent = args.to_string();
        let addressed = props
            .iter()
            .any(|p| p == "id" || p == "lead_id" || p == "ids");
        let read_only = t["annotations"]["readOnlyHint"] == true;
        let what = format!("MCP {name} {sent}");

        for b in &creds.intruders {
            let what = format!("{what} as {b:?}");
            let (st, v) = s.mcp(b, name, &args).await;
            assert_eq!(st, StatusCode::OK, "{what}: {v}");
            let text = v.to_string();
            assert_no_leak(o, &sent, &text, &what);
            let result = &v["result"];
            if addressed && name != "batch_update_leads" && name != "batch_delete_leads" {
                assert_eq!(result["isError"], true, "{what}: {v}");
                assert_eq!(
                    result["structuredContent"]["error"]["code"], "RESOURCE_NOT_FOUND",
                    "{what}: {v}"
                );
            } else if !addressed {
                assert_ne!(result["isError"], true, "{what}: {v}");
            }
        }
        for c in &creds.refused {
            let (st, v) = s.mcp(c, name, &args).await;
            assert_eq!(st, StatusCode::UNAUTHORIZED, "{what} with {c:?}: {v}");
            assert_no_leak(o, &sent, &v.to_string(), &what);
        }
        if !read_only {
            for read in &creds.read {
                let (st, v) = s.mcp(read, name, &args).await;
                assert_eq!(st, StatusCode::OK, "{what} with {read:?}: {v}");
                assert_eq!(v["result"]["isError"], true, "{what} with {read:?}: {v}");
                assert_eq!(
                    v["result"]["structuredContent"]["error"]["status"], 403,
                    "{what} with {read:?}: {v}"
                );
            }
        }
    }
    tools.len()
}

/// Registers an account through the API; its e-mail, password, admin key and id.
async fn register_account(s: &mut Sweep, name: &str) -> (String, String, String, String) {
    let email = format!(
        "{name}-{}@x.example",
        std::process::id() as usize + s.probes
    );
    let password = format!("{name}'s long password");
    let (st, text) = s
        .call(
            &Cred::None,
            &Method::POST,
            "/register",
            Some(&json!({"email": email, "password": password})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{text}");
    let reg: Value = serde_json::from_str(&text).unwrap();
    let field = |f: &str| reg[f].as_str().unwrap().to_string();
    (email, password, field("api_key"), field("id"))
}

/// A signs in through its own client three times: an admin grant, a read grant, and a grant
/// whose access token A then revokes. Every token is used once now, so that the sweep (on a
/// clock that stands still) does not change what A's key listing shows.
async fn owner_oauth(s: &mut Sweep, o: &mut Owner) -> OwnerOAuth {
    let origin = s.origin.clone();
    let client = new_client(&origin, "Owner Private Client").await;
    let scope = "read write admin";
    let admin = tokens_for(&origin, &client, &o.email, &o.password, scope).await;
    let read = tokens_for(&origin, &client, &o.email, &o.password, "read").await;
    let revoked = tokens_for(&origin, &client, &o.email, &o.password, scope).await;
    let access = admin["access_token"].as_str().unwrap().to_string();
    let read_access = read["access_token"].as_str().unwrap().to_string();
    let revoked_access = revoked["access_token"].as_str().unwrap().to_string();
    let r = klozeo_tests::oauth::http()
        .post(format!("{origin}/oauth/revoke"))
        .form(&[("token", revoked_access.as_str()), ("client_id", &client)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for t in [&access, &read_access] {
        let (st, text) = s
            .call(&Cred::Bearer(t.clone()), &Method::GET, "/stats", None)
            .await;
        assert_eq!(st, StatusCode::OK, "{text}");
    }
    let (st, text) = s
        .call(
            &Cred::Bearer(revoked_access.clone()),
            &Method::GET,
            "/stats",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "a revoked token: {text}");
    let keys = req_ok(s, &o.admin.clone(), Method::GET, "/api-keys", None).await;
    let grants: Vec<String> = keys
        .as_array()
        .or_else(|| keys["api_keys"].as_array())
        .unwrap_or_else(|| panic!("a key list: {keys}"))
        .iter()
        .filter(|k| k["name"] == "OAuth: Owner Private Client")
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(grants.len(), 3, "A's three grants are listed: {keys}");
    o.markers.extend(grants.iter().cloned());
    o.markers.push("Owner Private Client".into());
    o.markers.extend([
        access.clone(),
        read_access.clone(),
        admin["refresh_token"].as_str().unwrap().to_string(),
    ]);
    OwnerOAuth {
        client,
        refresh: admin["refresh_token"].as_str().unwrap().to_string(),
        grant_id: grants[0].clone(),
        access,
        read_access,
        revoked_access,
    }
}

/// OAuth's own endpoints, with A's credentials presented by B's client: A's code, A's refresh
/// token and a revocation of A's token are refused or ignored, B's key cannot revoke A's grant,
/// and A's token works afterwards.
async fn oauth_sweep(s: &mut Sweep, o: &Owner, oa: &OwnerOAuth, b_key: &str, b_client: &str) {
    let origin = s.origin.clone();
    let code = authorize(&origin, &oa.client, &o.email, &o.password, "read").await;
    let (st, body) = exchange(&origin, b_client, &code).await;
    s.probes += 2;
    assert_eq!(st, 400, "A's code exchanged by B's client: {body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    let (st, body) = token_request(
        &origin,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &oa.refresh),
            ("client_id", b_client),
        ],
    )
    .await;
    s.probes += 1;
    assert_eq!(st, 400, "A's refresh token used by B's client: {body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    let r = klozeo_tests::oauth::http()
        .post(format!("{origin}/oauth/revoke"))
        .form(&[("token", oa.access.as_str()), ("client_id", b_client)])
        .send()
        .await
        .unwrap();
    s.probes += 1;
    assert_eq!(r.status(), 200, "RFC 7009: the endpoint does not tell");
    let b = Cred::Key(b_key.to_string());
    let (st, text) = s
        .call(
            &b,
            &Method::DELETE,
            &format!("/api-keys/{}", oa.grant_id),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "B revoking A's grant: {text}");
    let (st, text) = s.call(&b, &Method::GET, "/api-keys", None).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_no_leak(o, "", &text, "B's key listing");
    let (st, text) = s
        .call(
            &Cred::Bearer(oa.access.clone()),
            &Method::GET,
            "/account",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "A's token after B's attempts: {text}");
    assert!(text.contains(&o.email), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_and_every_tool_keeps_tenants_apart() {
    for backend in backends() {
        let server = TestServer::start_with_config(backend, |c| {
            c.accounts.default_plan = "unlimited".into();
        })
        .await;
        let mut s = Sweep {
            origin: server.origin.clone(),
            base: server.base_url.clone(),
            client: reqwest::Client::new(),
            probes: 0,
        };
        server.app.oauth.default_public_url(&server.origin);
        let mut owner = seed_owner(&server, &mut s).await;
        let oa = owner_oauth(&mut s, &mut owner).await;
        let (_, _, intruder, _) = register_account(&mut s, "intruder").await;
        let b_client = new_client(&s.origin, "Intruder client").await;
        // C signs in through its own client: its token is the second intruder.
        let (c_email, c_password, _, _) = register_account(&mut s, "third").await;
        let c_token = tokens_for(
            &s.origin,
            &b_client,
            &c_email,
            &c_password,
            "read write admin",
        )
        .await["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        // B has data of its own, so "B's own list" is not trivially empty.
        req_ok(
            &mut s,
            &intruder,
            Method::POST,
            "/leads",
            Some(json!({"name": "Intruder Inc", "source": "b"})),
        )
        .await;
        let creds = Creds {
            intruders: vec![Cred::Key(intruder.clone()), Cred::Bearer(c_token)],
            refused: vec![
                Cred::Key(owner.revoked.clone()),
                Cred::Bearer(oa.revoked_access.clone()),
                Cred::None,
            ],
            read: vec![
                Cred::Key(owner.read.clone()),
                Cred::Bearer(oa.read_access.clone()),
            ],
        };
        let before = snapshot(&mut s, &owner).await;
        let start = s.probes;
        let ops = rest_sweep(&server, &mut s, &owner, &creds).await;
        let tools = mcp_sweep(&mut s, &owner, &intruder, &creds).await;
        oauth_sweep(&mut s, &owner, &oa, &intruder, &b_client).await;
        let mut probes = s.probes - start;
        let after = snapshot(&mut s, &owner).await;
        for (path, body) in &before {
            assert_eq!(
                Some(body),
                after.get(path),
                "A's {path} changed in the sweep"
            );
        }
        assert_eq!(before.len(), after.len());
        // B's use of A's refresh token did not end A's grant: A's own client still refreshes.
        let (st, body) = token_request(
            &s.origin,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &oa.refresh),
                ("client_id", &oa.client),
            ],
        )
        .await;
        assert_eq!(st, 200, "A's refresh after the sweep: {body}");
        let start = s.probes;
        expired_session_sweep(&server, &mut s, &owner, &oa.access).await;
        probes += s.probes - start;
        assert!(ops >= 45, "the description names {ops} operations");
        assert!(tools >= 33, "tools/list names {tools} tools");
        println!(
            "cross-tenant sweep on {}: {ops} operations, {tools} tools, {probes} probes",
            match backend {
                Backend::Embedded => "embedded",
                Backend::Dynamo => "DynamoDB",
            }
        );
    }
}
