//! Who may call what: the same rules the SDL's `@authenticated` and
//! `@requiresScopes` declare, enforced here too (defence in depth).

use async_graphql::{Context, Guard, TypeDirective};

use gatehouse_common::identity::Identity;

use crate::error::ApiError;

// Marks a field `@authenticated` in the SDL. async-graphql cannot import the
// federation directive itself; `super::with_auth_directives` turns this local
// definition into the imported one. (A `///` comment here would become the
// directive's description and outlive its definition in the SDL.)
#[TypeDirective(location = "FieldDefinition")]
pub fn authenticated() {}

// Marks a subscription field `@requiresScopes` in the SDL: async-graphql's
// `requires_scopes` attribute exists for object fields only.
// `super::with_auth_directives` drops this local definition, so the name
// stays the federation directive the schema imports.
#[TypeDirective(name = "requiresScopes", location = "FieldDefinition")]
pub fn requires_scopes(scopes: Vec<Vec<String>>) {}

/// The caller's identity, or UNAUTHENTICATED.
pub fn identity<'a>(ctx: &Context<'a>) -> Result<&'a Identity, ApiError> {
    ctx.data_opt::<Identity>().ok_or(ApiError::Unauthenticated)
}

/// Requires a verified identity (`@authenticated`).
pub struct Authenticated;

impl Guard for Authenticated {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        identity(ctx)?;
        Ok(())
    }
}

/// Requires a scope (`@requiresScopes(scopes: [["<scope>"]])`):
/// UNAUTHENTICATED for anonymous callers, FORBIDDEN for the others.
pub struct RequiresScope(pub &'static str);

impl Guard for RequiresScope {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if identity(ctx)?.has_scope(self.0) {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
    }
}
