//! The benchmark's four subgraphs (accounts, inventory, products, reviews),
//! written for speed: a hand-rolled executor over constant data.
//!
//! - `resolve`: what each subgraph knows (root fields, entities, fields).
//! - `exec`: walks a parsed operation and writes JSON into a buffer.
//! - `server`: hyper listeners, one per subgraph, and request counters.

pub mod exec;
pub mod resolve;
pub mod server;

pub use resolve::{Node, Subgraph};
pub use server::{CounterSnapshot, State};
