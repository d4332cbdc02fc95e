//! What every Gatehouse subgraph shares, so the two subgraphs (and any
//! subgraph written on the same stack) describe the same things the same way.
//!
//! - [`DateTime`]: the `DateTime` scalar, RFC 3339 with its specification URL.
//! - [`sdl`]: the SDL export options, and `_service { sdl }` answered with it.

mod scalars;
pub mod sdl;

pub use scalars::DateTime;
