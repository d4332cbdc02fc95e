//! Domain types: parsed once at the edge, valid for the rest of their life.
//!
//! Nothing here knows about GraphQL, HTTP or SQL; every constructor is a
//! `parse` that either returns a value that keeps the rule or says which rule
//! it broke, in a message that is safe to show the client.

mod email;
mod password;
mod role;
mod username;

pub use email::Email;
pub use password::{Password, MAX_LEN as PASSWORD_MAX_LEN};
pub use role::Role;
pub use username::Username;

// The profile rules shared with the users subgraph.
pub use gatehouse_common::profile::{DisplayName, InvalidInput};
