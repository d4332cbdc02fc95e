//! Session revocation as the gateway sees it.
//!
//! The auth service marks a revoked session in Redis (`<prefix>revoked:sid:{<sid>}`,
//! kept at least as long as an access token lives) and announces it on a NATS
//! subject. The gateway:
//!
//! - remembers every announced revocation locally (instant, no Redis);
//! - otherwise asks Redis at most once per `recheck` interval per session, so
//!   a missed announcement still takes effect within that interval (1 s by
//!   default) without a Redis round trip on every request;
//! - fails closed when Redis cannot answer, unless configured to fail open.

use std::time::Duration;

use moka::sync::Cache;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::redis_conn::RedisConn;
use gatehouse_common::signing::MessageSigner;

/// Revocation settings.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// Key prefix, e.g. `gatehouse:`; the key is `<prefix>revoked:sid:{<sid>}`.
    pub key_prefix: String,
    /// Subject of revocation notices (payload: the session id, or a JSON object with `sid`).
    pub notice_subject: String,
    /// How long a "not revoked" answer from Redis is trusted. Default 1 s.
    pub recheck: Duration,
    /// How long an announced revocation is remembered locally; at least the
    /// access-token lifetime. Default 1 h.
    pub remember: Duration,
    /// Accept tokens when Redis cannot answer. Default false (fail closed).
    pub fail_open: bool,
    /// Checks that a notice comes from the auth service: anyone who can
    /// publish on NATS could otherwise end any session.
    pub signer: MessageSigner,
}

impl RevocationConfig {
    pub fn new(key_prefix: impl Into<String>, notice_subject: impl Into<String>, signer: MessageSigner) -> Self {
        Self {
            key_prefix: key_prefix.into(),
            notice_subject: notice_subject.into(),
            recheck: Duration::from_secs(1),
            remember: Duration::from_secs(3600),
            fail_open: false,
            signer,
        }
    }
}

/// The Redis key marking a revoked session; the auth service writes it.
pub fn revoked_key(prefix: &str, sid: &Uuid) -> String {
    gatehouse_common::redis_conn::revoked_key(prefix, sid)
}

#[derive(Debug, thiserror::Error)]
#[error("session revocation state is unavailable")]
pub struct RevocationError;

/// Answers whether a session was revoked.
#[derive(Clone)]
pub struct Revocations {
    config: RevocationConfig,
    redis: RedisConn,
    revoked: Cache<Uuid, ()>,
    /// Sessions Redis recently called live. Concurrent requests of one session
    /// share a single Redis lookup when the entry has expired, instead of all
    /// asking at once.
    recently_live: moka::future::Cache<Uuid, ()>,
    /// Woken by every revocation heard, so live subscriptions of the
    /// session end at once rather than at their next check.
    heard: std::sync::Arc<tokio::sync::Notify>,
}

/// Why a Redis lookup did not find the session live.
#[derive(Debug)]
enum NotLive {
    Revoked,
    Unanswered(redis::RedisError),
}

impl Revocations {
    pub fn new(config: RevocationConfig, redis: impl Into<RedisConn>) -> Self {
        let redis = redis.into();
        let revoked = Cache::builder().max_capacity(1_000_000).time_to_live(config.remember).build();
        let recently_live = moka::future::Cache::builder().max_capacity(1_000_000).time_to_live(config.recheck).build();
        Self { config, redis, revoked, recently_live, heard: Default::default() }
    }

    /// Records a revocation heard from a notice. It wins over any "live"
    /// answer still remembered, since it is consulted first.
    pub fn mark_revoked(&self, sid: Uuid) {
        self.revoked.insert(sid, ());
        self.heard.notify_waiters();
    }

    /// Completes when the next revocation is heard (from a notice, or found
    /// in Redis).
    pub async fn heard(&self) {
        self.heard.notified().await;
    }

    pub async fn is_revoked(&self, sid: Uuid) -> Result<bool, RevocationError> {
        if self.revoked.contains_key(&sid) {
            return Ok(true);
        }
        let lookup = self.recently_live.try_get_with(sid, self.ask_redis(sid)).await;
        match lookup.as_ref().map_err(|e| e.as_ref()) {
            Ok(()) => Ok(false),
            Err(NotLive::Revoked) => {
                self.mark_revoked(sid);
                Ok(true)
            }
            Err(NotLive::Unanswered(error)) if self.config.fail_open => {
                tracing::warn!(%error, "revocation check failed; failing open as configured");
                Ok(false)
            }
            Err(NotLive::Unanswered(error)) => {
                tracing::error!(%error, "revocation check failed; refusing the token (fail closed)");
                Err(RevocationError)
            }
        }
    }

    async fn ask_redis(&self, sid: Uuid) -> Result<(), NotLive> {
        // Under its old name too, where an auth service of the release
        // before hash tags may still write it.
        match self.redis.exists_tagged(&revoked_key(&self.config.key_prefix, &sid)).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(NotLive::Revoked),
            Err(error) => Err(NotLive::Unanswered(error)),
        }
    }

    /// Listens for revocation notices until `shutdown`. Notices without the
    /// auth service's signature, and payloads that are not a session id, are
    /// ignored (and logged): a notice can only revoke.
    pub async fn listen(self, nats: async_nats::Client, shutdown: CancellationToken) -> anyhow::Result<()> {
        use futures::StreamExt;
        let mut subscription = nats.subscribe(self.config.notice_subject.clone()).await?;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = subscription.next() => {
                    let Some(message) = message else { return Ok(()) };
                    if let Err(error) = self.config.signer.verify_message(&message) {
                        metrics::counter!("gateway_revocation_notices_refused_total").increment(1);
                        tracing::warn!(%error, "ignoring a revocation notice the auth service did not sign");
                        continue;
                    }
                    match notice_sid(&message.payload) {
                        Some(sid) => self.mark_revoked(sid),
                        None => tracing::warn!("ignoring a malformed revocation notice"),
                    }
                }
            }
        }
    }
}

/// The session id of a notice: a JSON object with `sid` (what the auth service
/// sends) or a bare id.
fn notice_sid(payload: &[u8]) -> Option<Uuid> {
    #[derive(serde::Deserialize)]
    struct Notice {
        sid: Uuid,
    }
    if let Ok(notice) = serde_json::from_slice::<Notice>(payload) {
        return Some(notice.sid);
    }
    std::str::from_utf8(payload).ok().and_then(|s| Uuid::parse_str(s.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_carry_the_session_id_as_json_or_bare() {
        let sid = Uuid::new_v4();
        let json = format!(r#"{{"sid":"{sid}","user_id":"{}","reason":"logout","revoked_at":1}}"#, Uuid::new_v4());
        assert_eq!(notice_sid(json.as_bytes()), Some(sid));
        assert_eq!(notice_sid(sid.to_string().as_bytes()), Some(sid));
        for junk in [&b""[..], b"{}", b"{\"sid\": 3}", b"not-a-uuid", b"\xff"] {
            assert_eq!(notice_sid(junk), None);
        }
    }
}
