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
    /// A lead's score changed (`{id, score}`).
    pub const LEAD_SCORED: &str = "lead.scored";
    /// Scores changed after a rule change (`{leads: [{id, score}], count}`).
    pub const LEADS_SCORED: &str = "leads.scored";
    /// A note was added.
    pub const NOTE_CREATED: &str = "note.created";
    /// A note was edited.
    pub const NOTE_UPDATED: &str = "note.updated";
    /// A note was deleted.
    pub const NOTE_DELETED: &str = "note.deleted";
    /// Leads were created by one batch request (`{ids, count}`).
    pub const LEADS_CREATED: &str = "leads.created";
    /// Leads were updated by one batch request (`{ids, count}`).
    pub const LEADS_UPDATED: &str = "leads.updated";
    /// Leads were deleted by one batch request (`{ids, count}`).
    pub const LEADS_DELETED: &str = "leads.deleted";
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
    /// For one item of a batch: the batch it belongs to. Such member records are folded into
    /// one grouped event when the batch finishes; a member left behind by a crash still
    /// carries everything needed to deliver it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}
