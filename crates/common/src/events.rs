//! Account events: written to the auth outbox, published on JetStream, applied by users.
//!
//! One shape for both sides: the auth service serialises an [`AccountEvent`]
//! into its outbox in the same transaction as the change; the users service
//! deserialises the same type from JetStream. On the wire (and in the outbox's
//! `payload`) an event is JSON:
//!
//! ```json
//! {"event_id": "…", "user_id": "…", "version": 2, "occurred_at": "2026-11-27T17:00:00Z",
//!  "type": "role_changed", "data": {"role": "ADMIN"}}
//! ```
//!
//! `version` orders one account's events: 1 is the registration, every later
//! event is the previous version plus one, with no gaps. Consumers apply
//! version `n` only after `n - 1`, so a skipped version blocks the account.
//! Adding a variant or an optional field is compatible; renaming is not.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::settings::SharedSettings;

/// One change to one account, in that account's order (`version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Unique per event; also the JetStream message id (de-duplication).
    pub event_id: Uuid,
    pub user_id: Uuid,
    /// 1 for the registration, then +1 for every later event of this account.
    pub version: i64,
    pub occurred_at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: AccountChange,
}

/// What changed. Serialised as `{"type": "...", "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum AccountChange {
    Registered {
        username: String,
        email: String,
        /// The highest role (`USER`, `ADMIN`, ...); lower roles are implied.
        role: String,
        display_name: String,
        email_verified: bool,
        active: bool,
    },
    EmailVerified,
    RoleChanged {
        role: String,
    },
    ActiveChanged {
        active: bool,
    },
    Deleted,
}

impl AccountChange {
    /// The last token of the subject: `<prefix>.user.<type>`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AccountChange::Registered { .. } => "registered",
            AccountChange::EmailVerified => "email_verified",
            AccountChange::RoleChanged { .. } => "role_changed",
            AccountChange::ActiveChanged { .. } => "active_changed",
            AccountChange::Deleted => "deleted",
        }
    }
}

/// The subject an event is published on: `<prefix>.user.<type>`.
pub fn event_subject(subject_prefix: &str, type_name: &str) -> String {
    format!("{subject_prefix}.user.{type_name}")
}

/// The subject a consumer dead-letters events it cannot apply to:
/// `<prefix>.dlq.<consumer_group>` (the users service uses `users`).
pub fn dead_letter_subject(subject_prefix: &str, consumer_group: &str) -> String {
    format!("{subject_prefix}.dlq.{consumer_group}")
}

/// The stream that keeps dead-lettered events: `<events stream>_DLQ`.
pub fn dead_letter_stream(settings: &SharedSettings) -> String {
    format!("{}_DLQ", settings.events_stream)
}

/// How long JetStream remembers message ids to drop duplicates. It must outlast
/// the relay's retry horizon, so a re-published event is still recognised.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60 * 60);

/// Creates the events stream, or updates it to the current configuration.
pub async fn ensure_stream(js: &jetstream::Context, settings: &SharedSettings) -> anyhow::Result<stream::Info> {
    let config = stream::Config {
        name: settings.events_stream.clone(),
        subjects: vec![format!("{}.user.>", settings.events_subject_prefix)],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: settings.events_replicas.into(),
        ..Default::default()
    };
    create_or_update(js, config).await
}

/// Creates the dead-letter stream (`<stream>_DLQ`, subjects `<prefix>.dlq.>`),
/// or updates it. Dead letters are kept until an operator removes them.
pub async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    settings: &SharedSettings,
) -> anyhow::Result<stream::Info> {
    let config = stream::Config {
        name: dead_letter_stream(settings),
        subjects: vec![format!("{}.dlq.>", settings.events_subject_prefix)],
        storage: stream::StorageType::File,
        num_replicas: settings.events_replicas.into(),
        ..Default::default()
    };
    create_or_update(js, config).await
}

async fn create_or_update(js: &jetstream::Context, config: stream::Config) -> anyhow::Result<stream::Info> {
    let info = match js.get_stream(&config.name).await {
        Ok(_) => js.update_stream(config).await?,
        Err(_) => js.create_stream(config).await?.cached_info().clone(),
    };
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_pinned() {
        let event = AccountEvent {
            event_id: Uuid::nil(),
            user_id: Uuid::max(),
            version: 2,
            occurred_at: "2026-11-27T17:00:00Z".parse().unwrap(),
            change: AccountChange::RoleChanged { role: "ADMIN".into() },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "event_id": "00000000-0000-0000-0000-000000000000",
                "user_id": "ffffffff-ffff-ffff-ffff-ffffffffffff",
                "version": 2,
                "occurred_at": "2026-11-27T17:00:00Z",
                "type": "role_changed",
                "data": { "role": "ADMIN" },
            })
        );
        assert_eq!(serde_json::from_value::<AccountEvent>(json).unwrap(), event);
        let unit = serde_json::to_value(AccountChange::Deleted).unwrap();
        assert_eq!(unit, serde_json::json!({ "type": "deleted" }));
    }

    #[test]
    fn subjects_follow_the_prefix() {
        assert_eq!(event_subject("auth", AccountChange::EmailVerified.type_name()), "auth.user.email_verified");
        assert_eq!(dead_letter_subject("auth", "users"), "auth.dlq.users");
    }
}
