//! Request extractors: the authenticated tenant, a size-limited body, and the raw query.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::domain::account::Tenant;
use crate::edges::http::AppState;
use crate::error::Error;

/// The tenant behind the request's API key (`X-API-Key`, or `Authorization: Bearer`).
#[derive(Debug, Clone)]
pub struct Auth(pub Tenant);

/// The raw API key presented with a request, if any.
pub fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    let auth = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves a presented credential to its tenant: an OAuth access token (`kloa_…`) through
/// the OAuth service, anything else as an API key. Every edge that accepts an API key calls
/// this, so OAuth tokens work wherever keys do.
pub async fn authenticate_credential(
    app: &crate::app::App,
    credential: &str,
) -> crate::error::Result<Tenant> {
    if crate::domain::oauth::is_access_token(credential.trim()) {
        app.oauth.authenticate(credential.trim()).await
    } else {
        app.accounts.authenticate(credential).await
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        if let Some(t) = parts.extensions.get::<Tenant>() {
            return Ok(Auth(t.clone()));
        }
        let key = presented_key(parts)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated("Missing API key: send it in the X-API-Key header".into())
            })?;
        let tenant = authenticate_credential(&state.app, key).await?;
        parts.extensions.insert(tenant.clone());
        Ok(Auth(tenant))
    }
}

/// The request body, read up to the configured limit (413 beyond it). Never requires a
/// `Content-Type` or a `Content-Length` (wire-contract §1.3).
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let limit = state.app.max_body_bytes;
        let too_large = || Error::TooLarge(format!("request body is larger than {limit} bytes"));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let body: Body = req.into_body();
        let limited = http_body_util::Limited::new(body, limit);
        match limited.collect().await {
            Ok(c) => Ok(RawBody(c.to_bytes())),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(Error::invalid(format!(
                "could not read the request body: {e}"
            ))),
        }
    }
}

/// Every `(key, value)` pair of the query string, form-decoded (`+` is a space) and in order,
/// so repeated `filter` parameters are all kept.
pub fn query_pairs(parts_query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(parts_query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
