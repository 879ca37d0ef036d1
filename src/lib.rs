//! mcpctl as a library: the binary (`main.rs`) and the integration tests call in here.

pub mod error;
pub mod runtime;
