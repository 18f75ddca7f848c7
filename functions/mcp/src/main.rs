//! The `mcp` Lambda function: the MCP endpoint (`/mcp`, streamable HTTP, stateless) behind a
//! Function URL. Wiring only.

use klozeo_core::edges::http::Routes;

#[tokio::main]
async fn main() -> Result<(), klozeo_core::edges::lambda::LambdaError> {
    klozeo_core::edges::lambda::run_http(Routes::Mcp).await
}
