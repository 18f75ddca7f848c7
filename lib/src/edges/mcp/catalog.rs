//! The tool catalogue: names, descriptions, input and output JSON Schemas (generated from the
//! argument structs and the shared wire types) and annotations. Built once per process.

use std::sync::{Arc, OnceLock};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;

use crate::domain::lead::{Attribute, Lead};
use crate::domain::note::Note;
use crate::domain::rule::ScoringRule;
use crate::edges::mcp::args::*;
use crate::edges::mcp::list::{ListLeads, ListLeadsOutput};
use crate::edges::wire::{
    ApiKeysResponse, AttributesResponse, BatchCreateResponse, BatchResult, CategoriesResponse,
    CitiesResponse, CreateResponse, CreatedApiKeyResponse, NotesResponse, RescoreResponse,
    RuleResponse, RulesResponse, ScoreResponse, StatsResponse, WebhookResponse, WebhooksResponse,
};

/// Longest tool description.
pub const MAX_DESCRIPTION: usize = 80;
/// Longest parameter description.
pub const MAX_PARAM_DESCRIPTION: usize = 40;

/// The success envelope `{"data": ...}` of every tool.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Data<T> {
    /// The result.
    pub data: T,
}

/// What calling a tool does, for its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Reads only.
    Read,
    /// Adds without overwriting; calling twice adds twice.
    Add,
    /// Overwrites or removes stored values; `idempotent` when repeating changes nothing more.
    Change { idempotent: bool },
}

fn generator() -> schemars::SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn object_of<T: JsonSchema>() -> JsonObject {
    let schema = generator().into_root_schema_for::<T>();
    let mut map = match serde_json::to_value(schema) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => JsonObject::new(),
    };
    map.remove("$schema");
    map.remove("title");
    map.remove("description");
    map
}

/// Removes, at every depth, the keys `drop` says to: what a client gains nothing from, so the
/// manifest stays small (every byte of it sits in the agent's context).
fn prune(v: &mut serde_json::Value, drop: &dyn Fn(&str, &serde_json::Value) -> bool) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, x| !drop(k, x));
            for x in m.values_mut() {
                prune(x, drop);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                prune(x, drop);
            }
        }
        _ => {}
    }
}

/// An output schema: structure only. Field descriptions are dropped (they would double the
/// manifest; the wire field names say what they hold, and the REST docs say the rest).
fn output<O: JsonSchema>() -> JsonObject {
    let mut v = serde_json::Value::Object(object_of::<Data<O>>());
    prune(&mut v, &|k, x| k == "description" && x.is_string());
    match v {
        serde_json::Value::Object(m) => m,
        _ => JsonObject::new(),
    }
}

/// Removes `required` from the schema of a lead, so a projected lead (`fields`) validates.
fn leads_all_optional(mut schema: JsonObject) -> JsonObject {
    if let Some(serde_json::Value::Object(defs)) = schema.get_mut("$defs")
        && let Some(serde_json::Value::Object(lead)) = defs.get_mut("Lead")
    {
        lead.remove("required");
    }
    schema
}

fn input<A: JsonSchema>() -> JsonObject {
    let mut v = serde_json::Value::Object(object_of::<A>());
    // `"default": null` only restates that an optional parameter may be left out.
    prune(&mut v, &|k, x| k == "default" && x.is_null());
    let mut s = match v {
        serde_json::Value::Object(m) => m,
        _ => JsonObject::new(),
    };
    s.entry("properties")
        .or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
    s.insert(
        "additionalProperties".into(),
        serde_json::Value::Bool(false),
    );
    s
}

struct Def {
    name: &'static str,
    description: &'static str,
    input: JsonObject,
    output: JsonObject,
    effect: Effect,
}

fn def<A: JsonSchema, O: JsonSchema>(
    name: &'static str,
    description: &'static str,
    effect: Effect,
) -> Def {
    Def {
        name,
        description,
        input: input::<A>(),
        output: output::<O>(),
        effect,
    }
}

fn defs() -> Vec<Def> {
    use Effect::*;
    let change = Change { idempotent: true };
    let once = Change { idempotent: false };
    let mut list_leads = def::<ListLeads, ListLeadsOutput>(
        "list_leads",
        "List leads: filters, text query, sort, pages; format gives a file link",
        Read,
    );
    list_leads.output = leads_all_optional(list_leads.output);
    vec![
        list_leads,
        def::<GetLead, Lead>("get_lead", "Get a lead by ID", Read),
        // A duplicate is merged into the existing lead (Last Touch Wins), overwriting values.
        def::<CreateLead, CreateResponse>(
            "create_lead",
            "Create a lead; duplicates are detected and merged automatically",
            once,
        ),
        def::<UpdateLead, Lead>(
            "update_lead",
            "Update a lead's fields; omitted fields stay, null clears",
            change,
        ),
        def::<DeleteLead, Deleted>(
            "delete_lead",
            "Delete a lead and its notes; requires confirm: true",
            change,
        ),
        def::<CreateLeadTag, Lead>(
            "create_lead_tag",
            "Add a tag to a lead (idempotent)",
            Change { idempotent: true },
        ),
        def::<BatchCreate, BatchCreateResponse>(
            "batch_create_leads",
            "Create up to 100 leads (500 on Pro) in one call, deduplicated per item",
            once,
        ),
        def::<BatchUpdate, BatchResult>(
            "batch_update_leads",
            "Apply the same field update to multiple leads",
            change,
        ),
        def::<BatchDelete, BatchResult>(
            "batch_delete_leads",
            "Delete multiple leads; requires confirm: true",
            change,
        ),
        def::<CreateNote, Note>("create_note", "Add a timestamped note to a lead", Add),
        def::<LeadRef, NotesResponse>("list_notes", "List a lead's notes, newest first", Read),
        def::<UpdateNote, Note>("update_note", "Edit the content of a note", change),
        def::<DeleteNote, Deleted>(
            "delete_note",
            "Delete a note; requires confirm: true",
            change,
        ),
        def::<LeadRef, AttributesResponse>(
            "list_attributes",
            "List a lead's custom attributes",
            Read,
        ),
        // An attribute with the same name is replaced, so this may overwrite a value.
        def::<CreateAttribute, Attribute>(
            "create_attribute",
            "Add or replace a custom attribute (text, number, bool, list, object)",
            change,
        ),
        def::<UpdateAttribute, Attribute>(
            "update_attribute",
            "Update the value of a custom attribute",
            change,
        ),
        def::<DeleteAttribute, Deleted>(
            "delete_attribute",
            "Remove a custom attribute; requires confirm: true",
            change,
        ),
        def::<NoArgs, RulesResponse>(
            "list_scoring_rules",
            "List scoring rules, highest priority first",
            Read,
        ),
        // Adding a rule rescores every lead: stored scores change.
        def::<CreateRule, RuleResponse>(
            "create_scoring_rule",
            "Create a scoring rule from an expression; rescores all leads",
            once,
        ),
        def::<GetRule, ScoringRule>("get_scoring_rule", "Get a scoring rule by ID", Read),
        def::<UpdateRule, RuleResponse>(
            "update_scoring_rule",
            "Update a scoring rule's name, expression, weight or priority",
            change,
        ),
        def::<DeleteRule, Deleted>(
            "delete_scoring_rule",
            "Delete a scoring rule; requires confirm: true",
            change,
        ),
        def::<GetLead, ScoreResponse>(
            "update_lead_score",
            "Recalculate and save the score of one lead",
            change,
        ),
        def::<NoArgs, RescoreResponse>(
            "update_all_scores",
            "Recalculate and save the scores of all leads",
            change,
        ),
        def::<NoArgs, WebhooksResponse>("list_webhooks", "List webhook subscriptions", Read),
        def::<CreateWebhook, WebhookResponse>(
            "create_webhook",
            "Create a webhook subscription",
            Add,
        ),
        def::<DeleteWebhook, Deleted>(
            "delete_webhook",
            "Delete a webhook subscription; requires confirm: true",
            change,
        ),
        def::<NoArgs, ApiKeysResponse>(
            "list_api_keys",
            "List the account's API keys (ids and prefixes, never the keys)",
            Read,
        ),
        def::<CreateApiKey, CreatedApiKeyResponse>(
            "create_api_key",
            "Create an API key with a scope; the key is shown only once",
            Add,
        ),
        def::<DeleteApiKey, Deleted>(
            "delete_api_key",
            "Revoke an API key; requires confirm: true",
            change,
        ),
        def::<NoArgs, StatsResponse>(
            "get_stats",
            "Lead totals by status and source, score bands, recent creations",
            Read,
        ),
        def::<NoArgs, CategoriesResponse>(
            "list_categories",
            "Lead categories with their counts, most common first",
            Read,
        ),
        def::<NoArgs, CitiesResponse>(
            "list_cities",
            "Lead cities with their counts, most common first",
            Read,
        ),
    ]
}

/// What a tool needs its caller's key to allow: managing keys needs an `admin` key, reading
/// tools a `read` one, everything else `write` (the same rule the REST guard applies).
pub fn access_of(name: &str) -> crate::domain::account::Access {
    use crate::domain::account::Access;
    if name.ends_with("_api_key") || name.ends_with("_api_keys") {
        return Access::Manage;
    }
    match tool(name).and_then(|t| t.annotations.as_ref()?.read_only_hint) {
        Some(true) => Access::Read,
        _ => Access::Write,
    }
}

fn annotations(e: Effect) -> ToolAnnotations {
    let a = ToolAnnotations::new().open_world(false);
    match e {
        Effect::Read => a.read_only(true),
        Effect::Add => a.read_only(false).destructive(false).idempotent(false),
        Effect::Change { idempotent } => {
            a.read_only(false).destructive(true).idempotent(idempotent)
        }
    }
}

/// Every tool, in the order `tools/list` answers them.
pub fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        defs()
            .into_iter()
            .map(|d| {
                Tool::new(d.name, d.description, Arc::new(d.input))
                    .with_raw_output_schema(Arc::new(d.output))
                    .with_annotations(annotations(d.effect))
            })
            .collect()
    })
}

/// The tool named `name`.
pub fn tool(name: &str) -> Option<&'static Tool> {
    tools().iter().find(|t| t.name == name)
}

/// The parameter names a tool accepts.
pub fn params(tool: &Tool) -> impl Iterator<Item = &str> {
    tool.input_schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flat_map(|p| p.keys().map(String::as_str))
}
