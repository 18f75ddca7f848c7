//! The MCP edge: the Klozeo tools over the Model Context Protocol, served with the official
//! Rust SDK (rmcp) over streamable HTTP (stateless, JSON answers: any instance answers any
//! request) at `/mcp`, and over stdio by `klozeo mcp`.
//!
//! - [`catalog`]: names, descriptions, schemas and annotations of the tools.
//! - [`args`], [`list`]: the tool arguments, over the shared wire types.
//! - [`call`]: each tool as a translation to the service call REST makes.
//! - [`reply`]: outcomes as tool results (the one place errors become MCP error codes).
//! - [`server`]: the MCP handler: who is calling, rate limits, idempotency keys.
//! - [`http`]: the `/mcp` endpoint with its authentication; [`stdio`]: `klozeo mcp`.

pub mod args;
pub mod call;
pub mod catalog;
pub mod http;
pub mod list;
pub mod reply;
pub mod server;
pub mod stdio;
