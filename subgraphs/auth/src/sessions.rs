//! Sessions (refresh-token families) in Redis, and their revocation.
//!
//! Keys, all under the shared Redis key prefix `<p>`; the braces are hash
//! tags, so a session and its revocation record share a Redis Cluster slot
//! and one script can touch both:
//!
//! - `<p>session:{<sid>}`: a hash with `uid`, `cur` and `prev` (SHA-256 of the
//!   current and the just-rotated token ids), `nxt` (SHA-256 of the id that
//!   follows the current one: successors are derived, so it is known in
//!   advance), `rot` (rotation time), `created`,
//!   `last` (last use), `abs` (absolute expiry) and `ua` (user agent). Its TTL
//!   is the idle lifetime, capped by the absolute expiry.
//! - `<p>user-sessions:{<uid>}`: the set of a user's session ids (stale members
//!   are dropped when listed).
//! - `<p>revoked:sid:{<sid>}`: present (value: the reason) for at least the
//!   access-token lifetime after a session is revoked. The gateway checks it.
//!
//! Every revocation is also announced on NATS Core, subject
//! `<events subject prefix>.session.revoked`, payload
//! `{"sid","user_id","reason","revoked_at"}`, so gateways can drop cached
//! sessions at once instead of polling.
//!
//! Releases before hash tags wrote the same keys without braces. Outside a
//! cluster (where those releases ran) every read also consults the old name
//! and the scripts move an old session to its new name on first use, so an
//! upgrade signs nobody out; gateways check both revocation keys.

use std::time::Duration;

use redis::Script;
use serde::Serialize;
use uuid::Uuid;

use gatehouse_common::redis_conn::{tagged, RedisConn};
use gatehouse_common::signing::MessageSigner;

use crate::tokens::token_hash;

/// What both session scripts do first: a session an older release wrote
/// under its untagged name (`KEYS[3]`, given outside a cluster only) moves to
/// its tagged name.
const MOVE_UNTAGGED: &str = r#"
if KEYS[3] and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[1])
end
"#;

/// Rotation, atomically: compare the presented token with the current, the
/// next and the previous hashes, then rotate, allow a grace retry, or revoke
/// the family.
const ROTATE: &str = r#"
local s = redis.call('HMGET', KEYS[1], 'uid', 'cur', 'prev', 'rot', 'abs', 'nxt')
if not s[1] or s[1] ~= ARGV[6] then return {'missing'} end
local now = tonumber(ARGV[3])
local abs = tonumber(s[5])
if now >= abs then
  redis.call('DEL', KEYS[1])
  return {'missing'}
end
-- The current token, or the token the current one's rotation issued when
-- Redis lost that rotation (a failover after the answer was sent): only the
-- holder of that answer can present it, so the chain goes on from it.
if s[2] == ARGV[1] or (s[6] and s[6] == ARGV[1]) then
  redis.call('HSET', KEYS[1], 'prev', ARGV[1], 'cur', ARGV[2], 'nxt', ARGV[8], 'rot', now, 'last', now)
  redis.call('EXPIRE', KEYS[1], math.min(tonumber(ARGV[4]), abs - now))
  return {'rotated', tostring(now), s[5]}
end
if s[3] and s[3] == ARGV[1] and s[2] == ARGV[2] and now - tonumber(s[4]) <= tonumber(ARGV[5]) then
  return {'grace', s[4], s[5]}
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'reuse', 'EX', ARGV[7])
return {'reused'}
"#;

/// Deletes a session and leaves the revocation record, atomically; answers
/// 1 when the session existed (and belonged to `ARGV[1]` when given). With
/// `ARGV[4]` = '1' the caller has proof the session was issued (a valid
/// refresh token, or the caller's own access token): a session Redis no
/// longer holds (evicted, lost in a failover) still gets its record, so its
/// access tokens stop working; that answers 2.
const REVOKE: &str = r#"
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  if ARGV[4] == '1' then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
    return 2
  end
  return 0
end
if ARGV[1] ~= '' and uid ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1
"#;

/// What a rotation attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current; its successor is now current.
    Rotated { iat: i64, absolute_exp: i64 },
    /// The presented token was rotated away moments ago: its successor (the
    /// current token, issued at `iat`) is answered again.
    Grace { iat: i64, absolute_exp: i64 },
    /// The presented token was rotated away long ago: the family is revoked.
    Reused,
    /// No such session (expired, revoked, or never existed).
    Missing,
}

/// A session as listed to its owner.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
}

/// Why a session was revoked, as written to the record and the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    Revoked,
    PasswordChanged,
    PasswordReset,
    Deactivated,
    RoleLowered,
    Deleted,
    Reuse,
    /// A login's answer was `null` (a failure below it): nobody got the tokens.
    Undelivered,
}

impl RevokeReason {
    fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutAll => "logout_all",
            RevokeReason::Revoked => "revoked",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::Deactivated => "deactivated",
            RevokeReason::RoleLowered => "role_lowered",
            RevokeReason::Deleted => "deleted",
            RevokeReason::Reuse => "reuse",
            RevokeReason::Undelivered => "undelivered",
        }
    }
}

#[derive(Serialize)]
struct RevocationNotice<'a> {
    sid: Uuid,
    user_id: Uuid,
    reason: &'a str,
    revoked_at: i64,
}

/// Session state in Redis plus the revocation notices on NATS.
#[derive(Clone)]
pub struct SessionStore {
    redis: RedisConn,
    nats: async_nats::Client,
    /// Signs revocation notices, so gateways can tell them from a stranger's.
    signer: MessageSigner,
    prefix: String,
    subject: String,
    idle_ttl: Duration,
    /// How long a revocation record lives: the access-token lifetime plus a minute.
    revocation_ttl: Duration,
    rotate: std::sync::Arc<Script>,
    revoke: std::sync::Arc<Script>,
}

impl SessionStore {
    pub fn new(
        redis: RedisConn,
        nats: async_nats::Client,
        signer: MessageSigner,
        prefix: String,
        subject: String,
        idle_ttl: Duration,
        access_ttl: Duration,
    ) -> Self {
        Self {
            redis,
            nats,
            signer,
            prefix,
            subject,
            idle_ttl,
            revocation_ttl: access_ttl + Duration::from_secs(60),
            rotate: std::sync::Arc::new(Script::new(&[MOVE_UNTAGGED, ROTATE].concat())),
            revoke: std::sync::Arc::new(Script::new(&[MOVE_UNTAGGED, REVOKE].concat())),
        }
    }

    fn session_key(&self, sid: Uuid) -> String {
        tagged(&self.prefix, "session", sid)
    }

    fn user_key(&self, uid: Uuid) -> String {
        tagged(&self.prefix, "user-sessions", uid)
    }

    /// The key the gateway checks: `<p>revoked:sid:{<sid>}`.
    pub fn revoked_key(&self, sid: Uuid) -> String {
        gatehouse_common::redis_conn::revoked_key(&self.prefix, sid)
    }

    /// The untagged name an older release gave `key` (`<p>name:{id}` was
    /// `<p>name:id`), where such keys may exist.
    fn legacy(&self, key: &str) -> Option<String> {
        self.redis.legacy_keys().then(|| gatehouse_common::redis_conn::untagged(key))
    }

    /// A script invocation on a session's keys (the session, its revocation
    /// record, and the session's untagged name where it may exist).
    fn on_session<'a>(&self, script: &'a Script, sid: Uuid) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.key(self.session_key(sid));
        invocation.key(self.revoked_key(sid));
        if let Some(old) = self.legacy(&self.session_key(sid)) {
            invocation.key(old);
        }
        invocation
    }

    /// The ids in `uid`'s session set, and in its untagged set where an
    /// older release may have left one.
    async fn members(&self, uid: Uuid) -> redis::RedisResult<Vec<String>> {
        let mut conn = self.redis.clone();
        let key = self.user_key(uid);
        let Some(old) = self.legacy(&key) else {
            return redis::cmd("SMEMBERS").arg(&key).query_async(&mut conn).await;
        };
        // Both names in one round trip: outside a cluster they share a server.
        let (mut members, older, new_ttl, old_ttl): (Vec<String>, Vec<String>, i64, i64) =
            redis::pipe().smembers(&key).smembers(&old).pttl(&key).pttl(&old).query_async(&mut conn).await?;
        if !older.is_empty() {
            // Carried into the tagged set, living as long as the longer of
            // the two did, so the old one can go.
            let mut carry = redis::pipe();
            carry.atomic().sadd(&key, &older).ignore().del(&old).ignore();
            if old_ttl > 0 && (new_ttl < 0 || old_ttl > new_ttl) {
                carry.pexpire(&key, old_ttl).ignore();
            }
            carry.query_async::<()>(&mut conn).await?;
            members.extend(older);
            members.sort_unstable();
            members.dedup();
        }
        Ok(members)
    }

    /// Records a new session; `chain` is its refresh token's id and the id
    /// of that token's successor.
    #[tracing::instrument(name = "sessions.create", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn create(
        &self,
        sid: Uuid,
        uid: Uuid,
        chain: [&str; 2],
        now: i64,
        absolute_exp: i64,
        user_agent: Option<&str>,
    ) -> redis::RedisResult<()> {
        let [jti, successor] = chain;
        let ttl = (self.idle_ttl.as_secs() as i64).min(absolute_exp - now).max(1);
        let key = self.session_key(sid);
        let user_key = self.user_key(uid);
        // A user who never logs out would otherwise add an id per login for good.
        self.prune(uid).await?;
        let mut conn = self.redis.clone();
        // The session's own keys go in one transaction; the user's set lives
        // in another slot, so it is written first: an id whose session was
        // never written is pruned like an ended one.
        let mut set = redis::pipe();
        set.atomic().sadd(&user_key, sid.to_string()).ignore().expire(&user_key, absolute_exp - now).ignore();
        set.query_async::<()>(&mut conn).await?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                &key,
                &[
                    ("uid", uid.to_string()),
                    ("cur", token_hash(jti)),
                    ("nxt", token_hash(successor)),
                    ("rot", now.to_string()),
                    ("created", now.to_string()),
                    ("last", now.to_string()),
                    ("abs", absolute_exp.to_string()),
                    ("ua", user_agent.unwrap_or_default().to_owned()),
                ],
            )
            .ignore()
            .expire(&key, ttl)
            .ignore();
        pipe.query_async::<()>(&mut conn).await
    }

    /// Drops from `uid`'s set the ids of sessions that have ended (expired
    /// or deleted); answers how many were dropped.
    #[tracing::instrument(name = "sessions.prune", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn prune(&self, uid: Uuid) -> redis::RedisResult<usize> {
        let user_key = self.user_key(uid);
        let mut conn = self.redis.clone();
        let members = self.members(uid).await?;
        if members.is_empty() {
            return Ok(0);
        }
        // One lookup per session: in a cluster the sessions live on different nodes.
        let alive = futures::future::try_join_all(
            members
                .iter()
                .map(|sid| async move { self.redis.exists_tagged(&tagged(&self.prefix, "session", sid)).await }),
        )
        .await?;
        let ended: Vec<&String> = members.iter().zip(alive).filter(|(_, alive)| !alive).map(|(sid, _)| sid).collect();
        if !ended.is_empty() {
            let _: () = redis::cmd("SREM").arg(&user_key).arg(&ended).query_async(&mut conn).await?;
        }
        Ok(ended.len())
    }

    /// Rotates session `sid` of `uid` from token `jti` to the first of
    /// `successors` (the id that follows `jti`, and the one after it).
    #[tracing::instrument(name = "sessions.rotate", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn rotate(
        &self,
        sid: Uuid,
        uid: Uuid,
        jti: &str,
        successors: [&str; 2],
        now: i64,
        grace: Duration,
    ) -> redis::RedisResult<Rotation> {
        let [successor_jti, after] = successors;
        let reply: Vec<String> = self
            .on_session(&self.rotate, sid)
            .arg(token_hash(jti))
            .arg(token_hash(successor_jti))
            .arg(now)
            .arg(self.idle_ttl.as_secs())
            .arg(grace.as_secs())
            .arg(uid.to_string())
            .arg(self.revocation_ttl.as_secs())
            .arg(token_hash(after))
            .invoke_async(&mut self.redis.clone())
            .await?;
        let number = |i: usize| reply.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or_default();
        Ok(match reply.first().map(String::as_str) {
            Some("rotated") => Rotation::Rotated { iat: number(1), absolute_exp: number(2) },
            Some("grace") => Rotation::Grace { iat: number(1), absolute_exp: number(2) },
            Some("reused") => {
                self.announce(sid, uid, RevokeReason::Reuse).await;
                Rotation::Reused
            }
            _ => Rotation::Missing,
        })
    }

    /// Revokes one session; with `owner`, only if it belongs to that user.
    /// Answers whether a session was revoked.
    pub async fn revoke(&self, sid: Uuid, owner: Option<Uuid>, reason: RevokeReason) -> redis::RedisResult<bool> {
        self.revoke_with(sid, owner, reason, false).await
    }

    /// Revokes session `sid` of `owner`, which the caller proved was issued
    /// (its refresh token verified, or it is the caller's own session): the
    /// revocation record is written even when Redis no longer holds the
    /// session, so its access tokens stop working at the gateways.
    pub async fn revoke_proven(&self, sid: Uuid, owner: Uuid, reason: RevokeReason) -> redis::RedisResult<bool> {
        self.revoke_with(sid, Some(owner), reason, true).await
    }

    #[tracing::instrument(name = "sessions.revoke", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    async fn revoke_with(
        &self,
        sid: Uuid,
        owner: Option<Uuid>,
        reason: RevokeReason,
        proven: bool,
    ) -> redis::RedisResult<bool> {
        let done: i64 = self
            .on_session(&self.revoke, sid)
            .arg(owner.map(|u| u.to_string()).unwrap_or_default())
            .arg(reason.as_str())
            .arg(self.revocation_ttl.as_secs())
            .arg(if proven { "1" } else { "0" })
            .invoke_async(&mut self.redis.clone())
            .await?;
        if done == 2 {
            tracing::warn!(%sid, reason = reason.as_str(), "revoked a session Redis no longer held");
        }
        if done >= 1 {
            if let Some(uid) = owner {
                let _: redis::RedisResult<()> = redis::cmd("SREM")
                    .arg(self.user_key(uid))
                    .arg(sid.to_string())
                    .query_async(&mut self.redis.clone())
                    .await;
                self.announce(sid, uid, reason).await;
            } else {
                self.announce(sid, Uuid::nil(), reason).await;
            }
        }
        Ok(done >= 1)
    }

    /// Revokes every session of `uid` except `keep`; answers how many.
    #[tracing::instrument(name = "sessions.revoke_all", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn revoke_all(&self, uid: Uuid, keep: Option<Uuid>, reason: RevokeReason) -> redis::RedisResult<usize> {
        let members = self.members(uid).await?;
        let mut count = 0;
        for sid in members.iter().filter_map(|s| Uuid::parse_str(s).ok()) {
            if Some(sid) == keep {
                continue;
            }
            if self.revoke(sid, Some(uid), reason).await? {
                count += 1;
            } else {
                let _: () = redis::cmd("SREM")
                    .arg(self.user_key(uid))
                    .arg(sid.to_string())
                    .query_async(&mut self.redis.clone())
                    .await?;
            }
        }
        Ok(count)
    }

    /// Whether `sid` has a revocation record.
    #[tracing::instrument(name = "sessions.is_revoked", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn is_revoked(&self, sid: Uuid) -> redis::RedisResult<bool> {
        self.redis.exists_tagged(&self.revoked_key(sid)).await
    }

    /// The owner of a live session, if any.
    #[tracing::instrument(name = "sessions.owner", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn owner(&self, sid: Uuid) -> redis::RedisResult<Option<Uuid>> {
        let mut conn = self.redis.clone();
        let key = self.session_key(sid);
        let mut uid: Option<String> = redis::cmd("HGET").arg(&key).arg("uid").query_async(&mut conn).await?;
        if let (None, Some(old)) = (&uid, self.legacy(&key)) {
            uid = redis::cmd("HGET").arg(old).arg("uid").query_async(&mut conn).await?;
        }
        Ok(uid.and_then(|u| Uuid::parse_str(&u).ok()))
    }

    /// The live sessions of `uid`, oldest first.
    #[tracing::instrument(name = "sessions.list", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn list(&self, uid: Uuid) -> redis::RedisResult<Vec<SessionInfo>> {
        let mut conn = self.redis.clone();
        let members = self.members(uid).await?;
        let sids: Vec<Uuid> = members.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        const FIELDS: [&str; 5] = ["uid", "created", "last", "abs", "ua"];
        // One lookup per session: in a cluster the sessions live on different nodes.
        let rows = futures::future::try_join_all(sids.iter().map(|sid| {
            let mut conn = conn.clone();
            async move {
                let key = self.session_key(*sid);
                let row: Vec<Option<String>> =
                    redis::cmd("HMGET").arg(&key).arg(&FIELDS).query_async(&mut conn).await?;
                match self.legacy(&key) {
                    Some(old) if row.first().is_some_and(Option::is_none) => {
                        redis::cmd("HMGET").arg(old).arg(&FIELDS).query_async::<Vec<Option<String>>>(&mut conn).await
                    }
                    _ => Ok(row),
                }
            }
        }))
        .await?;
        let idle = self.idle_ttl.as_secs() as i64;
        let mut sessions = Vec::new();
        let mut stale = Vec::new();
        for (sid, row) in sids.into_iter().zip(rows) {
            let field = |i: usize| row.get(i).cloned().flatten();
            let number = |i: usize| field(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or_default();
            if field(0).as_deref() != Some(uid.to_string().as_str()) {
                stale.push(sid.to_string());
                continue;
            }
            let last = number(2);
            sessions.push(SessionInfo {
                id: sid,
                created_at: number(1),
                last_used_at: last,
                expires_at: (last + idle).min(number(3)),
                user_agent: field(4).filter(|ua| !ua.is_empty()),
            });
        }
        if !stale.is_empty() {
            let _: () = redis::cmd("SREM").arg(self.user_key(uid)).arg(stale).query_async(&mut conn).await?;
        }
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    /// Publishes a live account notice ([`gatehouse_common::live`]) on `subject`.
    pub async fn announce_live(&self, subject: &str, user_id: Uuid, kind: gatehouse_common::live::LiveKind) {
        gatehouse_common::live::publish(&self.nats, &self.signer, subject, user_id, kind).await;
    }

    /// Publishes a revocation notice. Best effort: the Redis record is the
    /// source of truth, the notice only makes gateways learn sooner.
    #[tracing::instrument(name = "sessions.announce", skip_all, fields(otel.kind = "producer", messaging.system = "nats"))]
    async fn announce(&self, sid: Uuid, user_id: Uuid, reason: RevokeReason) {
        let notice =
            RevocationNotice { sid, user_id, reason: reason.as_str(), revoked_at: chrono::Utc::now().timestamp() };
        let payload = serde_json::to_vec(&notice).expect("notice serialises");
        let headers = self.signer.headers(&self.subject, &payload);
        if let Err(error) = self.nats.publish_with_headers(self.subject.clone(), headers, payload.into()).await {
            tracing::warn!(%sid, error = %error, "could not publish the revocation notice");
        }
    }
}
