//! Every integration test, in one test binary (`cargo test --test it`), so that the shared
//! harness in tests/support compiles and links once rather than once per file. Each module
//! is one former tests/<name>.rs; pick one with a filter: `cargo test --test it gateway_fuzz::`.
//! The harness stays in tests/support (tests/support/make-uv-mirror.sh is run from there).

#[path = "../support/mod.rs"]
mod support;

mod caps;
mod client;
mod client_faults;
mod client_more;
mod content;
mod daemon_cli;
mod docs;
mod era_matrix;
mod gateway;
mod gateway_faults;
mod gateway_fuzz;
mod gateway_http;
mod gateway_limits;
mod gateway_policy;
mod image_recipe;
mod modern_client;
mod modern_client_conformance;
mod modern_gateway;
mod network;
mod peers_client;
mod peers_gateway;
mod runtime;
mod runtime_daemon;
mod runtime_node;
mod scale_out;
mod security;
mod serve_stdio;
