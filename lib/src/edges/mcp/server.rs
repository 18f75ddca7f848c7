//! The MCP handler: resolves the caller, applies the rate limit and idempotency keys, and
//! runs the tool.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::domain::account::Tenant;
use crate::edges::mcp::call::{CallContext, ToolError, dispatch};
use crate::edges::mcp::{catalog, reply};
use crate::error::{Error, Result};
use crate::services::limits::IdemStart;

/// How the handler learns who is calling.
#[derive(Clone)]
pub enum Caller {
    /// Over HTTP: the `/mcp` endpoint authenticated the request and put the [`Tenant`] in
    /// its extensions.
    Http,
    /// Over stdio: the API key given at start-up, authenticated on every call so a revoked
    /// key stops working at once.
    Key(Arc<str>),
}

/// The MCP server of one request (HTTP) or one session (stdio).
#[derive(Clone)]
pub struct McpServer {
    app: Arc<App>,
    caller: Caller,
    link_base: Option<String>,
}

/// The base URL the `/mcp` endpoint found for a request (configured, or the request's own),
/// put in the request's extensions for links in answers.
#[derive(Debug, Clone)]
pub struct LinkBase(pub String);

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// What an idempotency key is bound to: the tool and its arguments (without the key).
fn fingerprint(tool: &str, args: &Value) -> String {
    let mut a = args.clone();
    if let Value::Object(m) = &mut a {
        m.remove("idempotency_key");
    }
    let mut h = Sha256::new();
    h.update(b"mcp\0");
    h.update(tool.as_bytes());
    h.update([0]);
    h.update(canonical(&a).to_string().as_bytes());
    hex::encode(h.finalize())
}

fn unknown_param(tool: &Tool, args: &Value) -> Option<Error> {
    let Value::Object(m) = args else {
        return Some(Error::invalid("arguments must be a JSON object"));
    };
    let known: Vec<&str> = catalog::params(tool).collect();
    let bad = m.keys().find(|k| !known.contains(&k.as_str()))?;
    let hint = match bad.as_str() {
        "sort_by" => " (use sort)".to_string(),
        _ => format!(" (accepted: {})", known.join(", ")),
    };
    Some(Error::invalid(format!("unknown parameter '{bad}'{hint}")))
}

impl McpServer {
    /// A handler over `app` for callers identified by `caller`.
    pub fn new(app: Arc<App>, caller: Caller) -> Self {
        McpServer {
            app,
            caller,
            link_base: None,
        }
    }

    /// Sets the base URL of links in answers when no request carries one (stdio).
    pub fn with_link_base(mut self, base: Option<String>) -> Self {
        self.link_base = base;
        self
    }

    fn call_context(&self, ctx: &RequestContext<RoleServer>) -> CallContext {
        let from_request = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<LinkBase>())
            .map(|b| b.0.clone());
        CallContext {
            link_base: from_request.or_else(|| self.link_base.clone()),
        }
    }

    async fn tenant(&self, ctx: &RequestContext<RoleServer>) -> Result<Tenant> {
        match &self.caller {
            Caller::Key(k) => self.app.accounts.authenticate(k).await,
            Caller::Http => ctx
                .extensions
                .get::<http::request::Parts>()
                .and_then(|p| p.extensions.get::<Tenant>())
                .cloned()
                .ok_or_else(|| Error::Unauthenticated("Missing API key".into())),
        }
    }

    /// Runs one tool call to its envelope (`{"data"}` or `{"error"}`).
    pub async fn run(&self, t: &Tenant, tool: &Tool, args: Value, ctx: &CallContext) -> Value {
        if let Err(e) = self.app.limits.check_rate(t).await {
            return reply::failure(&ToolError::Failed(e)).1;
        }
        if let Some(e) = unknown_param(tool, &args) {
            return reply::failure(&ToolError::Failed(e)).1;
        }
        let key = args
            .get("idempotency_key")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        let Some(key) = key else {
            return self.outcome(t, tool, args, ctx).await.1;
        };
        let fp = fingerprint(&tool.name, &args);
        let ticket = match self.app.limits.idem_begin(&t.account_id, &key, &fp).await {
            Err(e) => return reply::failure(&ToolError::Failed(e)).1,
            Ok(IdemStart::Replay { body, .. }) => {
                return serde_json::from_slice(&body).unwrap_or_else(|e| {
                    reply::failure(&ToolError::Failed(Error::internal(format!(
                        "stored idempotent answer is not JSON: {e}"
                    ))))
                    .1
                });
            }
            Ok(IdemStart::Fresh(ticket)) => ticket,
        };
        let (status, envelope) = self.outcome(t, tool, args, ctx).await;
        let limits = &self.app.limits;
        if status >= 500 {
            // The call may be retried with the same key: release it.
            if let Err(e) = limits.idem_abandon(ticket).await {
                tracing::warn!(error = %e, "could not release an idempotency key");
            }
        } else {
            let body = envelope.to_string();
            if let Err(e) = limits
                .idem_complete(ticket.clone(), status, "application/json", body.as_bytes())
                .await
            {
                tracing::warn!(error = %e, "could not record an idempotent answer; releasing its key");
                if let Err(e) = limits.idem_abandon(ticket).await {
                    tracing::warn!(error = %e, "could not release an idempotency key");
                }
            }
        }
        envelope
    }

    async fn outcome(
        &self,
        t: &Tenant,
        tool: &Tool,
        args: Value,
        ctx: &CallContext,
    ) -> (u16, Value) {
        match dispatch(&self.app, t, &tool.name, args, ctx).await {
            Ok(data) => (200, reply::success(data)),
            Err(e) => reply::failure(&e),
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("klozeo", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Klozeo lead database: list, create, update and score leads. \
                 Delete tools need confirm: true.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalog::tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        catalog::tool(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = catalog::tool(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool '{}'", request.name),
                None,
            ));
        };
        let envelope = match self.tenant(&context).await {
            Err(e) => reply::failure(&ToolError::Failed(e)).1,
            Ok(t) => {
                let args = Value::Object(request.arguments.unwrap_or_default());
                self.run(&t, tool, args, &self.call_context(&context)).await
            }
        };
        let result: CallToolResult = reply::result(envelope);
        Ok(result.into())
    }
}
