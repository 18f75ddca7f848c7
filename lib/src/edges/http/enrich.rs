//! Handlers of the notes, attributes and scoring routes: parse, call the service, shape the
//! answer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::ids::{AttributeId, JobId, LeadId, NoteId, RuleId};
use crate::domain::lead::AttributeSpec;
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody};
use crate::edges::wire::{
    AttributeInput, AttributesResponse, JobResponse, NoteInput, NotesResponse, RescoreResponse,
    RuleInput, RuleResponse, RulesResponse, ScoreResponse, parse_json,
};
use crate::error::{Error, Result};

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// `POST /leads/{id}/notes`
pub async fn create_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let content = parse_json::<NoteInput>(&body)?.into_content()?;
    let note = s.app.notes.create_note(&t, &id, &content).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

/// `GET /leads/{id}/notes`: `{"notes": [...]}`, newest first.
pub async fn list_notes(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let notes = s.app.notes.list_notes(&t, &id).await?;
    Ok(Json(NotesResponse { notes }).into_response())
}

/// `PUT /notes/{note_id}`
pub async fn update_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = NoteId::parse(&id)?;
    let content = parse_json::<NoteInput>(&body)?.into_content()?;
    Ok(Json(s.app.notes.update_note(&t, &id, &content).await?).into_response())
}

/// `DELETE /notes/{note_id}`: 204.
pub async fn delete_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = NoteId::parse(&id)?;
    s.app.notes.delete_note(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /leads/{id}/attributes`: `{"attributes": [...]}`.
pub async fn list_attributes(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let attributes = s.app.attributes.list_attributes(&t, &id).await?;
    Ok(Json(AttributesResponse { attributes }).into_response())
}

/// `POST /leads/{id}/attributes`: 201 when created, 200 when the name existed.
pub async fn create_attribute(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let input: AttributeInput = parse_json(&body)?;
    let spec = AttributeSpec::new(&input.name, &input.ty, input.value)?;
    let (attr, created) = s.app.attributes.upsert_attribute(&t, &id, spec).await?;
    Ok((created_or_ok(created), Json(attr)).into_response())
}

/// The new value in an attribute update: `{"value": ...}` (docs) or the raw value (Python SDK).
fn attribute_value(body: &[u8]) -> Result<serde_json::Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid("request body is required (the new value)"));
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid(format!("malformed JSON body: {e}")))?;
    if let serde_json::Value::Object(map) = &v
        && map.contains_key("value")
        && map
            .keys()
            .all(|k| matches!(k.as_str(), "value" | "name" | "type" | "id"))
    {
        return Ok(map["value"].clone());
    }
    Ok(v)
}

/// `PUT /leads/{id}/attributes/{attr_id}`
pub async fn update_attribute(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path((id, attr_id)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let attr_id = AttributeId::parse(&attr_id)?;
    let value = attribute_value(&body)?;
    let attr = s
        .app
        .attributes
        .set_attribute_value(&t, &id, &attr_id, value)
        .await?;
    Ok(Json(attr).into_response())
}

/// `DELETE /leads/{id}/attributes/{attr_id}`: 204.
pub async fn delete_attribute(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path((id, attr_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let attr_id = AttributeId::parse(&attr_id)?;
    s.app.attributes.delete_attribute(&t, &id, &attr_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /scoring-rules`: `{"rules": [...]}`, highest priority first.
pub async fn list_rules(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let rules = s.app.scoring.list_rules(&t).await?;
    Ok(Json(RulesResponse { rules }).into_response())
}

/// `POST /scoring-rules`: 201; rescores the account's leads.
pub async fn create_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<RuleInput>(&body)?.into_changes()?;
    let (rule, job) = s.app.scoring.create_rule(&t, changes).await?;
    let resp = RuleResponse {
        rule,
        job_id: job.map(|j| j.id),
    };
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

/// `GET /scoring-rules/{id}`
pub async fn get_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = RuleId::parse(&id)?;
    Ok(Json(s.app.scoring.get_rule(&t, &id).await?).into_response())
}

/// `PUT /scoring-rules/{id}`: partial; rescores the account's leads.
pub async fn update_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = RuleId::parse(&id)?;
    let changes = parse_json::<RuleInput>(&body)?.into_changes()?;
    let (rule, job) = s.app.scoring.update_rule(&t, &id, changes).await?;
    Ok(Json(RuleResponse {
        rule,
        job_id: job.map(|j| j.id),
    })
    .into_response())
}

/// `DELETE /scoring-rules/{id}`: 204; rescores the account's leads.
pub async fn delete_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = RuleId::parse(&id)?;
    s.app.scoring.delete_rule(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /leads/{id}/score`: `{id, score}`. Takes no body (the Rust SDK sends none at all).
pub async fn rescore_one(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    let score = s.app.scoring.rescore_one(&t, &id).await?;
    Ok(Json(ScoreResponse {
        id: id.to_string(),
        score,
    })
    .into_response())
}

/// `POST /leads/score/batch`: rescores every lead; says how many were examined and changed.
pub async fn rescore_all(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let job = s.app.scoring.rescore_all(&t).await?;
    Ok(Json(RescoreResponse::from_job(job)).into_response())
}

/// `GET /jobs/{id}`: where a background job stands.
pub async fn get_job(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = JobId::parse(&id)?;
    let job = s.app.scoring.get_job(&t.account_id, &id).await?;
    Ok(Json(JobResponse::from(job)).into_response())
}

/// `GET /leads/{id}/score/explain`: each rule's value, weight and contribution.
pub async fn explain(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = LeadId::parse(&id)?;
    Ok(Json(s.app.scoring.explain_score(&t, &id).await?).into_response())
}
