//! OAuth 2.1 for MCP clients over real HTTP, on every store: discovery, registration, the
//! sign-in and consent page, codes, tokens, refresh rotation, revocation, and every error path
//! the issue lists (PKCE missing or plain, wrong verifier, reused or expired code, mismatched
//! redirect URI or resource, reused refresh token, revoked token, CSRF token missing or wrong,
//! non-loopback http redirect, unregistered redirect URI).
#![allow(clippy::unwrap_used)]

use klozeo_core::domain::oauth::s256;
use klozeo_tests::oauth::{REDIRECT, VERIFIER, hidden, http, location, query};
use klozeo_tests::{Backend, TestServer, backends};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A server with an account that can sign in and a registered client.
struct Setup {
    server: TestServer,
    email: String,
    admin_key: String,
    client_id: String,
}

/// A server whose OAuth issuer is its own address, as `klozeo serve` sets it.
async fn start(backend: Backend) -> TestServer {
    let server = TestServer::start(backend).await;
    server.app.oauth.default_public_url(&server.origin);
    server
}

async fn setup(backend: Backend) -> Setup {
    let server = start(backend).await;
    let email = format!(
        "oauth-{}@example.com",
        hex::encode(rand::random::<[u8; 8]>())
    );
    let (_, key) = server
        .app
        .accounts
        .register(&email, PASSWORD)
        .await
        .unwrap();
    let (status, body) = register(
        &server,
        json!({"client_name": "Test <Client>", "redirect_uris": [REDIRECT]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    Setup {
        client_id: body["client_id"].as_str().unwrap().to_string(),
        server,
        email,
        admin_key: key.raw,
    }
}

async fn register(server: &TestServer, body: Value) -> (StatusCode, Value) {
    klozeo_tests::oauth::register_client(&server.origin, body).await
}

fn authorize_url(s: &Setup, extra: &[(&str, &str)]) -> String {
    let challenge = s256(VERIFIER);
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &s.client_id),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "st4te"),
        ("scope", "read write"),
    ];
    for (k, v) in extra {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{}/oauth/authorize?{q}", s.server.origin)
}

async fn get(url: &str) -> (StatusCode, HeaderMap, String) {
    let r = http().get(url).send().await.unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

async fn post_form(
    s: &Setup,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut r = http()
        .post(format!("{}/oauth/authorize", s.server.origin))
        .form(form);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// Signs in and allows on the page of `url`; returns the code.
async fn code_for(s: &Setup, url: &str) -> String {
    let (status, _, html) = get(url).await;
    assert_eq!(status, 200, "{html}");
    let (status, h, body) = post_form(
        s,
        &[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("email", &s.email),
            ("password", PASSWORD),
            ("decision", "allow"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 302, "{body}");
    let to = location(&h);
    assert_eq!(query(&to, "state").as_deref(), Some("st4te"));
    assert_eq!(query(&to, "iss").as_deref(), Some(s.server.origin.as_str()));
    query(&to, "code").expect("a code")
}

async fn token(s: &Setup, form: &[(&str, &str)]) -> (StatusCode, Value) {
    klozeo_tests::oauth::token_request(&s.server.origin, form).await
}

async fn exchange(s: &Setup, code: &str) -> (StatusCode, Value) {
    token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", &s.client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn tokens(s: &Setup) -> Value {
    let code = code_for(s, &authorize_url(s, &[])).await;
    let (status, body) = exchange(s, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn rest(s: &Setup, method: reqwest::Method, path: &str, bearer: &str) -> (StatusCode, Value) {
    let r = http()
        .request(method, format!("{}{path}", s.server.base_url))
        .bearer_auth(bearer)
        .json(&json!({"name": "Acme", "city": "Paris", "source": "oauth-test"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn tools_list(s: &Setup, bearer: &str) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{}/mcp", s.server.origin))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(bearer)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_oauth_error(status: StatusCode, body: &Value, want_status: u16, error: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

#[tokio::test]
async fn discovery_documents_name_the_configured_issuer_and_endpoints() {
    for backend in backends() {
        let server = start(backend).await;
        let o = &server.origin;
        let (status, h, body) = get(&format!("{o}/.well-known/oauth-authorization-server")).await;
        assert_eq!(status, 200);
        assert_eq!(h["access-control-allow-origin"], "*");
        let m: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(m["issuer"], *o);
        assert_eq!(m["authorization_endpoint"], format!("{o}/oauth/authorize"));
        assert_eq!(m["token_endpoint"], format!("{o}/oauth/token"));
        assert_eq!(m["registration_endpoint"], format!("{o}/oauth/register"));
        assert_eq!(m["revocation_endpoint"], format!("{o}/oauth/revoke"));
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(
            m["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(m["token_endpoint_auth_methods_supported"], json!(["none"]));
        assert_eq!(m["client_id_metadata_document_supported"], true);
        // The Host header never changes the issuer.
        let r = http()
            .get(format!("{o}/.well-known/oauth-authorization-server"))
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["issuer"], *o);

        let (status, _, body) = get(&format!("{o}/.well-known/oauth-protected-resource/mcp")).await;
        assert_eq!(status, 200);
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["resource"], format!("{o}/mcp"));
        assert_eq!(r["authorization_servers"], json!([o]));
        assert_eq!(r["bearer_methods_supported"], json!(["header"]));
        assert_eq!(r["scopes_supported"], json!(["read", "write", "admin"]));
        let (_, _, body) = get(&format!("{o}/.well-known/oauth-protected-resource")).await;
        let r: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["resource"], *o);

        // The MCP endpoint's challenge points at the metadata.
        let r = http()
            .post(format!("{o}/mcp"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers()["www-authenticate"],
            format!("Bearer resource_metadata=\"{o}/.well-known/oauth-protected-resource/mcp\"")
                .as_str()
        );
        // Without a configured public URL nothing is derived from the request.
        let bare = TestServer::start(backend).await;
        let r = http()
            .get(format!(
                "{}/.well-known/oauth-authorization-server",
                bare.origin
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
        // Browser clients preflight the token endpoint.
        let r = http()
            .request(reqwest::Method::OPTIONS, format!("{o}/oauth/token"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
    }
}

#[tokio::test]
async fn full_flow_gives_a_token_for_mcp_and_rest_listed_and_revocable_as_a_key() {
    for backend in backends() {
        let s = setup(backend).await;
        // The page: sign-in first, then consent naming the client, scope and account.
        let (status, h, html) = get(&authorize_url(&s, &[])).await;
        assert_eq!(status, 200);
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(html.contains("name=\"email\"") && html.contains("name=\"password\""));
        assert!(
            html.contains("Test &lt;Client&gt;"),
            "the client name is escaped: {html}"
        );
        let (request, csrf) = (hidden(&html, "request"), hidden(&html, "csrf"));
        let (status, h, consent) = post_form(
            &s,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("email", &s.email),
                ("password", PASSWORD),
            ],
            None,
        )
        .await;
        assert_eq!(status, 200, "{consent}");
        assert!(
            consent.contains(&s.email) && consent.contains("read write"),
            "{consent}"
        );
        assert!(consent.contains("value=\"allow\"") && consent.contains("value=\"deny\""));
        let cookie = h["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert!(cookie.starts_with("klozeo_session=kls_"), "{cookie}");
        // With the session cookie a new request skips the sign-in.
        let (_, _, again) = get(&authorize_url(&s, &[])).await;
        assert!(
            again.contains("name=\"password\""),
            "no cookie sent, so sign-in again"
        );
        let (status, h, _) = post_form(
            &s,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("decision", "allow"),
            ],
            Some(&cookie),
        )
        .await;
        assert_eq!(status, 302);
        let to = location(&h);
        assert!(to.as_str().starts_with(REDIRECT), "{to}");
        let code = query(&to, "code").unwrap();
        let (status, t) = exchange(&s, &code).await;
        assert_eq!(status, 200, "{t}");
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["scope"], "read write");
        assert!(t["expires_in"].as_i64().unwrap() > 0);
        let access = t["access_token"].as_str().unwrap();
        let refresh = t["refresh_token"].as_str().unwrap();

        // The token works on MCP and REST.
        let (status, body) = tools_list(&s, access).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["result"]["tools"].as_array().unwrap().len() > 10);
        let (status, created) = rest(&s, reqwest::Method::POST, "/leads", access).await;
        assert_eq!(status, 201, "{created}");
        let (status, list) = rest(&s, reqwest::Method::GET, "/leads", access).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["leads"].as_array().unwrap().len(), 1, "{list}");
        // Write scope: account management is refused.
        let (status, _) = rest(&s, reqwest::Method::GET, "/api-keys", access).await;
        assert_eq!(status, 403);

        // Only hashes are stored.
        let stored = format!(
            "{:?}",
            s.server
                .app
                .deps
                .store
                .scan(klozeo_core::ports::Table::Accounts, None, 1000)
                .await
                .unwrap()
        );
        for secret in [access, refresh, &code] {
            assert!(!stored.contains(secret), "a raw secret is stored");
        }

        // The grant is listed with the account's keys and revoked there.
        let (status, keys) = rest(&s, reqwest::Method::GET, "/api-keys", &s.admin_key).await;
        assert_eq!(status, 200);
        let grant = keys["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "OAuth: Test <Client>")
            .unwrap_or_else(|| panic!("grant not listed: {keys}"))
            .clone();
        assert_eq!(grant["scope"], "write");
        let r = http()
            .delete(format!(
                "{}/api-keys/{}",
                s.server.base_url,
                grant["id"].as_str().unwrap()
            ))
            .header("x-api-key", &s.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", access).await;
        assert_eq!(status, 401);
        let (status, _) = tools_list(&s, access).await;
        assert_eq!(status, 401);
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", &s.client_id),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    for backend in backends() {
        let s = setup(backend).await;
        let t1 = tokens(&s).await;
        let r1 = t1["refresh_token"].as_str().unwrap();
        let refresh = |rt: String| {
            let s = &s;
            async move {
                token(
                    s,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &rt),
                        ("client_id", &s.client_id),
                    ],
                )
                .await
            }
        };
        let (status, t2) = refresh(r1.to_string()).await;
        assert_eq!(status, 200, "{t2}");
        assert_ne!(t2["refresh_token"], t1["refresh_token"]);
        let a2 = t2["access_token"].as_str().unwrap();
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", a2).await;
        assert_eq!(status, 200);
        // Another client cannot use it.
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t2["refresh_token"].as_str().unwrap()),
                ("client_id", "klcl_other"),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        // Reusing the first refresh token ends the whole family.
        let (status, body) = refresh(r1.to_string()).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", a2).await;
        assert_eq!(status, 401, "the family's access token is revoked");
        let (status, body) = refresh(t2["refresh_token"].as_str().unwrap().to_string()).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, body) = token(&s, &[("grant_type", "password")]).await;
        assert_oauth_error(status, &body, 400, "unsupported_grant_type");
    }
}

#[tokio::test]
async fn code_errors_pkce_reuse_expiry_redirect_and_resource() {
    for backend in backends() {
        let s = setup(backend).await;
        // Missing or plain PKCE: reported to the client's redirect URI.
        for extra in [
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            vec![("code_challenge_method", "plain")],
            vec![("code_challenge_method", "")],
        ] {
            let (status, h, _) = get(&authorize_url(&s, &extra)).await;
            assert_eq!(status, 302, "{extra:?}");
            let to = location(&h);
            assert!(to.as_str().starts_with(REDIRECT));
            assert_eq!(
                query(&to, "error").as_deref(),
                Some("invalid_request"),
                "{extra:?}"
            );
            assert_eq!(query(&to, "state").as_deref(), Some("st4te"));
        }
        let (_, h, _) = get(&authorize_url(&s, &[("scope", "everything")])).await;
        assert_eq!(
            query(&location(&h), "error").as_deref(),
            Some("invalid_scope")
        );
        let (_, h, _) = get(&authorize_url(
            &s,
            &[("resource", "https://other.example/mcp")],
        ))
        .await;
        assert_eq!(
            query(&location(&h), "error").as_deref(),
            Some("invalid_target")
        );

        // Wrong verifier.
        let code = code_for(&s, &authorize_url(&s, &[])).await;
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &s.client_id),
                ("code_verifier", &"x".repeat(43)),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &s.client_id),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_request");
        // Mismatched redirect_uri and resource.
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/other"),
                ("client_id", &s.client_id),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &s.client_id),
                ("code_verifier", VERIFIER),
                ("resource", &format!("{}/elsewhere", s.server.origin)),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_target");
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "klcl_someone_else"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        // The failed attempts did not use the code up; the right one works once.
        let (status, first) = token(
            &s,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &s.client_id),
                ("code_verifier", VERIFIER),
                ("resource", &format!("{}/mcp", s.server.origin)),
            ],
        )
        .await;
        assert_eq!(status, 200, "{first}");
        // Reused code: refused, and what it issued is revoked.
        let (status, body) = exchange(&s, &code).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        let (status, _) = rest(
            &s,
            reqwest::Method::GET,
            "/leads",
            first["access_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(status, 401);

        // Expired code (60 s).
        let code = code_for(&s, &authorize_url(&s, &[])).await;
        s.server.clock.advance_secs(61);
        let (status, body) = exchange(&s, &code).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("expired"),
            "{body}"
        );
        // Unknown code.
        let (status, body) = exchange(&s, &format!("kloc_{}", "0".repeat(64))).await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn bad_clients_and_redirects_get_an_error_page_never_a_redirect() {
    for backend in backends() {
        let s = setup(backend).await;
        for extra in [
            vec![("redirect_uri", "http://127.0.0.1/not-registered")],
            vec![("redirect_uri", "https://attacker.example/cb")],
            vec![("client_id", "klcl_unknown")],
            vec![("client_id", "")],
        ] {
            let (status, h, html) = get(&authorize_url(&s, &extra)).await;
            assert_eq!(status, 400, "{extra:?}");
            assert!(h.get(LOCATION).is_none(), "{extra:?}");
            assert!(html.contains("cannot be completed"), "{html}");
        }
        // A loopback redirect may use any port (RFC 8252).
        let (status, _, _) = get(&authorize_url(
            &s,
            &[("redirect_uri", "http://127.0.0.1:49152/callback")],
        ))
        .await;
        assert_eq!(status, 200);

        // Registration: http only on loopback.
        let (status, body) = register(
            &s.server,
            json!({"client_name": "x", "redirect_uris": ["http://app.example.com/cb"]}),
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_redirect_uri");
        let (status, body) = register(&s.server, json!({"redirect_uris": []})).await;
        assert_oauth_error(status, &body, 400, "invalid_redirect_uri");
        let (status, body) = register(&s.server, json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"})).await;
        assert_oauth_error(status, &body, 400, "invalid_client_metadata");
        let (status, body) = register(
            &s.server,
            json!({"redirect_uris": ["https://a.example/cb", "http://[::1]:8080/cb"]}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        // A client id URL that points at a private address is refused (SSRF rules).
        let (status, h, html) = get(&authorize_url(
            &s,
            &[("client_id", "https://169.254.169.254/latest/meta-data")],
        ))
        .await;
        assert_eq!(status, 400, "{html}");
        assert!(h.get(LOCATION).is_none());
    }
}

#[tokio::test]
async fn csrf_deny_and_revocation() {
    for backend in backends() {
        let s = setup(backend).await;
        let (_, _, html) = get(&authorize_url(&s, &[])).await;
        let request = hidden(&html, "request");
        let csrf = hidden(&html, "csrf");
        // CSRF token missing or wrong: an error page, no code.
        for bad in [
            "",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let (status, h, body) = post_form(
                &s,
                &[
                    ("request", &request),
                    ("csrf", bad),
                    ("email", &s.email),
                    ("password", PASSWORD),
                    ("decision", "allow"),
                ],
                None,
            )
            .await;
            assert_eq!(status, 400, "{body}");
            assert!(h.get(LOCATION).is_none());
            assert!(body.contains("CSRF"), "{body}");
        }
        // Wrong password: the sign-in page again, with the form still usable.
        let (status, _, body) = post_form(
            &s,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("email", &s.email),
                ("password", "wrong password!"),
                ("decision", "allow"),
            ],
            None,
        )
        .await;
        assert_eq!(status, 401);
        assert!(body.contains("name=\"password\""), "{body}");
        // Deny.
        let (status, h, _) = post_form(
            &s,
            &[("request", &request), ("csrf", &csrf), ("decision", "deny")],
            None,
        )
        .await;
        assert_eq!(status, 302);
        let to = location(&h);
        assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
        assert_eq!(query(&to, "state").as_deref(), Some("st4te"));
        assert!(query(&to, "code").is_none());
        // The answered request cannot be replayed.
        let (status, h, _) = post_form(
            &s,
            &[
                ("request", &request),
                ("csrf", &csrf),
                ("email", &s.email),
                ("password", PASSWORD),
                ("decision", "allow"),
            ],
            None,
        )
        .await;
        assert_eq!(status, 400);
        assert!(h.get(LOCATION).is_none());

        // Revocation (RFC 7009): 200 for unknown tokens; an access token stops working.
        let revoke = |t: String| {
            let s = &s;
            async move {
                http()
                    .post(format!("{}/oauth/revoke", s.server.origin))
                    .form(&[("token", t.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(revoke("not-a-token".into()).await, 200);
        assert_eq!(revoke(format!("kloa_{}", "1".repeat(64))).await, 200);
        let t = tokens(&s).await;
        let access = t["access_token"].as_str().unwrap().to_string();
        assert_eq!(revoke(access.clone()).await, 200);
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", &access).await;
        assert_eq!(status, 401);
        // Revoking a refresh token ends the grant.
        let t = tokens(&s).await;
        let access = t["access_token"].as_str().unwrap().to_string();
        assert_eq!(
            revoke(t["refresh_token"].as_str().unwrap().to_string()).await,
            200
        );
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", &access).await;
        assert_eq!(status, 401);
        let (status, body) = token(
            &s,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", &s.client_id),
            ],
        )
        .await;
        assert_oauth_error(status, &body, 400, "invalid_grant");
    }
}

#[tokio::test]
async fn tokens_are_scoped_and_confined_to_their_account() {
    for backend in backends() {
        let s = setup(backend).await;
        // Another account's lead.
        let other = klozeo_tests::Api::new(&s.server, &s.server.account("unlimited").await);
        let foreign = other
            .create_lead(json!({"name": "Foreign", "city": "Lyon", "source": "oauth-test"}))
            .await;
        let code = code_for(&s, &authorize_url(&s, &[("scope", "read")])).await;
        let (status, t) = exchange(&s, &code).await;
        assert_eq!(status, 200, "{t}");
        assert_eq!(t["scope"], "read");
        let access = t["access_token"].as_str().unwrap();
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", access).await;
        assert_eq!(status, 200);
        let (status, body) = rest(&s, reqwest::Method::POST, "/leads", access).await;
        assert_eq!(status, 403, "{body}");
        let (status, _) = rest(
            &s,
            reqwest::Method::GET,
            &format!("/leads/{foreign}"),
            access,
        )
        .await;
        assert_eq!(status, 404, "another account's lead is not found");
        // An expired access token is refused.
        s.server.clock.advance_secs(3601);
        let (status, _) = rest(&s, reqwest::Method::GET, "/leads", access).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn client_id_metadata_documents_are_fetched_and_checked() {
    // The test configuration allows http and private targets for 127.0.0.1, as
    // KLOZEO_WEBHOOK_HTTP_HOSTS and KLOZEO_WEBHOOK_ALLOW_PRIVATE do in development.
    for backend in backends() {
        let mut s = setup(backend).await;
        // Documents name their own URL, so the listener is bound before they are written.
        let base = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let b = format!("http://{addr}");
            let good = json!({"client_id": format!("{b}/good.json"), "client_name": "Meta Client",
                              "redirect_uris": [REDIRECT]})
            .to_string();
            let liar =
                json!({"client_id": "https://other.example/c.json", "redirect_uris": [REDIRECT]})
                    .to_string();
            let big = json!({"client_id": format!("{b}/big.json"), "redirect_uris": [REDIRECT],
                             "padding": "x".repeat(6000)})
            .to_string();
            let router = axum::Router::new()
                .route(
                    "/good.json",
                    axum::routing::get(move || async move { good }),
                )
                .route(
                    "/liar.json",
                    axum::routing::get(move || async move { liar }),
                )
                .route("/big.json", axum::routing::get(move || async move { big }));
            tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
            b
        };
        s.client_id = format!("{base}/good.json");
        let (status, _, html) = get(&authorize_url(&s, &[])).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Meta Client (127.0.0.1)"), "{html}");
        let code = code_for(&s, &authorize_url(&s, &[])).await;
        let (status, t) = exchange(&s, &code).await;
        assert_eq!(status, 200, "{t}");
        let (status, _) = tools_list(&s, t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        for (path, why) in [
            ("/liar.json", "another client_id"),
            ("/big.json", "larger than"),
            ("/missing.json", "answered 404"),
        ] {
            s.client_id = format!("{base}{path}");
            let (status, h, html) = get(&authorize_url(&s, &[])).await;
            assert_eq!(status, 400, "{path}: {html}");
            assert!(h.get(LOCATION).is_none());
            assert!(html.contains(why), "{path}: {html}");
        }
    }
}

/// The `mcp` Lambda function serves the router of `Routes::Mcp`: OAuth is part of it.
#[tokio::test]
async fn the_mcp_function_router_serves_oauth() {
    use tower::ServiceExt as _;
    let server = start(Backend::Embedded).await;
    let svc = klozeo_core::edges::http::service(
        server.app.clone(),
        klozeo_core::edges::http::Routes::Mcp,
    );
    let call = |req: axum::http::Request<axum::body::Body>| {
        let svc = svc.clone();
        async move {
            let resp = svc.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, m) = call(
        axum::http::Request::get("/.well-known/oauth-authorization-server")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(m["issuer"], server.origin);
    let (status, c) = call(
        axum::http::Request::post("/oauth/register")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                json!({"client_name": "Lambda", "redirect_uris": [REDIRECT]}).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert!(c["client_id"].as_str().unwrap().starts_with("klcl_"));
    let (status, _) = call(
        axum::http::Request::get("/.well-known/oauth-protected-resource/mcp")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}
