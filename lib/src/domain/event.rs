//! Outbox events: what a change records, in the same atomic write, for webhook delivery.

use serde::{Deserialize, Serialize};

/// Single-lead and grouped event names (klozeo-docs.txt, "Webhooks" and "Batch Operations").
pub mod names {
    /// A lead was created.
    pub const LEAD_CREATED: &str = "lead.created";
    /// A lead was updated (including a dedup merge).
    pub const LEAD_UPDATED: &str = "lead.updated";
    /// A lead was deleted.
    pub const LEAD_DELETED: &str = "lead.deleted";
}

/// One recorded event, waiting in the outbox for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Time-ordered UUID.
    pub id: String,
    /// The account the event belongs to; only its webhooks receive it.
    pub account_id: String,
    /// Event name, e.g. `lead.created`.
    pub event: String,
    /// Unix seconds when the change happened.
    pub timestamp: i64,
    /// The payload: the full lead or note, or a grouped `{ids, count}` body.
    pub data: serde_json::Value,
}
