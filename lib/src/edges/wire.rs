//! Request and response bodies exactly as the Klozeo SDKs send and expect them
//! (wire-contract §3–4), for every route. Validation happens once, when these convert into
//! domain types. Each type derives a JSON Schema, so the OpenAPI description and the MCP tool
//! schemas come from the same structs as the wire.

mod accounts;
pub use accounts::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::dedup::MatchInfo;
use crate::domain::event::EventKind;
use crate::domain::job::{Job, JobKind, JobStatus};
use crate::domain::lead::{Attribute, Lead};
use crate::domain::lead::{AttributeSpec, LeadChanges, Status, TextField};
use crate::domain::note::Note;
use crate::domain::patch::Patch;
use crate::domain::rule::ScoringRule;
use crate::domain::webhook::{Delivery, DeliveryStatus, Webhook, iso8601};
use crate::error::{Error, Result};
use crate::services::ingest::{IdOutcome, PushKind, PushOutcome};
use crate::services::webhooks::WebhookChanges;

/// One attribute as sent inside a lead body (`id` is accepted and ignored).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct AttributeInput {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Attribute value.
    #[serde(default)]
    pub value: serde_json::Value,
}

/// The body of `POST /leads`, `PUT|PATCH /leads/{id}` and a batch item.
///
/// Unknown keys and read-only keys (`id`, `score`, timestamps) are ignored.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct LeadInput {
    /// Display name (required on create).
    #[serde(default)]
    pub name: Patch<String>,
    /// Origin, e.g. website (required).
    #[serde(default)]
    pub source: Patch<String>,
    /// Free text.
    #[serde(default)]
    pub description: Patch<String>,
    /// Street address.
    #[serde(default)]
    pub address: Patch<String>,
    /// City.
    #[serde(default)]
    pub city: Patch<String>,
    /// State or region.
    #[serde(default)]
    pub state: Patch<String>,
    /// Country.
    #[serde(default)]
    pub country: Patch<String>,
    /// Postal code.
    #[serde(default)]
    pub postal_code: Patch<String>,
    /// Latitude in degrees.
    #[serde(default)]
    pub latitude: Patch<f64>,
    /// Longitude in degrees.
    #[serde(default)]
    pub longitude: Patch<f64>,
    /// Phone number.
    #[serde(default)]
    pub phone: Patch<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Patch<String>,
    /// Website URL.
    #[serde(default)]
    pub website: Patch<String>,
    /// Rating, e.g. 4.5.
    #[serde(default)]
    pub rating: Patch<f64>,
    /// Number of reviews.
    #[serde(default)]
    pub review_count: Patch<u32>,
    /// Category, e.g. Restaurant.
    #[serde(default)]
    pub category: Patch<String>,
    /// Tags (replace the list).
    #[serde(default)]
    pub tags: Patch<Vec<String>>,
    /// Your own id, used for deduplication.
    #[serde(default)]
    pub source_id: Patch<String>,
    /// Logo URL.
    #[serde(default)]
    pub logo_url: Patch<String>,
    /// new, contacted, qualified, ...
    #[serde(default)]
    pub status: Patch<String>,
    /// Custom attributes to set.
    #[serde(default)]
    pub attributes: Patch<Vec<AttributeInput>>,
}

/// Whether a lead body creates a lead or changes an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// `name` and `source` are required; `null` means "not given".
    Create,
    /// Every key is optional; `null` clears an optional field.
    Update,
}

impl LeadInput {
    fn text(&self, f: TextField) -> &Patch<String> {
        match f {
            TextField::Description => &self.description,
            TextField::Address => &self.address,
            TextField::City => &self.city,
            TextField::State => &self.state,
            TextField::Country => &self.country,
            TextField::PostalCode => &self.postal_code,
            TextField::Phone => &self.phone,
            TextField::Email => &self.email,
            TextField::Website => &self.website,
            TextField::Category => &self.category,
            TextField::SourceId => &self.source_id,
            TextField::LogoUrl => &self.logo_url,
        }
    }

    /// Validates the body into domain changes.
    pub fn into_changes(self, mode: InputMode) -> Result<LeadChanges> {
        let required = |field: &str, p: &Patch<String>| -> Result<Option<String>> {
            match p {
                Patch::Value(v) => LeadChanges::required_text(field, v).map(Some),
                Patch::Missing => Ok(None),
                Patch::Null if mode == InputMode::Create => Ok(None),
                Patch::Null => Err(Error::invalid(format!("{field} cannot be null"))),
            }
        };
        let mut c = LeadChanges {
            name: required("name", &self.name)?,
            source: required("source", &self.source)?,
            ..Default::default()
        };
        if mode == InputMode::Create {
            for (field, v) in [("name", &c.name), ("source", &c.source)] {
                if v.is_none() {
                    return Err(Error::invalid(format!("{field} is required")));
                }
            }
        }
        for f in TextField::ALL {
            match self.text(f) {
                Patch::Missing => {}
                Patch::Null => c.text.push((f, None)),
                Patch::Value(v) => c.text.push((f, LeadChanges::text_value(f, Some(v))?)),
            }
        }
        let num = |field: &str, p: &Patch<f64>, lo: f64, hi: f64| -> Result<Option<Option<f64>>> {
            match p {
                Patch::Missing => Ok(None),
                Patch::Null => Ok(Some(None)),
                Patch::Value(v) => LeadChanges::number_value(field, Some(*v), lo, hi).map(Some),
            }
        };
        c.latitude = num("latitude", &self.latitude, -90.0, 90.0)?;
        c.longitude = num("longitude", &self.longitude, -180.0, 180.0)?;
        c.rating = num("rating", &self.rating, -1e9, 1e9)?;
        c.review_count = match self.review_count {
            Patch::Missing => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        };
        c.tags = match &self.tags {
            Patch::Missing => None,
            Patch::Null => Some(Vec::new()),
            Patch::Value(v) => Some(LeadChanges::tags_value(v)?),
        };
        c.status = match &self.status {
            Patch::Missing => None,
            Patch::Null if mode == InputMode::Create => None,
            Patch::Null => return Err(Error::invalid("status cannot be null")),
            Patch::Value(s) => Some(Status::parse(s)?),
        };
        if let Patch::Value(attrs) = self.attributes {
            for (i, a) in attrs.into_iter().enumerate() {
                let spec = AttributeSpec::new(&a.name, &a.ty, a.value)
                    .map_err(|e| Error::invalid(format!("attributes[{i}]: {e}")))?;
                c.attributes.retain(|x: &AttributeSpec| x.name != spec.name);
                c.attributes.push(spec);
            }
        }
        Ok(c)
    }
}

/// `POST /leads` answer (wire-contract §3.1, §4.7).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreateResponse {
    /// The new or merged lead's id.
    pub id: String,
    /// `Lead created successfully` or `Duplicate detected, existing lead updated`.
    pub message: String,
    /// Unix seconds when the lead was created.
    pub created_at: i64,
    /// Present and true on a merge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Present on a low-confidence (name + city) match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub potential_duplicate_id: Option<String>,
    /// Why deduplication merged or hinted (an extension the SDKs ignore).
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchInfo>,
}

/// `POST /leads/batch` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchCreateInput {
    /// The leads, validated one by one so a bad item fails alone.
    #[schemars(with = "Vec<LeadInput>")]
    pub leads: Vec<serde_json::Value>,
}

/// `PUT /leads/batch` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchUpdateInput {
    /// Leads to change.
    pub ids: Vec<String>,
    /// The partial update applied to each.
    pub data: LeadInput,
}

/// `DELETE /leads/batch` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct BatchDeleteInput {
    /// Leads to delete.
    pub ids: Vec<String>,
}

/// One created or merged item of a batch create.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchCreated {
    /// Position in the request.
    pub index: usize,
    /// Lead id.
    pub id: String,
    /// When the lead was created.
    pub created_at: i64,
    /// True when merged into an existing lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// Present on a name + city match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub potential_duplicate_id: Option<String>,
    /// Why deduplication merged or hinted.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchInfo>,
}

/// One failed item of a batch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchError {
    /// Position in the request.
    pub index: usize,
    /// What was wrong.
    pub message: String,
}

/// `POST /leads/batch` answer (wire-contract §3.7).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchCreateResponse {
    /// Items stored (created or merged).
    pub created: Vec<BatchCreated>,
    /// Items that failed.
    pub errors: Vec<BatchError>,
    /// Items in the request.
    pub total: usize,
    /// Items stored.
    pub success: usize,
    /// Items failed.
    pub failed: usize,
}

/// One item of a batch update or delete.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchItemResult {
    /// Position in the request.
    pub index: usize,
    /// Lead id.
    pub id: String,
    /// Whether it was applied.
    pub success: bool,
    /// Why not, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `PUT /leads/batch` and `DELETE /leads/batch` answer (wire-contract §3.8).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchResult {
    /// One entry per requested id.
    pub results: Vec<BatchItemResult>,
    /// Ids in the request.
    pub total: usize,
    /// Applied.
    pub success: usize,
    /// Failed.
    pub failed: usize,
}

/// `GET /leads` answer (wire-contract §3.5).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListResponse<T> {
    /// The page.
    pub leads: Vec<T>,
    /// Non-empty exactly when `has_more`.
    pub next_cursor: Option<String>,
    /// Whether another page exists.
    pub has_more: bool,
    /// Number of leads in this page.
    pub count: usize,
    /// How the page was read; only with `explain=true`, so the SDK shape is otherwise unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<ListPlan>,
}

/// The `plan` of `GET /leads?explain=true`: why a query is fast or slow, cheap or costly.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListPlan {
    /// `key_ordered`: the store reads in the requested order and stops at the page (or at the
    /// read budget, with a cursor); `candidates`: every candidate is read and the page is chosen
    /// in memory.
    pub access: String,
    /// `base` (the tenant's leads in created order) or the secondary index read.
    pub index: String,
    /// Items the store read to answer this page.
    pub items_read: u64,
    /// Read capacity units DynamoDB charges for those reads (estimated from item sizes: 4 KB a
    /// unit, half a unit on an eventually consistent index read).
    pub estimated_rcu: f64,
}

impl From<crate::services::leads::PlanReport> for ListPlan {
    fn from(r: crate::services::leads::PlanReport) -> Self {
        ListPlan {
            access: r.access.to_string(),
            index: r.index.to_string(),
            items_read: r.items_read,
            estimated_rcu: r.estimated_rcu,
        }
    }
}

/// `GET /leads/export?delivery=url` answer: where to fetch the file, until when.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExportLinkResponse {
    /// Fetch the file here, without the API key.
    pub url: String,
    /// Unix seconds after which `url` stops working.
    pub expires_at: i64,
    /// `csv`, `json` or `xlsx`.
    pub format: String,
    /// Leads in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

impl CreateResponse {
    /// The answer to a push, and whether it created a lead (201) rather than merged (200).
    pub fn from_push(out: PushOutcome) -> (bool, CreateResponse) {
        match out.kind {
            PushKind::Merged { matched } => (
                false,
                CreateResponse {
                    id: out.lead.id,
                    message: "Duplicate detected, existing lead updated".into(),
                    created_at: out.lead.created_at,
                    duplicate: Some(true),
                    potential_duplicate_id: None,
                    matched: Some(matched),
                },
            ),
            PushKind::Created {
                potential_duplicate_id,
                hint,
            } => (
                true,
                CreateResponse {
                    id: out.lead.id,
                    message: "Lead created successfully".into(),
                    created_at: out.lead.created_at,
                    duplicate: None,
                    potential_duplicate_id,
                    matched: hint,
                },
            ),
        }
    }
}

impl BatchCreateResponse {
    /// The answer to a batch create, from each item's outcome in request order. Errors show
    /// only their public message.
    pub fn from_outcomes(outcomes: Vec<Result<PushOutcome>>) -> BatchCreateResponse {
        let total = outcomes.len();
        let mut created = Vec::new();
        let mut errors = Vec::new();
        for (index, o) in outcomes.into_iter().enumerate() {
            match o {
                Ok(out) => {
                    let (_, r) = CreateResponse::from_push(out);
                    created.push(BatchCreated {
                        index,
                        id: r.id,
                        created_at: r.created_at,
                        duplicate: r.duplicate,
                        potential_duplicate_id: r.potential_duplicate_id,
                        matched: r.matched,
                    });
                }
                Err(e) => errors.push(BatchError {
                    index,
                    message: e.public_message(),
                }),
            }
        }
        BatchCreateResponse {
            success: created.len(),
            failed: errors.len(),
            total,
            created,
            errors,
        }
    }
}

impl BatchResult {
    /// The answer to a batch update or delete, from each id's outcome in request order.
    pub fn from_outcomes(outcomes: Vec<IdOutcome>) -> BatchResult {
        let results: Vec<BatchItemResult> = outcomes
            .into_iter()
            .enumerate()
            .map(|(index, o)| BatchItemResult {
                index,
                id: o.id,
                success: o.result.is_ok(),
                message: o.result.err().map(|e| e.public_message()),
            })
            .collect();
        let success = results.iter().filter(|r| r.success).count();
        BatchResult {
            total: results.len(),
            failed: results.len() - success,
            success,
            results,
        }
    }
}

/// `GET /leads/{id}/notes` answer, newest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NotesResponse {
    /// The lead's notes.
    pub notes: Vec<Note>,
}

/// `POST /leads/{id}/notes` and `PUT /notes/{id}` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct NoteInput {
    /// The note's text (required, not blank).
    #[serde(default)]
    pub content: Option<String>,
}

impl NoteInput {
    /// The content, which is required.
    pub fn into_content(self) -> Result<String> {
        self.content
            .ok_or_else(|| Error::invalid("content is required"))
    }
}

/// `GET /leads/{id}/attributes` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttributesResponse {
    /// The lead's attributes.
    pub attributes: Vec<Attribute>,
}

/// `POST /scoring-rules` and `PUT /scoring-rules/{id}` body (absent fields unchanged).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RuleInput {
    /// Display name (required on create).
    #[serde(default)]
    pub name: Patch<String>,
    /// Scoring expression (required on create).
    #[serde(default)]
    pub expression: Patch<String>,
    /// Multiplier of the rule's value (1).
    #[serde(default)]
    pub weight: Patch<f64>,
    /// Order in the list, highest first.
    #[serde(default)]
    pub priority: Patch<i32>,
}

impl RuleInput {
    /// Validates the body into rule changes.
    pub fn into_changes(self) -> Result<crate::services::scoring::RuleChanges> {
        let req = |f: &str, p: Patch<String>| match p {
            Patch::Value(v) => Ok(Some(v)),
            Patch::Missing => Ok(None),
            Patch::Null => Err(Error::invalid(format!("{f} cannot be null"))),
        };
        Ok(crate::services::scoring::RuleChanges {
            name: req("name", self.name)?,
            expression: req("expression", self.expression)?,
            weight: self.weight.value().copied(),
            priority: self.priority.value().copied(),
        })
    }
}

/// `GET /scoring-rules` answer, highest priority first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RulesResponse {
    /// The account's rules.
    pub rules: Vec<ScoringRule>,
}

/// `POST /leads/{id}/score` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScoreResponse {
    /// The lead.
    pub id: String,
    /// Its score, as now stored.
    pub score: f64,
}

/// `POST /leads/score/batch` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RescoreResponse {
    /// Leads examined (so far, while the job runs on).
    pub total: u64,
    /// Leads whose score changed (so far).
    pub updated: u64,
    /// A sentence saying the same.
    pub message: String,
    /// The rescoring job (follow it at `GET /jobs/{id}`).
    pub job_id: String,
    /// `succeeded` when every lead was rescored before answering, `running` when the worker
    /// finishes it.
    pub status: JobStatus,
}

impl RescoreResponse {
    /// The answer for a rescoring job as it stands when the request returns.
    pub fn from_job(job: Job) -> RescoreResponse {
        let message = match job.status {
            JobStatus::Running => format!(
                "Rescored {} of {} leads so far ({} changed); job {} continues in the background",
                job.processed, job.total, job.changed, job.id
            ),
            _ => format!("Rescored {} leads ({} changed)", job.processed, job.changed),
        };
        RescoreResponse {
            total: job.processed,
            updated: job.changed,
            message,
            job_id: job.id,
            status: job.status,
        }
    }
}

/// `GET /leads/{id}` answer and every lead inside lists.
pub type LeadResponse = Lead;

/// A scoring rule as answered by create and update, with the rescoring job it started.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RuleResponse {
    /// The rule.
    #[serde(flatten)]
    pub rule: ScoringRule,
    /// The rescoring job the change started (follow it at `GET /jobs/{id}`); absent if it
    /// could not be started (the rule is saved either way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// `GET /health` answer (no key needed).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HealthResponse {
    /// Always `ok` while the process serves.
    pub status: &'static str,
}

/// `GET /jobs/{id}` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JobResponse {
    /// The job id.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// `running`, `succeeded` or `failed`.
    pub status: JobStatus,
    /// Items done.
    pub processed: u64,
    /// Items to do, as known when it started.
    pub total: u64,
    /// Items whose value changed (for rescoring: scores).
    pub changed: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when done.
    pub finished_at: Option<i64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<Job> for JobResponse {
    fn from(j: Job) -> Self {
        JobResponse {
            id: j.id,
            kind: j.kind,
            status: j.status,
            processed: j.processed,
            total: j.total,
            changed: j.changed,
            created_at: j.created_at,
            finished_at: j.finished_at,
            error: j.error,
        }
    }
}

/// `POST /webhooks` and `PUT|PATCH /webhooks/{id}` body (absent fields unchanged).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct WebhookInput {
    /// Where deliveries are POSTed (https).
    #[serde(default)]
    pub url: Patch<String>,
    /// Events to receive; none means all.
    #[serde(default)]
    pub events: Patch<Vec<String>>,
    /// Secret that signs deliveries.
    #[serde(default)]
    pub secret: Patch<String>,
    /// Whether deliveries are made (true).
    #[serde(default)]
    pub active: Patch<bool>,
}

impl WebhookInput {
    /// Validates the body into webhook changes.
    pub fn into_changes(self) -> Result<WebhookChanges> {
        Ok(WebhookChanges {
            url: match self.url {
                Patch::Value(u) => Some(u.trim().to_string()),
                Patch::Missing => None,
                Patch::Null => return Err(Error::invalid("url cannot be null")),
            },
            events: match self.events {
                Patch::Value(e) => Some(Some(e)),
                Patch::Null => Some(None),
                Patch::Missing => None,
            },
            secret: match self.secret {
                Patch::Value(s) => Some(Some(s)),
                Patch::Null => Some(None),
                Patch::Missing => None,
            },
            active: match self.active {
                Patch::Value(a) => Some(a),
                Patch::Null => return Err(Error::invalid("active cannot be null")),
                Patch::Missing => None,
            },
        })
    }
}

/// A webhook as the API shows it (wire-contract §4.8): never its secret, and `created_at` as
/// an ISO-8601 string, unlike every other timestamp.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WebhookResponse {
    /// A UUID.
    pub id: String,
    /// The target.
    pub url: String,
    /// Subscribed events.
    pub events: Vec<EventKind>,
    /// Whether deliveries are made.
    pub active: bool,
    /// ISO-8601 UTC, e.g. `2023-12-25T16:00:00Z`.
    pub created_at: String,
    /// Whether deliveries are signed.
    pub has_secret: bool,
}

impl From<Webhook> for WebhookResponse {
    fn from(w: Webhook) -> Self {
        WebhookResponse {
            id: w.id,
            url: w.url,
            events: w.events,
            active: w.active,
            created_at: iso8601(w.created_at),
            has_secret: w.secret.is_some(),
        }
    }
}

/// `GET /webhooks` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WebhooksResponse {
    /// The account's webhooks.
    pub webhooks: Vec<WebhookResponse>,
}

/// One delivery in the delivery log.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeliveryResponse {
    /// The delivery id (also the `webhook-id` header of every attempt).
    pub id: String,
    /// The event name.
    pub event: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// Status code of the last answer.
    pub last_status_code: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds of the next attempt, while pending.
    pub next_attempt_at: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        DeliveryResponse {
            id: d.id,
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
        }
    }
}

/// `GET /webhooks/{id}/deliveries` answer, newest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DeliveriesResponse {
    /// The most recent deliveries.
    pub deliveries: Vec<DeliveryResponse>,
}

/// Converts one JSON value (a batch item) into a type, naming the offending field.
pub fn from_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    if !v.is_object() {
        return Err(Error::invalid("expected a JSON object"));
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid(format!("{path}: {}", e.into_inner()))
    })
}

/// Parses a JSON object body, naming the offending field on a type error.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(Error::invalid("request body is required (a JSON object)")),
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() => {
            return Err(Error::invalid("invalid JSON body: expected a JSON object"));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            Error::invalid(format!("malformed JSON body: {inner}"))
        } else if path == "." {
            Error::invalid(format!("invalid JSON body: {inner}"))
        } else {
            Error::invalid(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| Error::invalid(format!("malformed JSON body: {e}")))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json::<LeadInput>(br#"{"name":"a","source":"b","rating":"high"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rating:"), "{err}");
        let err = parse_json::<LeadInput>(br#"{"name":"a","#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed JSON"), "{err}");
        let err = parse_json::<LeadInput>(br#"[1]"#).unwrap_err().to_string();
        assert!(err.contains("invalid JSON body"), "{err}");
    }

    #[test]
    fn read_only_and_unknown_keys_are_ignored() {
        let input: LeadInput = parse_json(
            br#"{"name":"a","source":"b","id":"cl_x","score":99,"created_at":"yesterday","zzz":1}"#,
        )
        .unwrap();
        let c = input.into_changes(InputMode::Create).unwrap();
        assert_eq!(c.name.as_deref(), Some("a"));
    }

    #[test]
    fn create_requires_name_and_update_rejects_null_name() {
        let input: LeadInput = parse_json(br#"{"source":"b"}"#).unwrap();
        assert_eq!(
            input.into_changes(InputMode::Create).unwrap_err(),
            Error::invalid("name is required")
        );
        let input: LeadInput = parse_json(br#"{"name":null}"#).unwrap();
        assert!(input.into_changes(InputMode::Update).is_err());
        let input: LeadInput = parse_json(br#"{"city":null}"#).unwrap();
        let c = input.into_changes(InputMode::Update).unwrap();
        assert_eq!(c.text, vec![(TextField::City, None)]);
    }
}
