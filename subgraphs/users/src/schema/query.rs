//! Queries: `me`, `user`, `users`, and the `User` entity resolver.

use async_graphql::{Context, Object, ID};
use sqlx::PgPool;

use super::guards::{authenticated, identity, Authenticated, RequiresScope};
use super::types::{decode_cursor, encode_cursor, parse_id, PageInfo, User, UserConnection, UserEdge};
use crate::error::ApiError;
use crate::store;

/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// Largest page a caller may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Longest search text accepted.
pub const MAX_SEARCH_CHARS: usize = 100;

#[derive(Default)]
pub struct Query;

/// What reads data: the caller's own account and, for administrators, everyone's.
#[Object]
impl Query {
    /// The caller's own record; null until the sign-up has reached this service.
    #[graphql(guard = "Authenticated", directive = authenticated::apply())]
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let caller = identity(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        Ok(store::find(pool, caller.user_id).await.map_err(ApiError::from)?.map(User))
    }

    /// A user by id. Deactivated users are visible only to themselves and to ADMIN+.
    #[graphql(guard = "Authenticated", directive = authenticated::apply())]
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let caller = identity(ctx)?;
        let id = parse_id(&id, "id")?;
        let pool = ctx.data::<PgPool>()?;
        let record = store::find(pool, id).await.map_err(ApiError::from)?;
        Ok(record.filter(|r| r.active || r.id == caller.user_id || caller.has_scope("admin")).map(User))
    }

    /// Every user, in pages, optionally filtered by a case-insensitive
    /// substring of username, email or display name. ADMIN+ only.
    #[graphql(guard = "RequiresScope(\"admin\")", requires_scopes = "admin")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 0 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `cursor` of the last user of the previous page.")] after: Option<String>,
        #[graphql(desc = "Case-insensitive substring of username, email or display name (at most 100 characters).")]
        search: Option<String>,
    ) -> async_graphql::Result<UserConnection> {
        let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(0..=MAX_PAGE_SIZE).contains(&first) {
            return Err(ApiError::BadUserInput {
                field: Some("first"),
                message: format!("first: must be between 0 and {MAX_PAGE_SIZE}"),
            }
            .into());
        }
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let search = search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS) {
            return Err(ApiError::BadUserInput {
                field: Some("search"),
                message: format!("search: must be at most {MAX_SEARCH_CHARS} characters"),
            }
            .into());
        }
        let pool = ctx.data::<PgPool>()?;
        let (page, total) =
            tokio::try_join!(store::page(pool, after, i64::from(first), search), store::count(pool, search))
                .map_err(ApiError::from)?;
        let (records, has_next_page) = page;
        let edges: Vec<UserEdge> =
            records.into_iter().map(|r| UserEdge { cursor: encode_cursor(r.id), node: User(r) }).collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Ok(UserConnection { edges, page_info: PageInfo { has_next_page, end_cursor }, total_count: total })
    }

    /// Federation: the profile fields of a `User` another subgraph returned.
    /// Open to any caller, like the profile fields themselves: whoever holds
    /// the reference was allowed to see the user by the subgraph that gave it.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let id = parse_id(&id, "id")?;
        let pool = ctx.data::<PgPool>()?;
        Ok(store::find(pool, id).await.map_err(ApiError::from)?.map(User))
    }
}
