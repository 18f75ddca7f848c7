//! Handlers of the leads routes: parse, call the service, shape the answer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::domain::filter::FilterSet;
use crate::domain::ids::LeadId;
use crate::domain::query::{Sort, SortField, SortOrder};
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody, query_pairs};
use crate::edges::wire::{
    BatchCreateInput, BatchCreateResponse, BatchDeleteInput, BatchResult, BatchUpdateInput,
    CreateResponse, InputMode, LeadInput, ListResponse, from_value, parse_json,
};
use crate::error::{Error, Result};
use crate::services::leads::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT};

/// `POST /leads`: 201 when created, 200 when merged into a duplicate.
pub async fn create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<LeadInput>(&body)?.into_changes(InputMode::Create)?;
    let (created, resp) = CreateResponse::from_push(s.app.ingest.create(&t, &changes).await?);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(resp)).into_response())
}

/// `GET /leads/{id}`
pub async fn get(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    Ok(Json(s.app.leads.get(&t, &id).await?).into_response())
}

/// `PUT /leads/{id}` and `PATCH /leads/{id}`: partial update, answers the full lead.
pub async fn update(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let changes = parse_json::<LeadInput>(&body)?.into_changes(InputMode::Update)?;
    Ok(Json(s.app.ingest.update(&t, &id, &changes).await?).into_response())
}

/// `DELETE /leads/{id}`: 204.
pub async fn delete(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    s.app.ingest.delete(&t, &id).await?;
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
    let explain = query_pairs(uri.query())
        .iter()
        .any(|(k, v)| k == "explain" && v.trim().eq_ignore_ascii_case("true"));
    let page = s.app.leads.list(&t, &req).await?;
    let count = page.leads.len();
    Ok(Json(ListResponse {
        leads: page.leads,
        has_more: page.next_cursor.is_some(),
        next_cursor: page.next_cursor,
        count,
        plan: explain.then(|| page.plan.into()),
    })
    .into_response())
}

/// `POST /leads/batch`: 201 when every item was stored, 207 with per-index errors otherwise.
pub async fn batch_create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchCreateInput = parse_json(&body)?;
    // Each item is validated alone, so a bad one fails at its index and the rest go on.
    let items = input
        .leads
        .into_iter()
        .map(|v| from_value::<LeadInput>(v).and_then(|i| i.into_changes(InputMode::Create)))
        .collect();
    let resp = BatchCreateResponse::from_outcomes(s.app.ingest.batch_create(&t, items).await?);
    let status = if resp.failed == 0 {
        StatusCode::CREATED
    } else {
        StatusCode::MULTI_STATUS
    };
    Ok((status, Json(resp)).into_response())
}

/// `PUT /leads/batch`: the same partial update applied to each id.
pub async fn batch_update(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchUpdateInput = parse_json(&body)?;
    let changes = input.data.into_changes(InputMode::Update)?;
    let out = s.app.ingest.batch_update(&t, input.ids, &changes).await?;
    Ok(Json(BatchResult::from_outcomes(out)).into_response())
}

/// `DELETE /leads/batch`.
pub async fn batch_delete(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchDeleteInput = parse_json(&body)?;
    let out = s.app.ingest.batch_delete(&t, input.ids).await?;
    Ok(Json(BatchResult::from_outcomes(out)).into_response())
}
