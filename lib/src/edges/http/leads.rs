//! Handlers of the leads routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::domain::event::names;
use crate::domain::filter::FilterSet;
use crate::domain::query::{Sort, SortField, SortOrder};
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody, query_pairs};
use crate::edges::wire::{
    BatchCreateInput, BatchCreateResponse, BatchCreated, BatchDeleteInput, BatchError,
    BatchItemResult, BatchResult, BatchUpdateInput, CreateResponse, InputMode, LeadInput,
    ListResponse, from_value, parse_json,
};
use crate::error::{Error, Result};
use crate::services::leads::{DEFAULT_LIMIT, ListRequest, MAX_LIMIT};
use crate::services::writes::{EventMode, PushKind};

/// `POST /leads`
pub async fn create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<LeadInput>(&body)?.into_changes(InputMode::Create)?;
    let out = s.app.leads.push(&t, &changes, EventMode::Single).await?;
    Ok(match out.kind {
        PushKind::Merged { matched } => {
            let resp = CreateResponse {
                id: out.lead.id,
                message: "Duplicate detected, existing lead updated".into(),
                created_at: out.lead.created_at,
                duplicate: Some(true),
                potential_duplicate_id: None,
                matched: Some(matched),
            };
            (StatusCode::OK, Json(resp)).into_response()
        }
        PushKind::Created {
            potential_duplicate_id,
            hint,
        } => {
            let resp = CreateResponse {
                id: out.lead.id,
                message: "Lead created successfully".into(),
                created_at: out.lead.created_at,
                duplicate: None,
                potential_duplicate_id,
                matched: hint,
            };
            (StatusCode::CREATED, Json(resp)).into_response()
        }
    })
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

fn check_batch_size(t: &crate::domain::account::Tenant, n: usize, what: &str) -> Result<()> {
    if n == 0 {
        return Err(Error::invalid(format!(
            "{what}: at least one item is required"
        )));
    }
    if n > t.limits.max_batch as usize {
        return Err(Error::invalid(format!(
            "{what}: {n} items exceed the {} plan's batch limit of {}; nothing was written",
            t.plan, t.limits.max_batch
        )));
    }
    Ok(())
}

fn new_group(s: &AppState) -> String {
    s.app.deps.ids.random().to_string()
}

/// `POST /leads/batch`: each item is pushed with deduplication (also against earlier items of
/// the same batch); 201 when all succeed, 207 with per-index errors otherwise.
pub async fn batch_create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchCreateInput = parse_json(&body)?;
    check_batch_size(&t, input.leads.len(), "leads")?;
    let group = new_group(&s);
    let total = input.leads.len();
    let mut created = Vec::new();
    let mut errors = Vec::new();
    let (mut new_ids, mut merged_ids) = (Vec::new(), Vec::new());
    for (index, item) in input.leads.into_iter().enumerate() {
        let changes =
            match from_value::<LeadInput>(item).and_then(|i| i.into_changes(InputMode::Create)) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(BatchError {
                        index,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
        match s
            .app
            .leads
            .push(&t, &changes, EventMode::Member(&group))
            .await
        {
            Ok(out) => {
                let (duplicate, potential_duplicate_id, matched) = match out.kind {
                    PushKind::Merged { matched } => {
                        merged_ids.push(out.lead.id.clone());
                        (Some(true), None, Some(matched))
                    }
                    PushKind::Created {
                        potential_duplicate_id,
                        hint,
                    } => {
                        new_ids.push(out.lead.id.clone());
                        (None, potential_duplicate_id, hint)
                    }
                };
                created.push(BatchCreated {
                    index,
                    id: out.lead.id,
                    created_at: out.lead.created_at,
                    duplicate,
                    potential_duplicate_id,
                    matched,
                });
            }
            Err(e @ (Error::Internal(_) | Error::Unavailable(_))) if created.is_empty() => {
                return Err(e);
            }
            Err(e) => errors.push(BatchError {
                index,
                message: e.to_string(),
            }),
        }
    }
    s.app
        .leads
        .finish_group(&t, &group, names::LEADS_CREATED, &new_ids)
        .await?;
    s.app
        .leads
        .finish_group(&t, &group, names::LEADS_UPDATED, &merged_ids)
        .await?;
    let status = if errors.is_empty() {
        StatusCode::CREATED
    } else {
        StatusCode::MULTI_STATUS
    };
    let resp = BatchCreateResponse {
        success: created.len(),
        failed: errors.len(),
        total,
        created,
        errors,
    };
    Ok((status, Json(resp)).into_response())
}

fn batch_result(results: Vec<BatchItemResult>) -> Response {
    let success = results.iter().filter(|r| r.success).count();
    Json(BatchResult {
        total: results.len(),
        failed: results.len() - success,
        success,
        results,
    })
    .into_response()
}

/// Runs `op` for each id in order and collects per-id results and the ids that succeeded.
async fn for_each_id<F, Fut>(ids: Vec<String>, op: F) -> (Vec<BatchItemResult>, Vec<String>)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut results = Vec::with_capacity(ids.len());
    let mut ok_ids = Vec::new();
    for (index, id) in ids.into_iter().enumerate() {
        let r = op(id.clone()).await;
        if r.is_ok() {
            ok_ids.push(id.clone());
        }
        results.push(BatchItemResult {
            index,
            id,
            success: r.is_ok(),
            message: r.err().map(|e| e.to_string()),
        });
    }
    (results, ok_ids)
}

/// `PUT /leads/batch`: the same partial update applied to each id.
pub async fn batch_update(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchUpdateInput = parse_json(&body)?;
    check_batch_size(&t, input.ids.len(), "ids")?;
    let changes = input.data.into_changes(InputMode::Update)?;
    let group = new_group(&s);
    let (results, ok_ids) = for_each_id(input.ids, |id| {
        let (s, t, changes, group) = (&s, &t, &changes, &group);
        async move {
            s.app
                .leads
                .update_with(t, &id, changes, EventMode::Member(group))
                .await
                .map(|_| ())
        }
    })
    .await;
    s.app
        .leads
        .finish_group(&t, &group, names::LEADS_UPDATED, &ok_ids)
        .await?;
    Ok(batch_result(results))
}

/// `DELETE /leads/batch`.
pub async fn batch_delete(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: BatchDeleteInput = parse_json(&body)?;
    check_batch_size(&t, input.ids.len(), "ids")?;
    let group = new_group(&s);
    let (results, ok_ids) = for_each_id(input.ids, |id| {
        let (s, t, group) = (&s, &t, &group);
        async move {
            s.app
                .leads
                .delete_with(t, &id, EventMode::Member(group))
                .await
        }
    })
    .await;
    s.app
        .leads
        .finish_group(&t, &group, names::LEADS_DELETED, &ok_ids)
        .await?;
    Ok(batch_result(results))
}
