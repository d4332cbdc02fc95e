//! Live account notices: what just happened to an account, told at once to
//! whoever watches it (the users subgraph's `accountEvents` and `userEvents`
//! subscriptions).
//!
//! The durable account events ([`crate::events`]) cover what the users
//! service must copy; these cover what a watching client wants to hear and
//! no store needs: a profile edited on another device, a password changed.
//! They go over NATS Core on [`subject`], signed like every message between
//! the services ([`crate::signing`]), at most once: a notice published while
//! nobody listens is gone, which is what "live" means.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::signing::MessageSigner;

/// `<events subject prefix>.live.account`.
pub fn subject(events_subject_prefix: &str) -> String {
    format!("{events_subject_prefix}.live.account")
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LiveKind {
    ProfileUpdated,
    PasswordChanged,
}

/// One live notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveNotice {
    pub user_id: Uuid,
    pub kind: LiveKind,
    pub occurred_at: DateTime<Utc>,
}

/// How long a notice may wait for the connection. While NATS is away the
/// client's outgoing queue fills and a publish waits for it to come back;
/// the request that announced the change must not.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Publishes a notice. Best effort: a notice that cannot be sent soon is
/// logged and dropped; nothing durable depends on it.
pub async fn publish(nats: &async_nats::Client, signer: &MessageSigner, subject: &str, user_id: Uuid, kind: LiveKind) {
    let notice = LiveNotice { user_id, kind, occurred_at: Utc::now() };
    let payload = serde_json::to_vec(&notice).expect("a notice serialises");
    let headers = signer.headers(subject, &payload);
    let sent = nats.publish_with_headers(subject.to_owned(), headers, payload.into());
    match tokio::time::timeout(PUBLISH_WAIT, sent).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%user_id, ?kind, %error, "could not publish a live account notice"),
        Err(_) => tracing::warn!(%user_id, ?kind, "NATS did not take a live account notice in time; dropped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_pinned() {
        let notice = LiveNotice {
            user_id: Uuid::nil(),
            kind: LiveKind::PasswordChanged,
            occurred_at: "2026-12-03T10:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "user_id": "00000000-0000-0000-0000-000000000000",
                "kind": "PASSWORD_CHANGED",
                "occurred_at": "2026-12-03T10:00:00Z",
            })
        );
        assert_eq!(serde_json::from_value::<LiveNotice>(json).unwrap(), notice);
        assert_eq!(subject("auth"), "auth.live.account");
    }
}
