//! Handlers of the notes, attributes and scoring routes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::domain::lead::AttributeSpec;
use crate::domain::patch::Patch;
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody};
use crate::edges::wire::{AttributeInput, parse_json};
use crate::error::{Error, Result};
use crate::services::enrich::RuleChanges;

#[derive(Deserialize)]
struct NoteInput {
    #[serde(default)]
    content: Option<String>,
}

fn note_content(body: &[u8]) -> Result<String> {
    parse_json::<NoteInput>(body)?
        .content
        .ok_or_else(|| Error::invalid("content is required"))
}

/// `POST /leads/{id}/notes`
pub async fn create_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let note = s
        .app
        .leads
        .create_note(&t, &id, &note_content(&body)?)
        .await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

/// `GET /leads/{id}/notes`: `{"notes": [...]}`, newest first.
pub async fn list_notes(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let notes = s.app.leads.list_notes(&t, &id).await?;
    Ok(Json(serde_json::json!({ "notes": notes })).into_response())
}

/// `PUT /notes/{note_id}`
pub async fn update_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let note = s
        .app
        .leads
        .update_note(&t, &id, &note_content(&body)?)
        .await?;
    Ok(Json(note).into_response())
}

/// `DELETE /notes/{note_id}`: 204.
pub async fn delete_note(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    s.app.leads.delete_note(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /leads/{id}/attributes`: `{"attributes": [...]}`.
pub async fn list_attributes(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let attributes = s.app.leads.list_attributes(&t, &id).await?;
    Ok(Json(serde_json::json!({ "attributes": attributes })).into_response())
}

/// `POST /leads/{id}/attributes`: 201 when created, 200 when the name existed.
pub async fn create_attribute(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let input: AttributeInput = parse_json(&body)?;
    let spec = AttributeSpec::new(&input.name, &input.ty, input.value)?;
    let (attr, created) = s.app.leads.upsert_attribute(&t, &id, spec).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(attr)).into_response())
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
    let attr = s
        .app
        .leads
        .set_attribute_value(&t, &id, &attr_id, attribute_value(&body)?)
        .await?;
    Ok(Json(attr).into_response())
}

/// `DELETE /leads/{id}/attributes/{attr_id}`: 204.
pub async fn delete_attribute(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path((id, attr_id)): Path<(String, String)>,
) -> Result<Response> {
    s.app.leads.delete_attribute(&t, &id, &attr_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct RuleInput {
    #[serde(default)]
    name: Patch<String>,
    #[serde(default)]
    expression: Patch<String>,
    #[serde(default)]
    weight: Patch<f64>,
    #[serde(default)]
    priority: Patch<i32>,
}

fn rule_changes(body: &[u8]) -> Result<RuleChanges> {
    let i: RuleInput = parse_json(body)?;
    let req = |f: &str, p: Patch<String>| match p {
        Patch::Value(v) => Ok(Some(v)),
        Patch::Missing => Ok(None),
        Patch::Null => Err(Error::invalid(format!("{f} cannot be null"))),
    };
    Ok(RuleChanges {
        name: req("name", i.name)?,
        expression: req("expression", i.expression)?,
        weight: i.weight.value().copied(),
        priority: i.priority.value().copied(),
    })
}

/// `GET /scoring-rules`: `{"rules": [...]}`, highest priority first.
pub async fn list_rules(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let rules = s.app.leads.list_rules(&t).await?;
    Ok(Json(serde_json::json!({ "rules": rules })).into_response())
}

/// `POST /scoring-rules`: 201; rescores the account's leads.
pub async fn create_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let rule = s.app.leads.create_rule(&t, rule_changes(&body)?).await?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// `GET /scoring-rules/{id}`
pub async fn get_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(Json(s.app.leads.get_rule(&t, &id).await?.0).into_response())
}

/// `PUT /scoring-rules/{id}`: partial; rescores the account's leads.
pub async fn update_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let rule = s
        .app
        .leads
        .update_rule(&t, &id, rule_changes(&body)?)
        .await?;
    Ok(Json(rule).into_response())
}

/// `DELETE /scoring-rules/{id}`: 204; rescores the account's leads.
pub async fn delete_rule(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    s.app.leads.delete_rule(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /leads/{id}/score`: `{id, score}`. Takes no body (the Rust SDK sends none at all).
pub async fn rescore_one(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let score = s.app.leads.rescore_one(&t, &id).await?;
    Ok(Json(serde_json::json!({ "id": id, "score": score })).into_response())
}

/// `POST /leads/score/batch`: rescores every lead; says how many were examined and changed.
pub async fn rescore_all(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let (total, updated) = s.app.leads.rescore_all(&t).await?;
    Ok(Json(serde_json::json!({ "total": total, "updated": updated, "message": format!("Rescored {total} leads ({updated} changed)") })).into_response())
}

/// `GET /leads/{id}/score/explain`: each rule's value, weight and contribution.
pub async fn explain(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(Json(s.app.leads.explain_score(&t, &id).await?).into_response())
}
