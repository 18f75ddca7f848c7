//! Handlers of `GET /leads/export` (inline file, or a link with `delivery=url`) and of the
//! signed download links that `klozeo serve` hands out.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, query_pairs};
use crate::edges::http::leads::list_request;
use crate::edges::wire::ExportLinkResponse;
use crate::error::{Error, Result};
use crate::services::export::{Export, ExportRequest, Format};

/// How the file reaches the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// In the response body (the default; what every SDK expects).
    Inline,
    /// Written to object storage; the answer is a JSON link.
    Url,
}

fn export_request(uri: &Uri) -> Result<(ExportRequest, Delivery)> {
    let list = list_request(uri)?;
    let mut format = None;
    let mut delivery = Delivery::Inline;
    for (k, v) in query_pairs(uri.query()) {
        match k.as_str() {
            "format" => format = Some(Format::parse(&v)?),
            "delivery" => {
                delivery = match v.trim().to_ascii_lowercase().as_str() {
                    "" | "inline" => Delivery::Inline,
                    "url" => Delivery::Url,
                    _ => {
                        return Err(Error::invalid(format!(
                            "delivery: '{v}' is not one of inline, url"
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    let format =
        format.ok_or_else(|| Error::invalid("format is required: one of csv, json, xlsx"))?;
    Ok((
        ExportRequest {
            format,
            sort: list.sort,
            filters: list.filters,
        },
        delivery,
    ))
}

fn attachment(format: Format, file_name: &str) -> [(header::HeaderName, HeaderValue); 2] {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        ),
        (header::CONTENT_DISPOSITION, disposition),
    ]
}

/// The export as a streamed body: each chunk is sent as soon as it is encoded.
fn streamed(export: Export) -> Body {
    Body::from_stream(futures_util::stream::try_unfold(
        export,
        |mut e| async move { Ok::<_, Error>(e.next_chunk().await?.map(|b| (b, e))) },
    ))
}

/// An absolute link: a relative one (served by this process) gets the request's host.
fn absolute(headers: &HeaderMap, url: String) -> String {
    if !url.starts_with('/') {
        return url;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}{url}")
}

/// `GET /leads/export?format=csv|json|xlsx[&filter=…][&sort_by=…][&sort_order=…][&delivery=url]`
pub async fn export(
    State(s): State<AppState>,
    Auth(t): Auth,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response> {
    let (req, delivery) = export_request(&uri)?;
    if delivery == Delivery::Url {
        let d = s.app.exports.deliver(&t, &req).await?;
        return Ok(Json(ExportLinkResponse {
            url: absolute(&headers, d.url),
            expires_at: d.expires_at,
            format: d.format.as_str().to_string(),
            rows: d.rows,
            bytes: d.bytes,
        })
        .into_response());
    }
    let mut export = s.app.exports.open(&t, &req).await?;
    let head = attachment(req.format, &export.file_name);
    let Some(limit) = s.app.export_inline_limit else {
        return Ok((StatusCode::OK, head, streamed(export)).into_response());
    };
    // Behind a proxy that buffers the response (API Gateway), a file over its limit cannot be
    // sent at all: say so before sending anything.
    let mut body = Vec::new();
    while let Some(chunk) = export.next_chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(Error::TooLarge(format!(
                "this export is larger than the {limit} bytes a response can carry here; \
                 ask for it with delivery=url (the answer is a link to the file), or use \
                 the export function's URL, which streams exports of any size"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((StatusCode::OK, head, body).into_response())
}

/// `GET /downloads/{key}?expires=…&sig=…`: a `delivery=url` file served by this process,
/// without an API key, until the link expires.
pub async fn download(
    State(s): State<AppState>,
    Path(key): Path<String>,
    uri: Uri,
) -> Result<Response> {
    let mut expires = None;
    let mut sig = String::new();
    for (k, v) in query_pairs(uri.query()) {
        match k.as_str() {
            "expires" => expires = v.trim().parse::<i64>().ok(),
            "sig" => sig = v,
            _ => {}
        }
    }
    let expires =
        expires.ok_or_else(|| Error::Unauthenticated("This download link is not valid".into()))?;
    let file = s.app.exports.download(&key, expires, &sig).await?;
    let head = attachment(file.format, &file.file_name);
    let len = file.download.len;
    let mut resp = (StatusCode::OK, head, Body::from_stream(file.download.body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(resp)
}
