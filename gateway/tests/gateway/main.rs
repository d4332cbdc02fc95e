//! The gateway end to end, one test binary (the public audit's suites are
//! the other): a module per concern, each against real HTTP subgraphs and a
//! real gateway, sharing the helpers in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

// The audit's data-driven subgraphs; the audit's own case macros go unused here.
#[allow(unused_imports, unused_macros)]
#[path = "../audit/support/mod.rs"]
mod audit_support;

mod abstract_types;
mod batch_fetch;
mod compression;
mod connection_limit;
mod dedupe;
mod entities;
mod fuzz_smoke;
mod headers;
mod hostile_input;
mod http_protocol;
mod interface_object;
mod introspection;
mod mutations;
mod operation_control;
mod outside_providers;
mod partial_unions;
mod plans;
mod projection;
mod reload;
mod security;
mod server_threads;
mod shutdown;
mod subgraph_failures;
mod subgraph_tls;
mod subscriptions;
mod validation;
mod variables;
