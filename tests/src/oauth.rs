//! The OAuth 2.1 authorization-code flow as an MCP client and its user run it over real HTTP:
//! register a client, open the sign-in and consent page, sign in and allow, exchange the code
//! with its PKCE verifier. Shared by the OAuth tests and the cross-tenant sweep, so both obtain
//! tokens the way a user does rather than by writing them into the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use klozeo_core::domain::oauth::s256;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};

/// The PKCE verifier every helper here sends (43+ characters, as RFC 7636 requires).
pub const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
/// The loopback redirect URI the helper clients register.
pub const REDIRECT: &str = "http://127.0.0.1/callback";

/// A client that never follows redirects: the flow reads them.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `POST /oauth/register` (RFC 7591); the status and the JSON answer.
pub async fn register_client(origin: &str, body: Value) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{origin}/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Registers a public client redirecting to [`REDIRECT`]; its `client_id`.
pub async fn new_client(origin: &str, name: &str) -> String {
    let (status, body) = register_client(
        origin,
        json!({"client_name": name, "redirect_uris": [REDIRECT]}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["client_id"].as_str().unwrap().to_string()
}

/// The value of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The `Location` of a redirect, parsed.
pub fn location(h: &HeaderMap) -> url::Url {
    url::Url::parse(h.get(LOCATION).expect("a redirect").to_str().unwrap()).unwrap()
}

/// Query parameter `k` of `u`.
pub fn query(u: &url::Url, k: &str) -> Option<String> {
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

/// `POST /oauth/token` with a form; the status and the JSON answer.
pub async fn token_request(origin: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{origin}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

/// Signs in as `email` on the consent page of client `client_id`, allows `scope`, and returns
/// the authorization code the redirect carries.
pub async fn authorize(
    origin: &str,
    client_id: &str,
    email: &str,
    password: &str,
    scope: &str,
) -> String {
    let challenge = s256(VERIFIER);
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
            ("scope", scope),
        ])
        .finish();
    let page = http()
        .get(format!("{origin}/oauth/authorize?{q}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let r = http()
        .post(format!("{origin}/oauth/authorize"))
        .form(&[
            ("request", hidden(&html, "request").as_str()),
            ("csrf", &hidden(&html, "csrf")),
            ("email", email),
            ("password", password),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "sign-in as {email} was not accepted");
    query(&location(r.headers()), "code").expect("a code")
}

/// Exchanges `code` for tokens as `client_id`; the status and the JSON answer.
pub async fn exchange(origin: &str, client_id: &str, code: &str) -> (StatusCode, Value) {
    token_request(
        origin,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// The whole flow for `email` with `scope` through client `client_id`: the token response
/// (`access_token`, `refresh_token`, ...).
pub async fn tokens_for(
    origin: &str,
    client_id: &str,
    email: &str,
    password: &str,
    scope: &str,
) -> Value {
    let code = authorize(origin, client_id, email, password, scope).await;
    let (status, body) = exchange(origin, client_id, &code).await;
    assert_eq!(status, 200, "{body}");
    body
}
