//! The OAuth 2.1 edge for MCP clients: discovery (RFC 9728, RFC 8414), dynamic client
//! registration (RFC 7591), the server-rendered sign-in and consent page, the token endpoint
//! and revocation (RFC 7009). The flow itself is the OAuth service's; this module translates
//! HTTP to it and back, in OAuth's own error shape (`{"error", "error_description"}`).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::domain::oauth::{SCOPES, scope_string};
use crate::edges::http::accounts::{Client, SESSION_COOKIE};
use crate::edges::http::extract::RawBody;
use crate::edges::http::{API_PREFIX, AppState};
use crate::error::Error;
use crate::services::oauth::{
    AuthorizeFailure, AuthorizeRequest, OAuthError, Pending, Registration, TokenRequest,
};

/// Path of the authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Path of the registration endpoint.
pub const REGISTER_PATH: &str = "/oauth/register";
/// Path of the revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// Path of the pages' stylesheet.
pub const STYLE_PATH: &str = "/oauth/style.css";

const STYLESHEET: &str = "\
body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .3rem}\
input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;\
border:1px solid #b8bfcc;border-radius:4px}\
button{margin-top:1.2rem;padding:.55rem 1.2rem;border:0;border-radius:4px;font-size:1rem;\
cursor:pointer}\
.allow{background:#2455d6;color:#fff}.deny{background:#e3e6ec;color:#1d2330;margin-left:.5rem}\
.error{color:#b3261e}ul{padding-left:1.2rem}.muted{color:#5b6475;font-size:.9rem}\n";

/// The OAuth routes, to merge into the root router (outside `/api/v1` and its key guard).
pub fn routes() -> Router<AppState> {
    // Browser-based clients call these across origins (no cookies are involved).
    let cors = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource_root).options(preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource_mcp).options(preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server).options(preflight),
        )
        .route(
            REGISTER_PATH,
            axum::routing::post(register).options(preflight),
        )
        .route(TOKEN_PATH, axum::routing::post(token).options(preflight))
        .route(REVOKE_PATH, axum::routing::post(revoke).options(preflight))
        .layer(axum::middleware::from_fn(cors));
    Router::new()
        .route(AUTHORIZE_PATH, get(authorize_get).post(authorize_post))
        .route(STYLE_PATH, get(stylesheet))
        .merge(cors)
}

async fn cors(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, MCP-Protocol-Version"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    resp
}

async fn preflight() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// An OAuth error answer: `{"error", "error_description"}` with the status RFC 6749 gives.
fn oauth_error(e: &OAuthError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (
        status,
        axum::Json(json!({"error": e.error, "error_description": e.description})),
    )
        .into_response();
    no_store(resp.headers_mut());
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"klozeo\""),
        );
    }
    resp
}

fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn base_or_error(s: &AppState) -> Result<String, OAuthError> {
    s.app
        .oauth
        .base()
        .map(str::to_string)
        .map_err(OAuthError::from)
}

fn protected_resource(s: &AppState, resource: String) -> Response {
    let base = match base_or_error(s) {
        Ok(b) => b,
        Err(e) => return oauth_error(&e),
    };
    axum::Json(json!({
        "resource": resource.replace("{base}", &base),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": SCOPES,
        "resource_name": "Klozeo",
    }))
    .into_response()
}

/// `GET /.well-known/oauth-protected-resource/mcp`: the MCP endpoint's metadata (RFC 9728).
async fn protected_resource_mcp(State(s): State<AppState>) -> Response {
    protected_resource(&s, "{base}/mcp".into())
}

/// `GET /.well-known/oauth-protected-resource`: the server's own metadata (RFC 9728).
async fn protected_resource_root(State(s): State<AppState>) -> Response {
    protected_resource(&s, "{base}".into())
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414); the issuer is the configured
/// public URL, never the request's `Host`.
async fn authorization_server(State(s): State<AppState>) -> Response {
    let base = match base_or_error(&s) {
        Ok(b) => b,
        Err(e) => return oauth_error(&e),
    };
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "registration_endpoint": format!("{base}{REGISTER_PATH}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": SCOPES,
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{base}{API_PREFIX}/openapi.json"),
    }))
    .into_response()
}

/// `POST /oauth/register` (RFC 7591): 201 with the client's id and metadata.
async fn register(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(&OAuthError {
                error: "invalid_client_metadata",
                description: format!("the body is not a registration document: {e}"),
            });
        }
    };
    match s.app.oauth.register_client(reg).await {
        Ok(c) => {
            let mut resp = (
                StatusCode::CREATED,
                axum::Json(json!({
                    "client_id": c.client_id,
                    "client_id_issued_at": c.created_at,
                    "client_name": c.client_name,
                    "redirect_uris": c.redirect_uris,
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                })),
            )
                .into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => oauth_error(&e),
    }
}

/// Form or query fields; a repeated field is refused (RFC 6749 §3.1).
fn fields(raw: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("parameter '{k}' is repeated"));
        }
    }
    Ok(out)
}

/// `POST /oauth/token`: a form in, `{access_token, token_type, expires_in, refresh_token,
/// scope}` or an RFC 6749 error out.
async fn token(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let mut f = match fields(&body) {
        Ok(f) => f,
        Err(m) => {
            return oauth_error(&OAuthError {
                error: "invalid_request",
                description: m,
            });
        }
    };
    let req = TokenRequest {
        grant_type: f.remove("grant_type"),
        code: f.remove("code"),
        redirect_uri: f.remove("redirect_uri"),
        client_id: f.remove("client_id"),
        code_verifier: f.remove("code_verifier"),
        refresh_token: f.remove("refresh_token"),
        resource: f.remove("resource"),
        scope: f.remove("scope"),
    };
    match s.app.oauth.token(req).await {
        Ok(set) => {
            let mut resp = axum::Json(set).into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => oauth_error(&e),
    }
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known.
async fn revoke(State(s): State<AppState>, RawBody(body): RawBody) -> Response {
    let f = match fields(&body) {
        Ok(f) => f,
        Err(m) => {
            return oauth_error(&OAuthError {
                error: "invalid_request",
                description: m,
            });
        }
    };
    let Some(token) = f.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(&OAuthError {
            error: "invalid_request",
            description: "token is required".into(),
        });
    };
    match s
        .app
        .oauth
        .revoke(token, f.get("client_id").map(String::as_str))
        .await
    {
        Ok(()) => {
            let mut resp = StatusCode::OK.into_response();
            no_store(resp.headers_mut());
            resp
        }
        Err(e) => oauth_error(&OAuthError::from(e)),
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page with the headers that keep it out of frames and caches.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Klozeo</title><link rel=\"stylesheet\" href=\"{STYLE_PATH}\"></head>\
         <body><main>{body}</main></body></html>",
        esc(title)
    );
    let mut resp = (status, axum::response::Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    no_store(h);
    resp
}

fn error_page(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Authorization error",
        &format!(
            "<h1>This authorization request cannot be completed</h1>\
             <p class=\"error\">{}</p>\
             <p class=\"muted\">You can close this window and start again from your \
             application.</p>",
            esc(message)
        ),
    )
}

fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    no_store(resp.headers_mut());
    resp
}

fn failure(f: AuthorizeFailure) -> Response {
    match f {
        AuthorizeFailure::Page(m) => error_page(&m),
        AuthorizeFailure::Redirect(to) => redirect(&to),
    }
}

fn hidden(p: &Pending, csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"request\" value=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&p.id),
        esc(csrf)
    )
}

fn sign_in_page(p: &Pending, csrf: &str, error: Option<&str>) -> Response {
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Sign in",
        &format!(
            "<h1>Sign in to Klozeo</h1>\
             <p><strong>{client}</strong> wants to access your Klozeo account.</p>{err}\
             <form method=\"post\" action=\"{AUTHORIZE_PATH}\">{hidden}\
             <label for=\"email\">E-mail</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required>\
             <button class=\"allow\" type=\"submit\" id=\"sign-in\">Sign in</button>\
             </form>",
            client = esc(&p.client_name),
            hidden = hidden(p, csrf),
        ),
    )
}

fn consent_page(p: &Pending, csrf: &str, email: &str) -> Response {
    let can: &[&str] = match p.scope {
        crate::domain::account::Scope::Read => &["read your leads, notes and statistics"],
        crate::domain::account::Scope::Write => &[
            "read your leads, notes and statistics",
            "create, change and delete leads, notes, rules and webhooks",
        ],
        crate::domain::account::Scope::Admin => &[
            "read your leads, notes and statistics",
            "create, change and delete leads, notes, rules and webhooks",
            "manage your account and its API keys",
        ],
    };
    let items: String = can.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
    page(
        StatusCode::OK,
        "Authorize",
        &format!(
            "<h1>Authorize {client}</h1>\
             <p><strong id=\"client\">{client}</strong> is asking for access to the Klozeo \
             account <strong id=\"account\">{email}</strong> with the scope \
             <code id=\"scope\">{scope}</code>. It will be able to:</p><ul>{items}</ul>\
             <p class=\"muted\">It will send you back to {redirect}. You can revoke this \
             access at any time under API keys.</p>\
             <form method=\"post\" action=\"{AUTHORIZE_PATH}\">{hidden}\
             <button class=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\" \
             id=\"allow\">Allow</button>\
             <button class=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\" \
             id=\"deny\">Deny</button></form>",
            client = esc(&p.client_name),
            email = esc(email),
            scope = scope_string(p.scope),
            redirect = esc(redirect_origin(&p.redirect_uri).as_str()),
            hidden = hidden(p, csrf),
        ),
    )
}

/// Where the browser will go, as a person reads it (scheme, host and port).
fn redirect_origin(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .ok()
        .filter(|o| o != "null")
        .unwrap_or_else(|| uri.to_string())
}

fn session_cookie(parts: &Parts) -> Option<String> {
    for v in parts.headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for c in v.split(';') {
            if let Some((k, val)) = c.trim().split_once('=')
                && k == SESSION_COOKIE
            {
                return Some(val.trim().to_string());
            }
        }
    }
    None
}

/// The account signed in through the session cookie, if any (id and e-mail).
async fn signed_in(s: &AppState, parts: &Parts) -> Result<Option<(String, String)>, Error> {
    let Some(token) = session_cookie(parts) else {
        return Ok(None);
    };
    match s.app.accounts.authenticate_session(&token).await {
        Ok(t) => {
            let a = s.app.accounts.get_account(&t.account_id).await?;
            Ok(Some((a.id, a.email)))
        }
        Err(Error::Unauthenticated(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `GET /oauth/authorize`: validates the request, then the sign-in page or, with a session,
/// the consent page. A bad client or redirect URI is an error page, never a redirect.
async fn authorize_get(State(s): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let mut q = match fields(parts.uri.query().unwrap_or("").as_bytes()) {
        Ok(q) => q,
        Err(m) => return error_page(&m),
    };
    let started = match s
        .app
        .oauth
        .start(AuthorizeRequest {
            response_type: q.remove("response_type"),
            client_id: q.remove("client_id"),
            redirect_uri: q.remove("redirect_uri"),
            code_challenge: q.remove("code_challenge"),
            code_challenge_method: q.remove("code_challenge_method"),
            state: q.remove("state"),
            scope: q.remove("scope"),
            resource: q.remove("resource"),
        })
        .await
    {
        Ok(st) => st,
        Err(f) => return failure(f),
    };
    match signed_in(&s, &parts).await {
        Ok(Some((_, email))) => consent_page(&started.pending, &started.csrf, &email),
        Ok(None) => sign_in_page(&started.pending, &started.csrf, None),
        Err(e) => error_page(&e.public_message()),
    }
}

/// `POST /oauth/authorize`: the forms of both pages. Fields `request` and `csrf` (checked
/// first), then `email` and `password` to sign in, and `decision` = `allow` | `deny`.
async fn authorize_post(
    State(s): State<AppState>,
    Client(client): Client,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let limit = s.app.max_body_bytes;
    let body =
        match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error_page("the form could not be read"),
        };
    let f = match fields(&body) {
        Ok(f) => f,
        Err(m) => return error_page(&m),
    };
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if parts.method != Method::POST {
        return error_page("unexpected method");
    }
    let pending = match s.app.oauth.pending(get("request"), get("csrf")).await {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let csrf = get("csrf");
    let decision = get("decision");
    if decision == "deny" {
        return match s.app.oauth.decide(&pending, None).await {
            Ok(to) => redirect(&to),
            Err(e) => failure(e),
        };
    }
    let mut set_cookie = None;
    let account = if !get("email").is_empty() || !get("password").is_empty() {
        match s
            .app
            .accounts
            .login(get("email"), get("password"), client.as_deref())
            .await
        {
            Ok(session) => {
                let t = match s.app.accounts.authenticate_session(&session.token).await {
                    Ok(t) => t,
                    Err(e) => return error_page(&e.public_message()),
                };
                let email = match s.app.accounts.get_account(&t.account_id).await {
                    Ok(a) => a.email,
                    Err(e) => return error_page(&e.public_message()),
                };
                let secure = if s
                    .app
                    .oauth
                    .base_opt()
                    .is_some_and(|b| b.starts_with("https:"))
                {
                    "; Secure"
                } else {
                    ""
                };
                let max_age = (session.expires_at - s.app.deps.clock.now_secs()).max(0);
                set_cookie = Some(format!(
                    "{SESSION_COOKIE}={}; HttpOnly{secure}; SameSite=Lax; Path=/; Max-Age={max_age}",
                    session.token
                ));
                Some((t.account_id, email))
            }
            Err(e @ (Error::Unauthenticated(_) | Error::RateLimited { .. })) => {
                return sign_in_page(&pending, csrf, Some(&e.public_message()));
            }
            Err(e) => return error_page(&e.public_message()),
        }
    } else {
        match signed_in(&s, &parts).await {
            Ok(a) => a,
            Err(e) => return error_page(&e.public_message()),
        }
    };
    let Some((account_id, email)) = account else {
        return sign_in_page(&pending, csrf, None);
    };
    let mut resp = if decision == "allow" {
        match s.app.oauth.decide(&pending, Some(&account_id)).await {
            Ok(to) => redirect(&to),
            Err(e) => failure(e),
        }
    } else {
        consent_page(&pending, csrf, &email)
    };
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(fields(b"a=1&b=2").is_ok());
        assert!(fields(b"a=1&a=2").is_err());
    }
}
