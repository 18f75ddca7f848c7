//! The guard in front of every API route: authenticate, count the request against the key's
//! rate limit, and honour `Idempotency-Key` — all before the handler can cause a side effect.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::domain::account::{Access, looks_like_session};
use crate::edges::http::AppState;
use crate::edges::http::accounts::access_of;
use crate::edges::http::extract::presented_key;
use crate::error::{Code, Error};
use crate::services::limits::{IdemStart, RateState};

/// Header carrying the idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header set on a replayed response.
pub const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";

fn with_rate_headers(mut resp: Response, rate: Option<RateState>) -> Response {
    if let Some(r) = rate {
        let h = resp.headers_mut();
        h.insert(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(r.limit),
        );
        h.insert(
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(r.remaining),
        );
    }
    resp
}

/// The middleware; see the module documentation.
pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let key = match presented_key(&parts).filter(|k| !k.is_empty()) {
        Some(k) => k.to_string(),
        None => {
            return Error::Unauthenticated(
                "Missing API key: send it in the X-API-Key header".into(),
            )
            .into_response();
        }
    };
    // Below the `/api/v1` nest the path has its prefix stripped (and was normalised before
    // routing), so it names the route exactly.
    let access = access_of(&parts.method, parts.uri.path());
    let tenant = if looks_like_session(&key) {
        // A login session manages the account; data routes need an API key.
        if access != Access::Manage {
            return Error::Unauthenticated(
                "A session token is accepted only on the account routes; use an API key".into(),
            )
            .into_response();
        }
        s.app.accounts.authenticate_session(&key).await
    } else {
        crate::edges::http::extract::authenticate_credential(&s.app, &key).await
    };
    let tenant = match tenant {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    // Refused before anything is counted or done.
    if !tenant.scope.permits(access) {
        return Error::Forbidden {
            code: Code::InsufficientScope,
            message: format!(
                "This API key has the '{}' scope, which does not allow this request",
                tenant.scope.as_str()
            ),
        }
        .into_response();
    }
    let rate = match s.app.limits.check_rate(&tenant).await {
        Ok(r) => r,
        Err(e) => {
            let limit = tenant.limits.requests_per_window.map(|limit| RateState {
                limit,
                remaining: 0,
            });
            return with_rate_headers(e.into_response(), limit);
        }
    };
    let idem = parts
        .headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    let mutating = matches!(
        parts.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let account_id = tenant.account_id.clone();
    parts.extensions.insert(tenant);
    let resp = match idem.filter(|_| mutating) {
        None => next.run(Request::from_parts(parts, body)).await,
        Some(idem_key) => match idempotent(&s, &account_id, &idem_key, parts, body, next).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    };
    with_rate_headers(resp, rate)
}

async fn idempotent(
    s: &AppState,
    account_id: &str,
    idem_key: &str,
    parts: axum::http::request::Parts,
    body: Body,
    next: Next,
) -> Result<Response, Error> {
    let limit = s.app.max_body_bytes;
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Error::TooLarge(format!(
                "request body is larger than {limit} bytes"
            )));
        }
        Err(e) => {
            return Err(Error::invalid(format!(
                "could not read the request body: {e}"
            )));
        }
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update([0]);
    h.update(parts.uri.path().as_bytes());
    h.update([0]);
    h.update(parts.uri.query().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(&bytes);
    let fp = hex::encode(h.finalize());
    let ticket = match s.app.limits.idem_begin(account_id, idem_key, &fp).await? {
        IdemStart::Replay {
            status,
            content_type,
            body,
        } => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() =
                axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
            if let Ok(ct) = HeaderValue::from_str(&content_type)
                && !content_type.is_empty()
            {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp.headers_mut().insert(
                HeaderName::from_static(IDEMPOTENCY_REPLAYED),
                HeaderValue::from_static("true"),
            );
            return Ok(resp);
        }
        IdemStart::Fresh(t) => t,
    };
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (rparts, rbody) = resp.into_parts();
    let rbytes = rbody
        .collect()
        .await
        .map_err(|e| Error::internal(format!("buffering the response: {e}")))?
        .to_bytes();
    let status = rparts.status.as_u16();
    // A 5xx, a 409 from a concurrent change and a 429 all say "try again": the retry must
    // run, not replay the refusal, so the key is released.
    let retryable = rparts.status.is_server_error()
        || rparts.status == axum::http::StatusCode::TOO_MANY_REQUESTS
        || rparts.status == axum::http::StatusCode::CONFLICT;
    if retryable {
        if let Err(e) = s.app.limits.idem_abandon(ticket).await {
            tracing::warn!(error = %e, "could not release an idempotency key");
        }
    } else {
        let ct = rparts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // The change is done whatever happens here: the caller must get its answer. If it
        // cannot be recorded for replay, the key is released so that a retry is not locked
        // out (it runs again, and deduplication makes a repeated create a merge).
        if let Err(e) = s
            .app
            .limits
            .idem_complete(ticket.clone(), status, ct, &rbytes)
            .await
        {
            tracing::warn!(error = %e, "could not record an idempotent response; releasing its key");
            if let Err(e) = s.app.limits.idem_abandon(ticket).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
        }
    }
    Ok(Response::from_parts(rparts, Body::from(rbytes)))
}
