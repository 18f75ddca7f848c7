//! Outbox events: what a change records, in the same atomic write, for webhook delivery.

use serde::{Deserialize, Serialize};

/// The kinds of event a change records (klozeo-docs.txt, "Webhooks" and "Batch Operations").
/// The serde spelling is the event name webhooks receive and subscribe to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum EventKind {
    /// A lead was created.
    #[serde(rename = "lead.created")]
    LeadCreated,
    /// A lead was updated (including a dedup merge).
    #[serde(rename = "lead.updated")]
    LeadUpdated,
    /// A lead was deleted.
    #[serde(rename = "lead.deleted")]
    LeadDeleted,
    /// A lead's score changed, or was recomputed on request (`{id, score}`).
    #[serde(rename = "lead.scored")]
    LeadScored,
    /// A note was added.
    #[serde(rename = "note.created")]
    NoteCreated,
    /// A note was edited.
    #[serde(rename = "note.updated")]
    NoteUpdated,
    /// A note was deleted.
    #[serde(rename = "note.deleted")]
    NoteDeleted,
    /// Leads were created by one batch request (`{ids, count}`).
    #[serde(rename = "leads.created")]
    LeadsCreated,
    /// Leads were updated by one batch request (`{ids, count}`).
    #[serde(rename = "leads.updated")]
    LeadsUpdated,
    /// Leads were deleted by one batch request (`{ids, count}`).
    #[serde(rename = "leads.deleted")]
    LeadsDeleted,
    /// One rescoring run finished (`{leads: [{id, score}], count}`).
    #[serde(rename = "leads.scored")]
    LeadsScored,
}

impl EventKind {
    /// Every kind, single events first.
    pub const ALL: [EventKind; 11] = [
        EventKind::LeadCreated,
        EventKind::LeadUpdated,
        EventKind::LeadDeleted,
        EventKind::LeadScored,
        EventKind::NoteCreated,
        EventKind::NoteUpdated,
        EventKind::NoteDeleted,
        EventKind::LeadsCreated,
        EventKind::LeadsUpdated,
        EventKind::LeadsDeleted,
        EventKind::LeadsScored,
    ];

    /// The event name, e.g. `lead.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LeadCreated => "lead.created",
            EventKind::LeadUpdated => "lead.updated",
            EventKind::LeadDeleted => "lead.deleted",
            EventKind::LeadScored => "lead.scored",
            EventKind::NoteCreated => "note.created",
            EventKind::NoteUpdated => "note.updated",
            EventKind::NoteDeleted => "note.deleted",
            EventKind::LeadsCreated => "leads.created",
            EventKind::LeadsUpdated => "leads.updated",
            EventKind::LeadsDeleted => "leads.deleted",
            EventKind::LeadsScored => "leads.scored",
        }
    }

    /// Parses an event name; `None` for anything else.
    pub fn parse(name: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether this is a grouped event of a batch operation or a rescoring run.
    pub fn is_grouped(self) -> bool {
        matches!(
            self,
            EventKind::LeadsCreated
                | EventKind::LeadsUpdated
                | EventKind::LeadsDeleted
                | EventKind::LeadsScored
        )
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded event, waiting in the outbox for delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Time-ordered UUID.
    pub id: String,
    /// The account the event belongs to; only its webhooks receive it.
    pub account_id: String,
    /// What happened.
    pub event: EventKind,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for k in EventKind::ALL {
            let json = serde_json::to_value(k).unwrap_or_default();
            assert_eq!(json, serde_json::json!(k.as_str()));
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(k.is_grouped(), k.as_str().starts_with("leads."));
        }
        assert_eq!(EventKind::parse("lead.exploded"), None);
    }
}
