//! Handlers of the webhook routes: subscriptions, the delivery log, retry and test.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::ids::{DeliveryId, WebhookId};
use crate::edges::http::AppState;
use crate::edges::http::extract::{Auth, RawBody};
use crate::edges::wire::{
    DeliveriesResponse, DeliveryResponse, WebhookInput, WebhookResponse, WebhooksResponse,
    parse_json,
};
use crate::error::Result;

/// `GET /webhooks`: `{"webhooks": [...]}`.
pub async fn list(State(s): State<AppState>, Auth(t): Auth) -> Result<Response> {
    let webhooks = s.app.webhooks.list(&t).await?;
    Ok(Json(WebhooksResponse {
        webhooks: webhooks.into_iter().map(WebhookResponse::from).collect(),
    })
    .into_response())
}

/// `POST /webhooks`: 201 with the webhook (never its secret).
pub async fn create(
    State(s): State<AppState>,
    Auth(t): Auth,
    RawBody(body): RawBody,
) -> Result<Response> {
    let changes = parse_json::<WebhookInput>(&body)?.into_changes()?;
    let hook = s.app.webhooks.create(&t, changes).await?;
    Ok((StatusCode::CREATED, Json(WebhookResponse::from(hook))).into_response())
}

/// `GET /webhooks/{id}`
pub async fn get(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    let hook = s.app.webhooks.get(&t, &id).await?;
    Ok(Json(WebhookResponse::from(hook)).into_response())
}

/// `PUT /webhooks/{id}` and `PATCH /webhooks/{id}`: partial update.
pub async fn update(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    let changes = parse_json::<WebhookInput>(&body)?.into_changes()?;
    let hook = s.app.webhooks.update(&t, &id, changes).await?;
    Ok(Json(WebhookResponse::from(hook)).into_response())
}

/// `DELETE /webhooks/{id}`: 204.
pub async fn delete(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    s.app.webhooks.delete(&t, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /webhooks/{id}/deliveries`: the delivery log, newest first.
pub async fn deliveries(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    let list = s.app.webhooks.deliveries(&t, &id).await?;
    Ok(Json(DeliveriesResponse {
        deliveries: list.into_iter().map(DeliveryResponse::from).collect(),
    })
    .into_response())
}

/// `POST /webhooks/{id}/deliveries/{delivery_id}/retry`: 202, sent again now.
pub async fn retry(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    let delivery_id = DeliveryId::parse(&delivery_id)?;
    let d = s.app.webhooks.retry(&t, &id, &delivery_id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryResponse::from(d))).into_response())
}

/// `POST /webhooks/{id}/test`: 202, a `ping` event is sent now.
pub async fn test(
    State(s): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = WebhookId::parse(&id)?;
    let d = s.app.webhooks.test(&t, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryResponse::from(d))).into_response())
}
