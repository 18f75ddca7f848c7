//! Handlers of the leads routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::domain::filter::FilterSet;
use crate::domain::query::{Sort, SortField, SortOrder};
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody, query_pairs};
use crate::edges::wire::{CreateResponse, InputMode, LeadInput, ListResponse, parse_json};
use crate::error::{Error, Result};
use crate::services::leads::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT};

/// `POST /leads`
pub async fn create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<LeadInput>(&body)?.into_changes(InputMode::Create)?;
    let created = s.app.leads.create(&t, &changes).await?;
    let resp = CreateResponse {
        id: created.lead.id,
        message: "Lead created successfully".into(),
        created_at: created.lead.created_at,
        duplicate: None,
        potential_duplicate_id: None,
    };
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// `GET /leads/{id}`
pub async fn get(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(Json(s.app.leads.get(&t, &id).await?).into_response())
}

/// `PUT /leads/{id}` and `PATCH /leads/{id}`: partial update, answers the full lead.
pub async fn update(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<LeadInput>(&body)?.into_changes(InputMode::Update)?;
    Ok(Json(s.app.leads.update(&t, &id, &changes).await?).into_response())
}

/// `DELETE /leads/{id}`: 204.
pub async fn delete(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    s.app.leads.delete(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parses the list parameters shared by `GET /leads` (and later export).
pub fn list_request(uri: &Uri) -> Result<ListRequest> {
    let mut req = ListRequest {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut sort = Sort::default();
    let mut filters: Vec<String> = Vec::new();
    for (k, v) in query_pairs(uri.query()) {
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| Error::invalid(format!("limit: '{v}' is not an integer")))?;
                if n < 1 {
                    return Err(Error::invalid("limit: must be at least 1"));
                }
                req.limit = n.min(i64::from(MAX_LIMIT)) as u32;
            }
            "cursor" => req.cursor = Some(v),
            "sort_by" => sort.field = SortField::parse(&v)?,
            "sort_order" => sort.order = SortOrder::parse(&v)?,
            "filter" => filters.push(v),
            _ => {}
        }
    }
    req.sort = sort;
    req.filters = FilterSet::parse(&filters)?;
    Ok(req)
}

/// `GET /leads`
pub async fn list(State(s): State<AppState>, Auth(t): Auth, uri: Uri) -> Result<Response> {
    let req = list_request(&uri)?;
    let page = s.app.leads.list(&t, &req).await?;
    let count = page.leads.len();
    Ok(Json(ListResponse {
        leads: page.leads,
        has_more: page.next_cursor.is_some(),
        next_cursor: page.next_cursor,
        count,
    })
    .into_response())
}
