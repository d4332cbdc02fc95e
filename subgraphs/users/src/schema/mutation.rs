//! Mutations: `updateProfile`.

use async_graphql::{Context, MaybeUndefined, Object};
use sqlx::PgPool;

use super::guards::{authenticated, identity, Authenticated};
use super::types::{UpdateProfileInput, User};
use crate::domain::{AvatarUrl, Bio, DisplayName};
use crate::error::ApiError;
use crate::live::LiveFeed;
use crate::store::{self, ProfileChange};
use gatehouse_common::live::LiveKind;

#[derive(Default)]
pub struct Mutation;

/// What changes data: sign-up, sessions and roles (auth), profiles (users).
#[Object]
impl Mutation {
    /// Edits the caller's own profile.
    #[graphql(guard = "Authenticated", directive = authenticated::apply())]
    async fn update_profile(&self, ctx: &Context<'_>, input: UpdateProfileInput) -> async_graphql::Result<User> {
        let caller = identity(ctx)?;
        let change = parse_change(input)?;
        let pool = ctx.data::<PgPool>()?;
        let current = store::find(pool, caller.user_id).await.map_err(ApiError::from)?;
        match current {
            Some(record) if !record.active => return Err(ApiError::AccountDisabled.into()),
            Some(_) => {}
            // The sign-up has not reached this service yet (or the account was deleted).
            None => return Err(ApiError::bad_input("no profile exists for this account yet").into()),
        }
        let updated = store::update_profile(pool, caller.user_id, &change).await.map_err(ApiError::from)?;
        let updated = updated.ok_or_else(|| ApiError::bad_input("no profile exists for this account"))?;
        // The account's other devices refresh their profile at once.
        ctx.data::<LiveFeed>()?.announce(caller.user_id, LiveKind::ProfileUpdated).await;
        Ok(User(updated))
    }
}

/// Parses every provided field; the first invalid one is reported.
fn parse_change(input: UpdateProfileInput) -> Result<ProfileChange, ApiError> {
    let display_name = input.display_name.as_deref().map(DisplayName::parse).transpose()?;
    let bio = match input.bio {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(bio) => Some(Bio::parse(&bio)?),
    };
    let avatar_url = match input.avatar_url {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(url) => Some(AvatarUrl::parse(&url)?),
    };
    Ok(ProfileChange { display_name, bio, avatar_url })
}
