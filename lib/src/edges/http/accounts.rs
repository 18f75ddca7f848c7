//! Handlers of the account routes: registration, login, the account, its API keys; and the
//! scope each route needs.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::account::{Access, Scope};
use crate::edges::http::extract::{Auth, RawBody};
use crate::edges::http::{API_PREFIX, AppState};
use crate::edges::wire::{
    AccountResponse, ApiKeyInput, ApiKeyResponse, ApiKeysResponse, CategoriesResponse,
    CitiesResponse, CreatedApiKeyResponse, Credentials, LoginResponse, NameCountResponse,
    RegisterResponse, StatsResponse, parse_json,
};
use crate::error::Result;

/// Name of the cookie that carries the session token set by `POST /login`.
pub const SESSION_COOKIE: &str = "klozeo_session";

/// The address of the client that sent a request, when the transport knows it (API Gateway's
/// source IP; the peer address under `klozeo serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

/// The client address of a request, if known (an extractor that never fails).
pub struct Client(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        if let Some(ClientAddr(a)) = parts.extensions.get::<ClientAddr>() {
            return Ok(Client(Some(a.clone())));
        }
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip().to_string()),
        ))
    }
}

/// Route paths (below `/api/v1`) that manage the account and its keys: only `admin` keys and
/// login sessions reach them.
fn is_management(path: &str) -> bool {
    let p = path.strip_prefix(API_PREFIX).unwrap_or(path);
    p == "/account" || p == "/api-keys" || p.starts_with("/api-keys/")
}

/// What a request to `path` with `method` does, for the scope check.
pub fn access_of(method: &Method, path: &str) -> Access {
    if is_management(path) {
        Access::Manage
    } else if method == Method::GET || method == Method::HEAD {
        Access::Read
    } else {
        Access::Write
    }
}

/// `POST /register` (no key): 201 `{id, email, plan, api_key}`.
pub async fn register(State(s): State<AppState>, RawBody(body): RawBody) -> Result<Response> {
    let c = parse_json::<Credentials>(&body)?;
    let (account, key) = s.app.accounts.register(&c.email, &c.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            id: account.id,
            email: account.email,
            plan: account.plan,
            api_key: key.raw,
        }),
    )
        .into_response())
}

/// `POST /login` (no key): 200 `{token, expires_at}`, the token also set as an HttpOnly cookie.
pub async fn login(
    State(s): State<AppState>,
    Client(client): Client,
    RawBody(body): RawBody,
) -> Result<Response> {
    let c = parse_json::<Credentials>(&body)?;
    let session = s
        .app
        .accounts
        .login(&c.email, &c.password, client.as_deref())
        .await?;
    let now = s.app.deps.clock.now_secs();
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={}",
        session.token,
        (session.expires_at - now).max(0)
    );
    let mut resp = Json(LoginResponse {
        token: session.token,
        expires_at: session.expires_at,
    })
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `GET /account`: the account, its limits and usage.
pub async fn get_account(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let o = s.app.accounts.overview(&t).await?;
    Ok(Json(AccountResponse::from(o)).into_response())
}

/// `GET /api-keys`: `{"api_keys": [...]}` without keys or hashes.
pub async fn list_keys(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let keys = s.app.accounts.list_keys(&t.account_id).await?;
    Ok(Json(ApiKeysResponse {
        api_keys: keys.into_iter().map(ApiKeyResponse::from).collect(),
    })
    .into_response())
}

/// `POST /api-keys`: 201 with the key, shown only here.
pub async fn create_key(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input = parse_json::<ApiKeyInput>(&body)?;
    let name = input.name.trim().to_string();
    if name.is_empty() {
        return Err(crate::error::Error::invalid("name: must not be empty"));
    }
    let key = s
        .app
        .accounts
        .create_scoped_key(
            &t.account_id,
            Some(name),
            input.scope.unwrap_or(Scope::Admin),
        )
        .await?;
    let r = key.record;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            id: r.id,
            name: r.name,
            scope: r.scope,
            key: key.raw,
            prefix: r.prefix,
            created_at: r.created_at,
        }),
    )
        .into_response())
}

/// `DELETE /api-keys/{id}`: 204; the key answers 401 from the next request on.
pub async fn delete_key(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    s.app.accounts.revoke_key(&t.account_id, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /stats`: the account's statistics, from counters.
pub async fn stats(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let st = s.app.analytics.stats(&t).await?;
    Ok(Json(StatsResponse::from(st)).into_response())
}

/// `GET /categories`: `{"categories": [{name, count}]}`.
pub async fn categories(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let c = s.app.analytics.categories(&t).await?;
    Ok(Json(CategoriesResponse {
        categories: c.into_iter().map(NameCountResponse::from).collect(),
    })
    .into_response())
}

/// `GET /cities`: `{"cities": [{name, count}]}`.
pub async fn cities(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let c = s.app.analytics.cities(&t).await?;
    Ok(Json(CitiesResponse {
        cities: c.into_iter().map(NameCountResponse::from).collect(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_routes_need_admin_and_reads_need_get() {
        assert_eq!(access_of(&Method::GET, "/api/v1/api-keys"), Access::Manage);
        assert_eq!(access_of(&Method::DELETE, "/api-keys/{id}"), Access::Manage);
        assert_eq!(access_of(&Method::GET, "/account"), Access::Manage);
        assert_eq!(access_of(&Method::GET, "/leads"), Access::Read);
        assert_eq!(access_of(&Method::POST, "/leads"), Access::Write);
        assert_eq!(access_of(&Method::GET, "/accounts-x"), Access::Read);
    }
}
