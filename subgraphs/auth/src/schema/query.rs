//! The query root: the federation entry point for `User`, and the outside sign-in providers.

use async_graphql::{Context, Object, Result, ID};

use crate::service::AuthService;

use super::types::User;

pub struct Query;

/// What reads data: the caller's own account and, for administrators, everyone's.
#[Object]
impl Query {
    /// Resolves `User` references (`_entities`) from other subgraphs.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let Ok(id) = uuid::Uuid::parse_str(&id) else { return Ok(None) };
        let service = ctx.data::<AuthService>()?;
        Ok(service.account(id).await?.map(User::new))
    }

    /// The outside providers people may sign in with (`externalLoginUrl`).
    async fn external_login_providers(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(ctx.data::<AuthService>()?.external_providers())
    }
}
