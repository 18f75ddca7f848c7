//! Calling a tool: each tool is a thin translation to the service call REST makes for the
//! same operation, answering the same wire type.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::App;
use crate::domain::account::Tenant;
use crate::domain::ids::{AttributeId, LeadId, NoteId, RuleId, WebhookId};
use crate::domain::lead::AttributeSpec;
use crate::edges::mcp::args::*;
use crate::edges::mcp::list::{ListLeads, ListLeadsOutput};
use crate::edges::wire::ExportLinkResponse;
use crate::edges::wire::{
    ApiKeyResponse, ApiKeysResponse, CategoriesResponse, CitiesResponse, CreatedApiKeyResponse,
    NameCountResponse, StatsResponse,
};
use crate::edges::wire::{
    AttributesResponse, BatchCreateResponse, BatchResult, CreateResponse, InputMode, LeadInput,
    ListResponse, NotesResponse, RescoreResponse, RuleResponse, RulesResponse, ScoreResponse,
    WebhookResponse, WebhooksResponse, from_value,
};
use crate::error::{Error, Result};
use crate::services::export::Delivered;

/// Why a tool call did not succeed.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// A destructive tool was called without `confirm: true`; nothing was done.
    ConfirmationRequired,
    /// The operation failed.
    Failed(Error),
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        ToolError::Failed(e)
    }
}

fn args<A: DeserializeOwned>(v: Value) -> Result<A> {
    from_value(v)
}

fn json<T: Serialize>(v: T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::Failed(Error::internal(e)))
}

fn confirmed(c: Confirm) -> Result<(), ToolError> {
    if c == Some(true) {
        Ok(())
    } else {
        Err(ToolError::ConfirmationRequired)
    }
}

fn deleted(id: String) -> Result<Value, ToolError> {
    json(Deleted { id, deleted: true })
}

/// Whether `name` is a delete tool (all of which need `confirm: true`).
pub fn needs_confirm(name: &str) -> bool {
    name.starts_with("delete_") || name == "batch_delete_leads"
}

/// Where a call came from, for what the answer must point back to.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The base URL (`https://host`) of the server that serves this process's download links;
    /// `None` over stdio without `KLOZEO_PUBLIC_URL`, where no server answers them.
    pub link_base: Option<String>,
}

impl CallContext {
    /// An absolute link to an export file: a local link is joined to the server's base, or,
    /// with no server to serve it, becomes the file's own `file://` URL on this machine.
    fn absolute(&self, d: &Delivered) -> String {
        if !d.url.starts_with('/') {
            return d.url.clone();
        }
        match (&self.link_base, &d.local_path) {
            (Some(base), _) => format!("{base}{}", d.url),
            (None, Some(path)) => format!("file://{}", path.display()),
            (None, None) => d.url.clone(),
        }
    }
}

/// Runs tool `name` for tenant `t` and answers its `data`.
pub async fn dispatch(
    app: &App,
    t: &Tenant,
    name: &str,
    a: Value,
    ctx: &CallContext,
) -> Result<Value, ToolError> {
    // Confirmation is checked before anything else, so an unconfirmed delete never touches
    // the store, whatever else is wrong with it.
    if needs_confirm(name) && a.get("confirm").and_then(Value::as_bool) != Some(true) {
        return Err(ToolError::ConfirmationRequired);
    }
    // A key's scope holds on MCP as on REST: refused before anything is done.
    if !t.scope.permits(crate::edges::mcp::catalog::access_of(name)) {
        return Err(ToolError::Failed(Error::Forbidden {
            code: crate::error::Code::InsufficientScope,
            message: format!(
                "This API key has the '{}' scope, which does not allow {name}",
                t.scope.as_str()
            ),
        }));
    }
    match name {
        "list_leads" => {
            let l: ListLeads = args(a)?;
            if let Some(req) = l.to_export()? {
                let d = app.exports.deliver(t, &req).await?;
                return json(ListLeadsOutput::File(ExportLinkResponse {
                    url: ctx.absolute(&d),
                    expires_at: d.expires_at,
                    format: d.format.as_str().to_string(),
                    rows: d.rows,
                    bytes: d.bytes,
                }));
            }
            let page = app.leads.list(t, &l.to_request()?).await?;
            let leads = page
                .leads
                .into_iter()
                .map(|lead| l.project(lead))
                .collect::<Result<Vec<_>>>()?;
            json(ListResponse {
                count: leads.len(),
                has_more: page.next_cursor.is_some(),
                next_cursor: page.next_cursor,
                leads,
                plan: None,
            })
        }
        "get_lead" => {
            let l: GetLead = args(a)?;
            json(app.leads.get(t, &LeadId::parse(&l.id)?).await?)
        }
        "create_lead" => {
            let c: CreateLead = args(a)?;
            let changes = c.lead.into_changes(InputMode::Create)?;
            let (_, resp) = CreateResponse::from_push(app.ingest.create(t, &changes).await?);
            json(resp)
        }
        "update_lead" => {
            let u: UpdateLead = args(a)?;
            let id = LeadId::parse(&u.id)?;
            let changes = u.lead.into_changes(InputMode::Update)?;
            json(app.ingest.update(t, &id, &changes).await?)
        }
        "delete_lead" => {
            let d: DeleteLead = args(a)?;
            confirmed(d.confirm)?;
            app.ingest.delete(t, &LeadId::parse(&d.id)?).await?;
            deleted(d.id)
        }
        "create_lead_tag" => {
            let c: CreateLeadTag = args(a)?;
            let id = LeadId::parse(&c.id)?;
            json(app.ingest.add_tag(t, &id, &c.tag).await?)
        }
        "batch_create_leads" => {
            let b: BatchCreate = args(a)?;
            let items = b
                .leads
                .into_iter()
                .map(|v| from_value::<LeadInput>(v).and_then(|i| i.into_changes(InputMode::Create)))
                .collect();
            json(BatchCreateResponse::from_outcomes(
                app.ingest.batch_create(t, items).await?,
            ))
        }
        "batch_update_leads" => {
            let b: BatchUpdate = args(a)?;
            let changes = b.data.into_changes(InputMode::Update)?;
            json(BatchResult::from_outcomes(
                app.ingest.batch_update(t, b.ids, &changes).await?,
            ))
        }
        "batch_delete_leads" => {
            let b: BatchDelete = args(a)?;
            confirmed(b.confirm)?;
            json(BatchResult::from_outcomes(
                app.ingest.batch_delete(t, b.ids).await?,
            ))
        }
        "create_note" => {
            let c: CreateNote = args(a)?;
            let id = LeadId::parse(&c.lead_id)?;
            json(app.notes.create_note(t, &id, &c.content).await?)
        }
        "list_notes" => {
            let l: LeadRef = args(a)?;
            let id = LeadId::parse(&l.lead_id)?;
            json(NotesResponse {
                notes: app.notes.list_notes(t, &id).await?,
            })
        }
        "update_note" => {
            let u: UpdateNote = args(a)?;
            json(
                app.notes
                    .update_note(t, &NoteId::parse(&u.id)?, &u.content)
                    .await?,
            )
        }
        "delete_note" => {
            let d: DeleteNote = args(a)?;
            confirmed(d.confirm)?;
            app.notes.delete_note(t, &NoteId::parse(&d.id)?).await?;
            deleted(d.id)
        }
        "list_attributes" => {
            let l: LeadRef = args(a)?;
            let id = LeadId::parse(&l.lead_id)?;
            json(AttributesResponse {
                attributes: app.attributes.list_attributes(t, &id).await?,
            })
        }
        "create_attribute" => {
            let c: CreateAttribute = args(a)?;
            let id = LeadId::parse(&c.lead_id)?;
            let spec = AttributeSpec::new(&c.attribute.name, &c.attribute.ty, c.attribute.value)?;
            json(app.attributes.upsert_attribute(t, &id, spec).await?.0)
        }
        "update_attribute" => {
            let u: UpdateAttribute = args(a)?;
            let id = LeadId::parse(&u.lead_id)?;
            let attr_id = AttributeId::parse(&u.id)?;
            json(
                app.attributes
                    .set_attribute_value(t, &id, &attr_id, u.value)
                    .await?,
            )
        }
        "delete_attribute" => {
            let d: DeleteAttribute = args(a)?;
            confirmed(d.confirm)?;
            let id = LeadId::parse(&d.lead_id)?;
            app.attributes
                .delete_attribute(t, &id, &AttributeId::parse(&d.id)?)
                .await?;
            deleted(d.id)
        }
        "list_scoring_rules" => {
            let _: NoArgs = args(a)?;
            json(RulesResponse {
                rules: app.scoring.list_rules(t).await?,
            })
        }
        "create_scoring_rule" => {
            let c: CreateRule = args(a)?;
            let (rule, job) = app.scoring.create_rule(t, c.rule.into_changes()?).await?;
            json(RuleResponse {
                rule,
                job_id: job.map(|j| j.id),
            })
        }
        "get_scoring_rule" => {
            let r: GetRule = args(a)?;
            json(app.scoring.get_rule(t, &RuleId::parse(&r.id)?).await?)
        }
        "update_scoring_rule" => {
            let u: UpdateRule = args(a)?;
            let id = RuleId::parse(&u.id)?;
            let (rule, job) = app
                .scoring
                .update_rule(t, &id, u.rule.into_changes()?)
                .await?;
            json(RuleResponse {
                rule,
                job_id: job.map(|j| j.id),
            })
        }
        "delete_scoring_rule" => {
            let d: DeleteRule = args(a)?;
            confirmed(d.confirm)?;
            app.scoring.delete_rule(t, &RuleId::parse(&d.id)?).await?;
            deleted(d.id)
        }
        "update_lead_score" => {
            let l: GetLead = args(a)?;
            let id = LeadId::parse(&l.id)?;
            let score = app.scoring.rescore_one(t, &id).await?;
            json(ScoreResponse {
                id: id.to_string(),
                score,
            })
        }
        "update_all_scores" => {
            let _: NoArgs = args(a)?;
            json(RescoreResponse::from_job(app.scoring.rescore_all(t).await?))
        }
        "list_webhooks" => {
            let _: NoArgs = args(a)?;
            json(WebhooksResponse {
                webhooks: app
                    .webhooks
                    .list(t)
                    .await?
                    .into_iter()
                    .map(WebhookResponse::from)
                    .collect(),
            })
        }
        "create_webhook" => {
            let c: CreateWebhook = args(a)?;
            let hook = app.webhooks.create(t, c.webhook.into_changes()?).await?;
            json(WebhookResponse::from(hook))
        }
        "delete_webhook" => {
            let d: DeleteWebhook = args(a)?;
            confirmed(d.confirm)?;
            app.webhooks.delete(t, &WebhookId::parse(&d.id)?).await?;
            deleted(d.id)
        }
        "list_api_keys" => {
            let _: NoArgs = args(a)?;
            let keys = app.accounts.list_keys(&t.account_id).await?;
            json(ApiKeysResponse {
                api_keys: keys.into_iter().map(ApiKeyResponse::from).collect(),
            })
        }
        "create_api_key" => {
            let c: CreateApiKey = args(a)?;
            let name = c.name.trim().to_string();
            if name.is_empty() {
                return Err(Error::invalid("name: must not be empty").into());
            }
            let key = app
                .accounts
                .create_scoped_key(&t.account_id, Some(name), c.scope.unwrap_or_default())
                .await?;
            let r = key.record;
            json(CreatedApiKeyResponse {
                id: r.id,
                name: r.name,
                scope: r.scope,
                key: key.raw,
                prefix: r.prefix,
                created_at: r.created_at,
            })
        }
        "delete_api_key" => {
            let d: DeleteApiKey = args(a)?;
            confirmed(d.confirm)?;
            app.accounts.revoke_key(&t.account_id, &d.id).await?;
            deleted(d.id)
        }
        "get_stats" => {
            let _: NoArgs = args(a)?;
            json(StatsResponse::from(app.analytics.stats(t).await?))
        }
        "list_categories" => {
            let _: NoArgs = args(a)?;
            let c = app.analytics.categories(t).await?;
            json(CategoriesResponse {
                categories: c.into_iter().map(NameCountResponse::from).collect(),
            })
        }
        "list_cities" => {
            let _: NoArgs = args(a)?;
            let c = app.analytics.cities(t).await?;
            json(CitiesResponse {
                cities: c.into_iter().map(NameCountResponse::from).collect(),
            })
        }
        other => Err(ToolError::Failed(Error::invalid(format!(
            "unknown tool '{other}'"
        )))),
    }
}
