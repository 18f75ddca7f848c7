//! The one place where a tool outcome becomes an MCP tool result: `{"data": ...}` on success,
//! `{"error": {"code", "message", "status"}}` with `isError` on failure, each also as text
//! for clients that read only `content`.

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::edges::mcp::call::ToolError;
use crate::error::Error;

/// The code of a delete refused for want of `confirm: true`.
pub const CONFIRMATION_REQUIRED: &str = "CONFIRMATION_REQUIRED";

/// The success envelope.
pub fn success(data: Value) -> Value {
    json!({ "data": data })
}

/// The error envelope and its HTTP-equivalent status.
pub fn failure(e: &ToolError) -> (u16, Value) {
    let (code, message, status) = match e {
        ToolError::ConfirmationRequired => (
            CONFIRMATION_REQUIRED,
            "Set confirm: true to delete.".to_string(),
            400,
        ),
        ToolError::Failed(err) => {
            if let Error::Internal(detail) = err {
                tracing::error!(error = %detail, "internal error in an MCP tool");
            }
            let c = err.code();
            (c.mcp(), err.public_message(), c.http_status())
        }
    };
    (
        status,
        json!({ "error": { "code": code, "message": message, "status": status } }),
    )
}

/// An envelope as a tool result: an error when it carries `error`.
pub fn result(envelope: Value) -> CallToolResult {
    if envelope.get("error").is_some() {
        CallToolResult::structured_error(envelope)
    } else {
        CallToolResult::structured(envelope)
    }
}
