//! The GraphQL schema of the auth subgraph (no HTTP here).
//!
//! - [`query`]: the `User` entity resolver (`_entities`).
//! - [`mutation`]: every auth mutation of the contract.
//! - [`types`]: `User`, `Session`, `AuthPayload`, inputs and enums.
//! - [`guard`]: `@authenticated` / `@requiresScopes` enforced in the subgraph.
//! - [`sdl`]: the SDL with those directives, for `_service` and composition.

pub mod guard;
pub mod mutation;
pub mod query;
pub mod sdl;
pub mod types;

use async_graphql::{EmptySubscription, Schema};

use crate::service::AuthService;

pub type AuthSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Deepest selection accepted; the contract's deepest useful query is far shallower.
const MAX_DEPTH: usize = 12;
/// Complexity budget per operation.
const MAX_COMPLEXITY: usize = 500;

fn builder() -> async_graphql::SchemaBuilder<query::Query, mutation::Mutation, EmptySubscription> {
    Schema::build(query::Query, mutation::Mutation, EmptySubscription)
        .enable_federation()
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
}

/// The schema, serving requests through `service`; `_service { sdl }`
/// answers [`schema_sdl`].
pub fn build(service: AuthService) -> AuthSchema {
    builder().extension(gatehouse_subgraph::sdl::ServiceSdl::new(schema_sdl())).data(service).finish()
}

/// The subgraph SDL with its authorization directives, for the composition script.
pub fn schema_sdl() -> String {
    sdl::annotate_sdl(&builder().finish().sdl_with_options(gatehouse_subgraph::sdl::export_options()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sdl_carries_the_contract_and_its_directives() {
        let sdl = super::schema_sdl();
        println!("{sdl}");
        for expected in [
            "type User @key(fields: \"id\")",
            "logoutAll: Int! @authenticated",
            "revokeSession(id: ID!): Boolean! @authenticated",
            "deleteAccount(password: String!): Boolean! @authenticated",
            "@requiresScopes(scopes: [[\"admin\"]])",
            "\"@authenticated\"",
            "refreshTokenIn: TokenTransport = COOKIE",
            "sessions: [Session!]! @authenticated",
        ] {
            assert!(sdl.contains(expected), "missing {expected:?} in\n{sdl}");
        }
    }
}
