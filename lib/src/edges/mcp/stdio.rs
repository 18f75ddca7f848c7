//! MCP over stdio (`klozeo mcp`): one session with the API key given at start-up.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::app::App;
use crate::edges::mcp::server::{Caller, McpServer};
use crate::error::{Error, Result};

/// Serves MCP on stdin/stdout until the client closes the stream. Export links point at
/// `public_url` (a `klozeo serve` on the same data directory) when given, else at the files.
pub async fn serve_stdio(app: Arc<App>, api_key: &str, public_url: Option<String>) -> Result<()> {
    let server = McpServer::new(app, Caller::Key(Arc::from(api_key))).with_link_base(public_url);
    let running = server
        .serve(rmcp::transport::io::stdio())
        .await
        .map_err(|e| Error::internal(format!("MCP stdio handshake failed: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| Error::internal(format!("MCP stdio session failed: {e}")))?;
    Ok(())
}
