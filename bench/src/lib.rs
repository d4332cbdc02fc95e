//! Gatehouse's benchmark: our gateway side by side with its peers on the
//! public graphql-gateways-benchmark workload, and the system's own numbers.
//!
//! - `data`: the benchmark's reference users, products and reviews.
//! - `subgraphs`: the four benchmark subgraphs (executor, resolvers, server).
//! - `expected`: the `TestQuery` and its expected response, built from `data`.
//! - `compare`: parsed-JSON equality with the first difference named.
//! - `stats`: medians and other small sums over repeated runs.
//! - `load`: drives `wrk` and reads its results.
//! - `closed_loop`: a Rust load loop with per-connection state and checked answers.
//! - `procstat`: a gateway's CPU time and peak memory, from `/proc`.
//! - `gateways`: the gateways under test, how to install, start and configure them.
//! - `http`: the runner's few HTTP calls outside the load (checks, counters).
//! - `report`: the markdown table and `BENCHMARKS.md`.
//! - `runner`: the whole run, gateway by gateway and variant by variant.
//! - `system`: the system's own numbers, on `gatehouse dev`.
//! - `subscriptions`: many subscribers over graphql-ws and SSE, one event
//!   fanned out to all: latency, memory per idle subscription, CPU.

pub mod closed_loop;
pub mod compare;
pub mod data;
pub mod expected;
pub mod gateways;
pub mod http;
pub mod load;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod stats;
pub mod subgraphs;
pub mod subscriptions;
pub mod system;
