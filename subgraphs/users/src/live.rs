//! What happens to accounts, as it happens: the source of the
//! `accountEvents` and `userEvents` subscriptions.
//!
//! Every replica listens on its own to three signed sources, so a
//! subscriber hears an event whichever replica it is connected to:
//!
//! - the account events on the JetStream stream, through an ordered
//!   consumer of this replica that starts at the newest event (roles,
//!   deactivation, email verification, registration, deletion);
//! - the auth service's revocation notices (a session ended);
//! - the live account notices ([`gatehouse_common::live`]: a profile edited,
//!   a password changed), which the users service itself publishes for
//!   profile edits.
//!
//! Messages without the services' signature are dropped and counted: a
//! stranger on the broker cannot make anyone's client sign out. Events go to
//! the subscribers through a broadcast channel; one that falls behind loses
//! the oldest and hears of it (see [`crate::schema::subscription`]).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::events::{AccountChange, AccountEvent};
use gatehouse_common::live::{LiveKind, LiveNotice};
use gatehouse_common::settings::SharedSettings;
use gatehouse_common::signing::MessageSigner;

/// Events kept for the slowest subscriber.
const CAPACITY: usize = 1024;

/// How old an event may be and still be news. Older ones are history: what
/// a re-created JetStream consumer replays from the stream's start, or a
/// captured notice played again.
const FRESH_FOR: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What happened to an account, as subscribers see it.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "AccountEventType")]
pub enum EventType {
    /// The account was created.
    Registered,
    /// The account's email address was verified.
    EmailVerified,
    /// The account's profile was edited.
    ProfileUpdated,
    /// The account's role changed.
    RolesChanged,
    /// The account's password was changed or reset.
    PasswordChanged,
    /// One of the account's sessions was ended (signed out, revoked, or
    /// ended by a password change).
    SessionRevoked,
    /// An administrator deactivated the account.
    AccountDeactivated,
    /// An administrator reactivated the account.
    AccountReactivated,
    /// The account was deleted.
    AccountDeleted,
}

/// One event for the subscriptions.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub user_id: Uuid,
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
}

/// The live events of this replica.
#[derive(Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    nats: async_nats::Client,
    signer: MessageSigner,
    live_subject: String,
}

impl LiveFeed {
    pub fn new(nats: async_nats::Client, settings: &SharedSettings) -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
            nats,
            signer: settings.message_signer(),
            live_subject: settings.live_subject(),
        }
    }

    /// Tells every replica's subscribers that `user_id`'s profile changed.
    pub async fn announce(&self, user_id: Uuid, kind: LiveKind) {
        gatehouse_common::live::publish(&self.nats, &self.signer, &self.live_subject, user_id, kind).await;
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.sender.subscribe()
    }

    /// Hands an event to every subscriber, unless it is old news.
    pub fn publish(&self, event: LiveEvent) {
        if Utc::now() - event.occurred_at > FRESH_FOR {
            metrics::counter!("gatehouse_users_live_stale_total").increment(1);
            return;
        }
        metrics::counter!("gatehouse_users_live_events_total").increment(1);
        let _ = self.sender.send(Arc::new(event));
    }

    /// Listens to the three sources until `shutdown`, each re-attached after
    /// a failure.
    pub fn start(&self, settings: &SharedSettings, shutdown: CancellationToken) {
        let (nats, signer) = (self.nats.clone(), self.signer.clone());
        let notices = Notices { feed: self.clone(), signer: signer.clone(), nats: nats.clone() };
        for (subject, source) in
            [(settings.revocation_subject(), Source::Revocations), (settings.live_subject(), Source::Live)]
        {
            let (notices, shutdown) = (notices.clone(), shutdown.clone());
            tokio::spawn(async move { notices.listen(subject, source, shutdown).await });
        }
        let events = Events {
            feed: self.clone(),
            signer,
            jetstream: jetstream::new(nats),
            stream: settings.events_stream.clone(),
            filter: format!("{}.user.>", settings.events_subject_prefix),
        };
        tokio::spawn(async move { events.follow(shutdown).await });
    }
}

#[derive(Clone, Copy, Debug)]
enum Source {
    Revocations,
    Live,
}

#[derive(Clone)]
struct Notices {
    feed: LiveFeed,
    signer: MessageSigner,
    nats: async_nats::Client,
}

impl Notices {
    async fn listen(self, subject: String, source: Source, shutdown: CancellationToken) {
        loop {
            match self.nats.subscribe(subject.clone()).await {
                Ok(mut subscription) => loop {
                    let message = tokio::select! {
                        () = shutdown.cancelled() => return,
                        message = subscription.next() => message,
                    };
                    let Some(message) = message else { break };
                    if let Some(event) = self.decode(&message, source) {
                        self.feed.publish(event);
                    }
                },
                Err(error) => tracing::warn!(%subject, %error, "cannot subscribe to live notices; retrying"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn decode(&self, message: &async_nats::Message, source: Source) -> Option<LiveEvent> {
        if let Err(error) = self.signer.verify_message(message) {
            metrics::counter!("gatehouse_users_live_forged_total").increment(1);
            tracing::warn!(subject = %message.subject, %error, "dropping a live notice the services did not sign");
            return None;
        }
        let event = match source {
            Source::Revocations => {
                #[derive(serde::Deserialize)]
                struct Revocation {
                    user_id: Uuid,
                    revoked_at: i64,
                }
                let notice: Revocation = serde_json::from_slice(&message.payload).ok()?;
                LiveEvent {
                    user_id: notice.user_id,
                    kind: EventType::SessionRevoked,
                    occurred_at: DateTime::from_timestamp(notice.revoked_at, 0).unwrap_or_else(Utc::now),
                }
            }
            Source::Live => {
                let notice: LiveNotice = serde_json::from_slice(&message.payload).ok()?;
                let kind = match notice.kind {
                    LiveKind::ProfileUpdated => EventType::ProfileUpdated,
                    LiveKind::PasswordChanged => EventType::PasswordChanged,
                };
                LiveEvent { user_id: notice.user_id, kind, occurred_at: notice.occurred_at }
            }
        };
        Some(event)
    }
}

struct Events {
    feed: LiveFeed,
    signer: MessageSigner,
    jetstream: jetstream::Context,
    stream: String,
    filter: String,
}

impl Events {
    /// Follows the stream from its newest event; an ordered consumer is this
    /// replica's alone and goes with it. After a failure (the stream being
    /// re-created, a leader election) it starts again from the newest.
    async fn follow(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.follow_once(&shutdown).await {
                tracing::warn!(%error, "following the account events for subscriptions failed; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn follow_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let stream = self.jetstream.get_stream(&self.stream).await?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.filter.clone(),
                deliver_policy: consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = messages.next() => message,
            };
            let Some(message) = message else { return Ok(()) };
            let message = message?;
            if let Err(error) = self.signer.verify_message(&message) {
                metrics::counter!("gatehouse_users_live_forged_total").increment(1);
                tracing::warn!(subject = %message.subject, %error, "not telling subscribers of an unsigned event");
                continue;
            }
            let Ok(event) = serde_json::from_slice::<AccountEvent>(&message.payload) else { continue };
            self.feed.publish(live_event(&event));
        }
    }
}

/// What subscribers hear of an account event.
fn live_event(event: &AccountEvent) -> LiveEvent {
    let kind = match &event.change {
        AccountChange::Registered { .. } => EventType::Registered,
        AccountChange::EmailVerified => EventType::EmailVerified,
        AccountChange::RoleChanged { .. } => EventType::RolesChanged,
        AccountChange::ActiveChanged { active: false } => EventType::AccountDeactivated,
        AccountChange::ActiveChanged { active: true } => EventType::AccountReactivated,
        AccountChange::Deleted => EventType::AccountDeleted,
    };
    LiveEvent { user_id: event.user_id, kind, occurred_at: event.occurred_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_changes_map_to_event_types() {
        let event = |change| AccountEvent {
            event_id: Uuid::nil(),
            user_id: Uuid::max(),
            version: 2,
            occurred_at: Utc::now(),
            change,
        };
        let kind = |change| live_event(&event(change)).kind;
        assert_eq!(kind(AccountChange::RoleChanged { role: "ADMIN".into() }), EventType::RolesChanged);
        assert_eq!(kind(AccountChange::ActiveChanged { active: false }), EventType::AccountDeactivated);
        assert_eq!(kind(AccountChange::ActiveChanged { active: true }), EventType::AccountReactivated);
        assert_eq!(kind(AccountChange::EmailVerified), EventType::EmailVerified);
        assert_eq!(kind(AccountChange::Deleted), EventType::AccountDeleted);
    }
}
