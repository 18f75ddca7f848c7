//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of every route, generated from the
//! same typed request and response structs the handlers use (their `JsonSchema` derives), so
//! the description cannot drift from the wire.

use std::sync::OnceLock;

use axum::Json;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::domain::lead::Lead;
use crate::domain::note::Note;
use crate::domain::rule::ScoringRule;
use crate::edges::http::error::ErrorBody;
use crate::edges::wire::*;
use crate::services::scoring::ScoreExplanation;

/// One operation of the description.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    body: Option<Value>,
    status: u16,
    response: Option<Value>,
    public: bool,
    query: Vec<Value>,
}

/// Request bodies are described as the server reads them (inline), responses as it writes
/// them (shared components).
struct Gen {
    responses: SchemaGenerator,
    requests: SchemaGenerator,
}

impl Gen {
    fn out<T: JsonSchema>(&mut self) -> Option<Value> {
        Some(self.responses.subschema_for::<T>().to_value())
    }
    fn input<T: JsonSchema>(&mut self) -> Option<Value> {
        Some(self.requests.subschema_for::<T>().to_value())
    }
}

fn op(method: &'static str, path: &'static str, id: &'static str, summary: &'static str) -> Op {
    Op {
        method,
        path,
        id,
        summary,
        tag: "",
        body: None,
        status: 200,
        response: None,
        public: false,
        query: Vec::new(),
    }
}

impl Op {
    fn tag(mut self, t: &'static str) -> Self {
        self.tag = t;
        self
    }
    fn body(mut self, b: Option<Value>) -> Self {
        self.body = b;
        self
    }
    fn ok(mut self, status: u16, r: Option<Value>) -> Self {
        self.status = status;
        self.response = r;
        self
    }
    fn public(mut self) -> Self {
        self.public = true;
        self
    }
    fn query(mut self, q: Vec<Value>) -> Self {
        self.query = q;
        self
    }
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema,
           "description": description})
}

fn operations(g: &mut Gen) -> Vec<Op> {
    let list_query = vec![
        json!({"name": "filter", "in": "query", "required": false, "style": "form",
               "explode": true, "schema": {"type": "array", "items": {"type": "string"}},
               "description": "Repeatable: logic.operator.field.value"}),
        query_param("sort_by", json!({"type": "string"}), "Field to sort by"),
        query_param(
            "sort_order",
            json!({"type": "string", "enum": ["ASC", "DESC", "asc", "desc"]}),
            "Sort direction",
        ),
        query_param(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            "Page size",
        ),
        query_param(
            "cursor",
            json!({"type": "string"}),
            "Opaque token from next_cursor",
        ),
    ];
    vec![
        op("post", "/register", "register", "Create an account")
            .tag("account")
            .public()
            .body(g.input::<Credentials>())
            .ok(201, g.out::<RegisterResponse>()),
        op("post", "/login", "login", "Open a session")
            .tag("account")
            .public()
            .body(g.input::<Credentials>())
            .ok(200, g.out::<LoginResponse>()),
        op(
            "get",
            "/account",
            "get_account",
            "The account, its limits and usage",
        )
        .tag("account")
        .ok(200, g.out::<AccountResponse>()),
        op("get", "/api-keys", "list_api_keys", "List API keys")
            .tag("account")
            .ok(200, g.out::<ApiKeysResponse>()),
        op("post", "/api-keys", "create_api_key", "Create an API key")
            .tag("account")
            .body(g.input::<ApiKeyInput>())
            .ok(201, g.out::<CreatedApiKeyResponse>()),
        op(
            "delete",
            "/api-keys/{id}",
            "delete_api_key",
            "Revoke an API key",
        )
        .tag("account")
        .ok(204, None),
        op("get", "/stats", "get_stats", "Account statistics")
            .tag("analytics")
            .ok(200, g.out::<StatsResponse>()),
        op(
            "get",
            "/categories",
            "list_categories",
            "Distinct categories",
        )
        .tag("analytics")
        .ok(200, g.out::<CategoriesResponse>()),
        op("get", "/cities", "list_cities", "Distinct cities")
            .tag("analytics")
            .ok(200, g.out::<CitiesResponse>()),
        op("get", "/leads", "list_leads", "List leads")
            .tag("leads")
            .query(list_query.clone())
            .ok(200, g.out::<ListResponse<Lead>>()),
        // The file itself (csv, json or xlsx), or with `delivery=url` a JSON link to it.
        op(
            "get",
            "/leads/export",
            "export_leads",
            "Export leads as a file",
        )
        .tag("leads")
        .query(
            list_query
                .into_iter()
                .filter(|p| p["name"] != "limit" && p["name"] != "cursor")
                .chain([
                    json!({"name": "format", "in": "query", "required": true,
                               "schema": {"type": "string", "enum": ["csv", "json", "xlsx"]}}),
                    query_param(
                        "delivery",
                        json!({"type": "string", "enum": ["inline", "url"]}),
                        "inline (default) or a link to the file",
                    ),
                ])
                .collect(),
        )
        .ok(200, None),
        op(
            "post",
            "/leads",
            "create_lead",
            "Create a lead (deduplicated)",
        )
        .tag("leads")
        .body(g.input::<LeadInput>())
        .ok(201, g.out::<CreateResponse>()),
        op("get", "/leads/{id}", "get_lead", "Get a lead")
            .tag("leads")
            .ok(200, g.out::<Lead>()),
        op(
            "put",
            "/leads/{id}",
            "replace_lead",
            "Update a lead (partial)",
        )
        .tag("leads")
        .body(g.input::<LeadInput>())
        .ok(200, g.out::<Lead>()),
        op(
            "patch",
            "/leads/{id}",
            "update_lead",
            "Update a lead (partial)",
        )
        .tag("leads")
        .body(g.input::<LeadInput>())
        .ok(200, g.out::<Lead>()),
        op("delete", "/leads/{id}", "delete_lead", "Delete a lead")
            .tag("leads")
            .ok(204, None),
        op(
            "post",
            "/leads/batch",
            "batch_create_leads",
            "Create leads in a batch",
        )
        .tag("leads")
        .body(g.input::<BatchCreateInput>())
        .ok(201, g.out::<BatchCreateResponse>()),
        op(
            "put",
            "/leads/batch",
            "batch_update_leads",
            "Update leads in a batch",
        )
        .tag("leads")
        .body(g.input::<BatchUpdateInput>())
        .ok(200, g.out::<BatchResult>()),
        op(
            "delete",
            "/leads/batch",
            "batch_delete_leads",
            "Delete leads in a batch",
        )
        .tag("leads")
        .body(g.input::<BatchDeleteInput>())
        .ok(200, g.out::<BatchResult>()),
        op(
            "get",
            "/leads/{id}/notes",
            "list_notes",
            "List a lead's notes",
        )
        .tag("notes")
        .ok(200, g.out::<NotesResponse>()),
        op("post", "/leads/{id}/notes", "create_note", "Add a note")
            .tag("notes")
            .body(g.input::<NoteInput>())
            .ok(201, g.out::<Note>()),
        op("put", "/notes/{note_id}", "update_note", "Edit a note")
            .tag("notes")
            .body(g.input::<NoteInput>())
            .ok(200, g.out::<Note>()),
        op("delete", "/notes/{note_id}", "delete_note", "Delete a note")
            .tag("notes")
            .ok(204, None),
        op(
            "get",
            "/leads/{id}/attributes",
            "list_attributes",
            "List attributes",
        )
        .tag("attributes")
        .ok(200, g.out::<AttributesResponse>()),
        op(
            "post",
            "/leads/{id}/attributes",
            "create_attribute",
            "Add or set an attribute",
        )
        .tag("attributes")
        .body(g.input::<AttributeInput>())
        .ok(201, g.out::<crate::domain::lead::Attribute>()),
        op(
            "put",
            "/leads/{id}/attributes/{attr_id}",
            "update_attribute",
            "Update an attribute",
        )
        .tag("attributes")
        .body(g.input::<AttributeInput>())
        .ok(200, g.out::<crate::domain::lead::Attribute>()),
        op(
            "delete",
            "/leads/{id}/attributes/{attr_id}",
            "delete_attribute",
            "Remove an attribute",
        )
        .tag("attributes")
        .ok(204, None),
        op(
            "get",
            "/scoring-rules",
            "list_scoring_rules",
            "List scoring rules",
        )
        .tag("scoring")
        .ok(200, g.out::<RulesResponse>()),
        op(
            "post",
            "/scoring-rules",
            "create_scoring_rule",
            "Create a rule",
        )
        .tag("scoring")
        .body(g.input::<RuleInput>())
        .ok(201, g.out::<RuleResponse>()),
        op(
            "get",
            "/scoring-rules/{id}",
            "get_scoring_rule",
            "Get a rule",
        )
        .tag("scoring")
        .ok(200, g.out::<ScoringRule>()),
        op(
            "put",
            "/scoring-rules/{id}",
            "update_scoring_rule",
            "Update a rule",
        )
        .tag("scoring")
        .body(g.input::<RuleInput>())
        .ok(200, g.out::<RuleResponse>()),
        op(
            "delete",
            "/scoring-rules/{id}",
            "delete_scoring_rule",
            "Delete a rule",
        )
        .tag("scoring")
        .ok(204, None),
        op(
            "post",
            "/leads/{id}/score",
            "update_lead_score",
            "Rescore one lead",
        )
        .tag("scoring")
        .ok(200, g.out::<ScoreResponse>()),
        op(
            "post",
            "/leads/score/batch",
            "update_all_scores",
            "Rescore every lead",
        )
        .tag("scoring")
        .ok(200, g.out::<RescoreResponse>()),
        op(
            "get",
            "/leads/{id}/score/explain",
            "explain_score",
            "A score, rule by rule",
        )
        .tag("scoring")
        .ok(200, g.out::<ScoreExplanation>()),
        op("get", "/jobs/{id}", "get_job", "A background job")
            .tag("scoring")
            .ok(200, g.out::<JobResponse>()),
        op("get", "/webhooks", "list_webhooks", "List webhooks")
            .tag("webhooks")
            .ok(200, g.out::<WebhooksResponse>()),
        op("post", "/webhooks", "create_webhook", "Subscribe a webhook")
            .tag("webhooks")
            .body(g.input::<WebhookInput>())
            .ok(201, g.out::<WebhookResponse>()),
        op("get", "/webhooks/{id}", "get_webhook", "Get a webhook")
            .tag("webhooks")
            .ok(200, g.out::<WebhookResponse>()),
        op(
            "put",
            "/webhooks/{id}",
            "replace_webhook",
            "Update a webhook",
        )
        .tag("webhooks")
        .body(g.input::<WebhookInput>())
        .ok(200, g.out::<WebhookResponse>()),
        op(
            "patch",
            "/webhooks/{id}",
            "update_webhook",
            "Update a webhook",
        )
        .tag("webhooks")
        .body(g.input::<WebhookInput>())
        .ok(200, g.out::<WebhookResponse>()),
        op(
            "delete",
            "/webhooks/{id}",
            "delete_webhook",
            "Delete a webhook",
        )
        .tag("webhooks")
        .ok(204, None),
        op(
            "get",
            "/webhooks/{id}/deliveries",
            "list_deliveries",
            "The delivery log",
        )
        .tag("webhooks")
        .ok(200, g.out::<DeliveriesResponse>()),
        op(
            "post",
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            "retry_delivery",
            "Send a delivery again",
        )
        .tag("webhooks")
        .ok(200, g.out::<DeliveryResponse>()),
        op(
            "post",
            "/webhooks/{id}/test",
            "test_webhook",
            "Send a ping event",
        )
        .tag("webhooks")
        .ok(200, g.out::<DeliveryResponse>()),
        op("get", "/openapi.json", "get_openapi", "This description")
            .tag("meta")
            .public()
            .ok(200, Some(json!({"type": "object"}))),
    ]
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// Builds the description.
pub fn document() -> Value {
    let mut g = Gen {
        responses: SchemaSettings::draft2020_12()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
                s.contract = Contract::Serialize;
            })
            .into_generator(),
        requests: SchemaSettings::draft2020_12()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
                s.contract = Contract::Deserialize;
            })
            .into_generator(),
    };
    let error = g.out::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for o in operations(&mut g) {
        let mut params = path_params(o.path);
        params.extend(o.query);
        let mut responses = Map::new();
        let ok = match &o.response {
            Some(schema) => json!({"description": "Success",
                                   "content": {"application/json": {"schema": schema}}}),
            None => json!({"description": "Success, no content"}),
        };
        responses.insert(o.status.to_string(), ok);
        if o.path == "/leads" && o.method == "post" {
            // A merge answers 200 with the same body.
            responses.insert(
                "200".into(),
                json!({"description": "Merged into a duplicate",
                       "content": {"application/json": {"schema": o.response}}}),
            );
        }
        if o.path == "/leads/batch" && o.method == "post" {
            responses.insert(
                "207".into(),
                json!({"description": "Some items failed",
                       "content": {"application/json": {"schema": o.response}}}),
            );
        }
        if o.path == "/leads/export" {
            // The file in the asked format, or with `delivery=url` the JSON link to it.
            let link = g.out::<ExportLinkResponse>();
            responses.insert(
                "200".into(),
                json!({"description": "The file, or a link to it (delivery=url)",
                       "content": {
                           "text/csv": {"schema": {"type": "string"}},
                           "application/json": {"schema": {"oneOf": [
                               {"type": "array", "items": {"type": "object"}}, link]}},
                           "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                               {"schema": {"type": "string", "format": "binary"}}}}),
            );
        }
        if o.path == "/leads/{id}/attributes" && o.method == "post" {
            responses.insert(
                "200".into(),
                json!({"description": "An attribute with this name was updated",
                       "content": {"application/json": {"schema": o.response}}}),
            );
        }
        responses.insert(
            "default".into(),
            json!({"description": "An error in the flat shape",
                   "content": {"application/json": {"schema": error}}}),
        );
        let mut operation = json!({
            "operationId": o.id,
            "summary": o.summary,
            "tags": [o.tag],
            "parameters": params,
            "responses": responses,
        });
        if let Some(body) = o.body {
            operation["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": body}}});
        }
        if o.public {
            operation["security"] = json!([]);
        }
        let entry = paths
            .entry(format!("{}{}", super::API_PREFIX, o.path))
            .or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Klozeo-compatible lead database",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Klozeo REST API with accounts, scoped API keys and analytics.",
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": paths,
        "components": {
            "schemas": g.responses.take_definitions(true),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key, or on the account routes a session token from /login"},
            },
        },
    })
}

/// `GET /openapi.json` (no key needed), built once per process.
pub async fn serve() -> Response {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(document).clone()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_resolves_and_the_security_schemes_are_named() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "unresolved $ref {name}");
        }
        assert!(
            !text.contains("\"#/$defs"),
            "every definition is a component"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["ApiKey"]["name"],
            "X-API-Key"
        );
        assert_eq!(
            doc["paths"]["/api/v1/register"]["post"]["security"],
            json!([])
        );
        assert!(doc["paths"]["/api/v1/leads/{id}"]["patch"]["requestBody"].is_object());
    }
}
