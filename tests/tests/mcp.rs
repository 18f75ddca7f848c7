//! The MCP endpoint over real HTTP and through the Lambda event adapter:
//!
//! - the whole `tools/list` answer equals the checked-in golden file
//!   `tests/golden/mcp_tools_list.json` (run with `KLOZEO_UPDATE_GOLDEN=1` to rewrite it after
//!   an intended change, and review the diff), and every description keeps its length limit;
//! - authentication: no or a wrong key is a 401 with a `WWW-Authenticate` challenge, a
//!   foreign browser Origin is refused;
//! - a Lambda Function URL event (payload 2.0) reaches the same tools through
//!   `edges::lambda::handle`, and what the tool wrote is in the store.
#![allow(clippy::unwrap_used)]

use klozeo_core::edges::http::{Routes, service};
use klozeo_core::edges::lambda::handle;
use klozeo_core::edges::mcp::catalog::{MAX_DESCRIPTION, MAX_PARAM_DESCRIPTION};
use klozeo_tests::{Backend, TestServer};
use serde_json::{Value, json};

const ACCEPT: &str = "application/json, text/event-stream";

async fn rpc(
    server: &TestServer,
    headers: &[(&str, &str)],
    body: Value,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/mcp", server.origin))
        .header("accept", ACCEPT)
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let h = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn descriptions(v: &Value, out: &mut Vec<String>) {
    if let Some(Value::Object(props)) = v.get("properties") {
        for p in props.values() {
            if let Some(Value::String(d)) = p.get("description") {
                out.push(d.clone());
            }
        }
    }
}

#[tokio::test]
async fn tools_list_matches_the_golden_file_and_the_length_limits() {
    let server = TestServer::start(Backend::Embedded).await;
    let key = server.account("unlimited").await;
    let auth = format!("Bearer {key}");
    let (status, _, body) = rpc(
        &server,
        &[("authorization", &auth)],
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let result = body["result"].clone();
    let tools = result["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 33);
    for t in tools {
        let name = t["name"].as_str().unwrap();
        let d = t["description"].as_str().unwrap();
        assert!(
            d.len() <= MAX_DESCRIPTION,
            "{name}: description too long: {d}"
        );
        let mut params = Vec::new();
        descriptions(&t["inputSchema"], &mut params);
        for p in params {
            assert!(p.chars().count() <= MAX_PARAM_DESCRIPTION, "{name}: '{p}'");
        }
        assert_eq!(t["inputSchema"]["type"], "object", "{name}");
        assert_eq!(t["outputSchema"]["required"], json!(["data"]), "{name}");
        assert_eq!(t["annotations"]["openWorldHint"], false, "{name}");
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/mcp_tools_list.json");
    let pretty = serde_json::to_string_pretty(&result).unwrap() + "\n";
    if std::env::var("KLOZEO_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &pretty).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with KLOZEO_UPDATE_GOLDEN=1)", path.display()));
    let golden: Value = serde_json::from_str(&golden).unwrap();
    assert_eq!(
        result, golden,
        "tools/list changed; if intended, rerun with KLOZEO_UPDATE_GOLDEN=1 and review the diff"
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_a_challenge_and_foreign_origins_are_refused() {
    let server = TestServer::start(Backend::Embedded).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let (status, h, body) = rpc(&server, &[], list.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthorized");
    let expected = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
        server.origin
    );
    assert_eq!(h["www-authenticate"], expected.as_str());
    let (status, h, _) = rpc(&server, &[("x-api-key", "sk_live_0000")], list.clone()).await;
    assert_eq!(status, 401);
    assert!(h.contains_key("www-authenticate"));

    let key = server.account("unlimited").await;
    let (status, _, body) = rpc(
        &server,
        &[("x-api-key", &key), ("origin", "https://evil.example")],
        list.clone(),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = rpc(
        &server,
        &[("x-api-key", &key), ("origin", &server.origin)],
        list,
    )
    .await;
    assert_eq!(status, 200);
}

/// A Function URL event (payload 2.0) as AWS delivers it.
fn function_url_event(headers: Value, body: &Value) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/mcp",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghijklmnopqrstuvwxyz012345",
            "domainName": "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghijklmnopqrstuvwxyz012345",
            "http": {
                "method": "POST",
                "path": "/mcp",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "python-httpx/0.28"
            },
            "requestId": "9f2c0a1e-0000-4000-8000-000000000001",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1796083200000u64
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test]
async fn a_function_url_event_runs_a_tool_through_the_lambda_adapter() {
    let server = TestServer::start(Backend::Embedded).await;
    let key = server.account("unlimited").await;
    let svc = service(server.app.clone(), Routes::Mcp);
    let host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws";
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "create_lead",
        "arguments": {"name": "Function URL Co", "source": "lambda", "city": "Dublin"}
    }});
    let headers = json!({
        "host": host, "content-type": "application/json", "accept": ACCEPT,
        "mcp-protocol-version": "2025-06-18", "authorization": format!("Bearer {key}"),
        "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"
    });
    let req = lambda_http::request::from_str(&function_url_event(headers, &call)).unwrap();
    let resp = handle(svc.clone(), req).await;
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let result = &body["result"];
    assert_eq!(result["isError"], false, "{body}");
    let id = result["structuredContent"]["data"]["id"].as_str().unwrap();
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"]);
    let tenant = server.app.accounts.authenticate(&key).await.unwrap();
    let stored = server
        .app
        .leads
        .get(
            &tenant,
            &klozeo_core::domain::ids::LeadId::parse(id).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stored.name, "Function URL Co");

    // Without a key: the challenge names the Function URL's own https origin.
    let headers = json!({"host": host, "content-type": "application/json", "accept": ACCEPT,
                         "x-forwarded-proto": "https"});
    let req = lambda_http::request::from_str(&function_url_event(headers, &call)).unwrap();
    let resp = handle(svc, req).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        format!(
            "Bearer resource_metadata=\"https://{host}/.well-known/oauth-protected-resource/mcp\""
        )
        .as_str()
    );
}

/// `list_leads` with `format` over HTTP: a link on this server, fetched without a key.
#[tokio::test]
async fn list_leads_with_format_links_the_whole_export_and_refuses_paging() {
    let server = TestServer::start(Backend::Embedded).await;
    let key = server.account("unlimited").await;
    let auth = format!("Bearer {key}");
    let call = |args: Value| {
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "list_leads", "arguments": args}})
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, _, body) = rpc(
            &server,
            &[("authorization", &auth)],
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "create_lead",
                "arguments": {"name": format!("Linked {i}"), "source": "t",
                              "city": if i % 2 == 0 { "Turin" } else { "Milan" }}}}),
        )
        .await;
        ids.push(
            body["result"]["structuredContent"]["data"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (status, _, body) = rpc(
        &server,
        &[("authorization", &auth)],
        call(json!({"filters": ["and.eq.city.Turin"], "sort": "name",
                    "sort_order": "DESC", "format": "csv"})),
    )
    .await;
    assert_eq!(status, 200);
    let data = &body["result"]["structuredContent"]["data"];
    assert_eq!(body["result"]["isError"], false, "{body}");
    assert_eq!(data["rows"], 3);
    assert_eq!(data["format"], "csv");
    let url = data["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/downloads/", server.origin)),
        "{url}"
    );
    let file = reqwest::get(url).await.unwrap();
    assert_eq!(file.status(), 200);
    let text = file.text().await.unwrap();
    let got: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(got, vec![&ids[4], &ids[2], &ids[0]], "{text}");

    for (args, word) in [
        (json!({"format": "csv", "limit": 5}), "limit"),
        (json!({"format": "json", "cursor": "abc"}), "cursor"),
        (json!({"format": "xlsx", "fields": ["name"]}), "fields"),
        (json!({"format": "pdf"}), "format"),
    ] {
        let (_, _, body) = rpc(&server, &[("authorization", &auth)], call(args)).await;
        let err = &body["result"]["structuredContent"]["error"];
        assert_eq!(body["result"]["isError"], true, "{body}");
        assert_eq!(err["code"], "VALIDATION_ERROR", "{body}");
        assert!(err["message"].as_str().unwrap().contains(word), "{body}");
    }
}

/// Over stdio no server answers a download link: the tool hands out the file itself, or a
/// link on `KLOZEO_PUBLIC_URL` when one is configured.
#[tokio::test]
async fn list_leads_with_format_over_stdio_links_the_local_file() {
    use klozeo_core::edges::mcp::call::CallContext;
    use klozeo_core::edges::mcp::catalog;
    use klozeo_core::edges::mcp::server::{Caller, McpServer};
    let server = TestServer::start(Backend::Embedded).await;
    let key = server.account("unlimited").await;
    let t = server.app.accounts.authenticate(&key).await.unwrap();
    let mcp = McpServer::new(server.app.clone(), Caller::Key(key.as_str().into()));
    let tool = catalog::tool("create_lead").unwrap();
    let ctx = CallContext::default();
    let made = mcp
        .run(&t, tool, json!({"name": "Filed Co", "source": "t"}), &ctx)
        .await;
    let id = made["data"]["id"].as_str().unwrap();
    let list = catalog::tool("list_leads").unwrap();
    let out = mcp.run(&t, list, json!({"format": "json"}), &ctx).await;
    let url = out["data"]["url"].as_str().unwrap();
    let path = url
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("{out}"));
    let leads: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(leads[0]["id"], id);
    assert_eq!(out["data"]["rows"], 1);

    let public = CallContext {
        link_base: Some("https://leads.example.com".into()),
    };
    let out = mcp.run(&t, list, json!({"format": "csv"}), &public).await;
    let url = out["data"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://leads.example.com/downloads/exports/"),
        "{url}"
    );
}
