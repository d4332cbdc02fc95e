//! The users subgraph: the business side's user records and profiles.
//!
//! - [`config`]: [`UsersConfig`], the users service's settings.
//! - [`startup`]: [`Application`], which binds, migrates, serves and consumes.
//! - [`http`]: `/graphql` (with the forwarded identity verified), `/ready`, `/health`, `/metrics`.
//! - [`schema`]: [`UsersSchema`] — types, resolvers, guards, the SDL with its directives.
//! - [`projection`]: the JetStream consumer applying account events to the users table.
//! - [`store`]: the SQL behind the resolvers.
//! - [`domain`]: profile values parsed at the edge (display name, bio, avatar URL).
//! - [`error`]: API errors and their `extensions.code`.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod live;
pub mod projection;
pub mod schema;
pub mod startup;
pub mod store;

pub use config::UsersConfig;
pub use schema::{build_schema, schema_sdl, UsersSchema};
pub use startup::{connect_database, migrate, Application};
