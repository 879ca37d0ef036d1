//! Carriers of JSON-RPC to MCP servers: child processes (stdio) and Streamable HTTP.
pub mod http;
pub mod stdio;
