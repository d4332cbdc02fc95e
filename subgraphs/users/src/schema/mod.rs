//! The users GraphQL schema. No HTTP here: [`crate::http`] mounts it.
//!
//! - [`types`]: `User` (the profile part of the federated entity), the
//!   connection types and the profile input.
//! - [`query`] / [`mutation`] / [`subscription`]: the resolvers.
//! - [`guards`]: `@authenticated` / `@requiresScopes` enforced in the subgraph too.

pub mod guards;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, Schema, SchemaBuilder, ServerError, ServerResult, ValidationResult, Variables};
use sqlx::PgPool;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

use crate::live::LiveFeed;

/// The users subgraph schema.
pub type UsersSchema = Schema<Query, Mutation, Subscription>;

/// Deepest query accepted; the schema itself is three levels deep.
const MAX_DEPTH: usize = 12;
/// Largest query complexity accepted (fields counted, pages of at most 100).
const MAX_COMPLEXITY: usize = 2_000;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(ErrorCodes)
}

/// The schema, serving from `pool`, its subscriptions from `live`.
/// Resolvers find the caller's
/// [`Identity`](gatehouse_common::identity::Identity) in the request data.
pub fn build_schema(pool: PgPool, live: LiveFeed) -> UsersSchema {
    builder().extension(gatehouse_subgraph::sdl::ServiceSdl::new(schema_sdl())).data(pool).data(live).finish()
}

/// The federation SDL for composition, with the access-control directives.
pub fn schema_sdl() -> String {
    let sdl = builder().finish().sdl_with_options(gatehouse_subgraph::sdl::export_options());
    with_auth_directives(&sdl)
}

/// Makes `@authenticated` the federation directive: async-graphql imports
/// `@requiresScopes` from the federation spec but not `@authenticated`, so the
/// fields are marked with a local directive of that name
/// ([`guards::authenticated`]); here its local definition is dropped and the
/// name is added to the `@link` import, which is how composition recognises it.
pub fn with_auth_directives(sdl: &str) -> String {
    const IMPORT_END: &str = "\"@requiresScopes\"]";
    assert!(sdl.contains(IMPORT_END), "async-graphql's federation @link import changed; update with_auth_directives");
    sdl.lines()
        .filter(|line| {
            let line = line.trim_start();
            !line.starts_with("directive @authenticated") && !line.starts_with("directive @requiresScopes")
        })
        .map(|line| line.replace(IMPORT_END, "\"@requiresScopes\", \"@authenticated\"]"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Gives every error a stable `extensions.code`: parse and validation
/// failures get Apollo's codes, resolver errors keep theirs, and anything
/// left without one (argument coercion, missing data) gets a generic one.
struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(|error| {
                let code = if error.message.starts_with("Failed to parse") || error.message.starts_with("Invalid value")
                {
                    "BAD_USER_INPUT"
                } else {
                    "INTERNAL_SERVER_ERROR"
                };
                with_code(error, code)
            })
            .collect();
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(|e| with_code(e, "GRAPHQL_VALIDATION_FAILED")).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        next.run(ctx, operation_name).await
    }
}
