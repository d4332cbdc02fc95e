//! Subscriptions: `accountEvents` (the caller's own) and `userEvents`
//! (everyone's, ADMIN+), from the replica's [`LiveFeed`].

use std::sync::Arc;

use async_graphql::{Context, Object, Subscription as SubscriptionType, ID};
use futures::Stream;
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::guards::{authenticated, identity, requires_scopes, Authenticated, RequiresScope};
use super::types::User;
use crate::error::ApiError;
use crate::live::{EventType, LiveEvent, LiveFeed};
use crate::store;

#[derive(Default)]
pub struct Subscription;

/// What happens, as it happens. Served over graphql-ws; each subscription
/// ends when the caller's session does.
#[SubscriptionType]
impl Subscription {
    /// The caller's own account events: a profile edited or a password
    /// changed on another device, a session ended, a role changed, the
    /// account deactivated.
    #[graphql(guard = "Authenticated", directive = authenticated::apply())]
    async fn account_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AccountEvent>>> {
        let caller = identity(ctx)?.user_id;
        let receiver = ctx.data::<LiveFeed>()?.subscribe();
        Ok(events(receiver, move |event| (event.user_id == caller).then_some(AccountEvent(event))))
    }

    /// Every account's events. ADMIN+ only.
    #[graphql(
        guard = "RequiresScope(\"admin\")",
        directive = requires_scopes::apply(vec![vec!["admin".to_owned()]])
    )]
    async fn user_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<UserEvent>>> {
        let receiver = ctx.data::<LiveFeed>()?.subscribe();
        Ok(events(receiver, |event| Some(UserEvent(event))))
    }
}

/// The feed's events that `keep` turns into items, until the subscriber
/// falls behind: then one error, and the end.
fn events<T: Send + 'static>(
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    keep: impl Fn(Arc<LiveEvent>) -> Option<T> + Send + 'static,
) -> impl Stream<Item = async_graphql::Result<T>> {
    futures::stream::unfold(Some((receiver, keep)), |state| async move {
        let (mut receiver, keep) = state?;
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    if let Some(item) = keep(event) {
                        return Some((Ok(item), Some((receiver, keep))));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((Err(ApiError::SlowConsumer.into()), None));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// One of the caller's account events.
pub struct AccountEvent(Arc<LiveEvent>);

/// One of the caller's account events.
#[Object]
impl AccountEvent {
    /// What happened.
    #[graphql(name = "type")]
    async fn kind(&self) -> EventType {
        self.0.kind
    }

    /// When it happened.
    async fn occurred_at(&self) -> gatehouse_subgraph::DateTime {
        gatehouse_subgraph::DateTime(self.0.occurred_at)
    }
}

/// One account's event, for administrators.
pub struct UserEvent(Arc<LiveEvent>);

/// One account's event, for administrators.
#[Object]
impl UserEvent {
    /// What happened.
    #[graphql(name = "type")]
    async fn kind(&self) -> EventType {
        self.0.kind
    }

    /// When it happened.
    async fn occurred_at(&self) -> gatehouse_subgraph::DateTime {
        gatehouse_subgraph::DateTime(self.0.occurred_at)
    }

    /// The account's id.
    async fn user_id(&self) -> ID {
        ID(self.0.user_id.to_string())
    }

    /// The account; null once deleted, or while its sign-up has not yet
    /// reached this service.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let pool = ctx.data::<PgPool>()?;
        let id: Uuid = self.0.user_id;
        Ok(store::find(pool, id).await.map_err(ApiError::from)?.map(User))
    }
}
