//! Protocol edges: the HTTP router shared by the Lambda functions and `klozeo serve`, the wire
//! types shared by REST and MCP, and the Lambda runtime glue.

pub mod http;
pub mod import;
pub mod lambda;
pub mod mcp;
pub mod wire;
pub mod worker;
