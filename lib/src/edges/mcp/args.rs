//! The arguments of each MCP tool. Lead, rule, webhook and attribute bodies are the shared
//! wire types (flattened), so a field means the same over REST and MCP; what is added here is
//! only what addresses the object (`id`, `lead_id`), `confirm` and `idempotency_key`.
//! Parameter descriptions stay within 40 characters (checked by the golden test).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::edges::wire::{AttributeInput, LeadInput, RuleInput, WebhookInput};

/// No arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

/// A lead addressed by id.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GetLead {
    /// Lead id (cl_...).
    pub id: String,
}

/// Confirms a destructive call.
pub type Confirm = Option<bool>;

/// `delete_lead`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteLead {
    /// Lead id (cl_...).
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// `create_lead`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateLead {
    /// The lead's fields.
    #[serde(flatten)]
    pub lead: LeadInput,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `update_lead`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UpdateLead {
    /// Lead id (cl_...).
    pub id: String,
    /// The fields to change.
    #[serde(flatten)]
    pub lead: LeadInput,
}

/// `create_lead_tag`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateLeadTag {
    /// Lead id (cl_...).
    pub id: String,
    /// Tag to add.
    pub tag: String,
}

/// `batch_create_leads`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchCreate {
    /// Leads to create (max 100, 500 on Pro).
    #[schemars(with = "Vec<LeadInput>")]
    pub leads: Vec<serde_json::Value>,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `batch_update_leads`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchUpdate {
    /// Lead ids to update.
    pub ids: Vec<String>,
    /// Fields set on every lead.
    pub data: LeadInput,
}

/// `batch_delete_leads`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchDelete {
    /// Lead ids to delete.
    pub ids: Vec<String>,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// The notes or attributes of a lead.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct LeadRef {
    /// Lead id (cl_...).
    pub lead_id: String,
}

/// `create_note`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateNote {
    /// Lead id (cl_...).
    pub lead_id: String,
    /// Note text.
    pub content: String,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `update_note`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UpdateNote {
    /// Note id (note_...).
    pub id: String,
    /// New note text.
    pub content: String,
}

/// `delete_note`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteNote {
    /// Note id (note_...).
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// `create_attribute`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateAttribute {
    /// Lead id (cl_...).
    pub lead_id: String,
    /// Name, type and value.
    #[serde(flatten)]
    pub attribute: AttributeInput,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `update_attribute`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UpdateAttribute {
    /// Lead id (cl_...).
    pub lead_id: String,
    /// Attribute id.
    pub id: String,
    /// New value, of the attribute's type.
    pub value: serde_json::Value,
}

/// `delete_attribute`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteAttribute {
    /// Lead id (cl_...).
    pub lead_id: String,
    /// Attribute id.
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// A scoring rule addressed by id.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GetRule {
    /// Scoring rule id.
    pub id: String,
}

/// `create_scoring_rule`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateRule {
    /// The rule.
    #[serde(flatten)]
    pub rule: RuleInput,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `update_scoring_rule`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UpdateRule {
    /// Scoring rule id.
    pub id: String,
    /// The fields to change.
    #[serde(flatten)]
    pub rule: RuleInput,
}

/// `delete_scoring_rule`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteRule {
    /// Scoring rule id.
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// `create_webhook`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateWebhook {
    /// The subscription.
    #[serde(flatten)]
    pub webhook: WebhookInput,
    /// Replays the first answer when reused.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `delete_webhook`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteWebhook {
    /// Webhook id.
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}

/// The answer of every delete tool.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Deleted {
    /// The deleted object's id.
    pub id: String,
    /// Always true.
    pub deleted: bool,
}

/// `create_api_key`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateApiKey {
    /// A label for the key.
    pub name: String,
    /// read, write or admin (default).
    #[serde(default)]
    pub scope: Option<crate::domain::account::Scope>,
}

/// `delete_api_key`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteApiKey {
    /// API key id.
    pub id: String,
    /// Must be true to delete.
    #[serde(default)]
    pub confirm: Confirm,
}
