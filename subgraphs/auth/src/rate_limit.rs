//! Fixed-window rate limits in Redis.
//!
//! Every attempt counts (an aliased batch of 50 logins is 50 attempts), each
//! counter moves in one Lua call (the counters of one check are all counted,
//! each on its own call, since in a Redis Cluster they live on different
//! nodes), and a window never grows with more attempts, so a limit can delay
//! an account but never lock it.
//!
//! Keys: `<p>rl:<kind>:<subject>`, e.g. `<p>rl:login:account:<account id>` (or
//! `<p>rl:login:account:<login>` when no account matches),
//! `<p>rl:login:ip:203.0.113.9`, `<p>rl:verify:<email>`, `<p>rl:resend:<email>`,
//! `<p>rl:reset:<email>`, `<p>rl:mail:ip:<ip>`, `<p>rl:password:<account id>`
//! (current-password checks of `changePassword`, `deleteAccount` and
//! `disableMfa`), `<p>rl:mfa:<account id>` (second-factor codes).

use std::sync::Arc;
use std::time::Duration;

use gatehouse_common::redis_conn::RedisConn;
use redis::Script;

use crate::settings::Limit;

/// Increments the counter; answers the milliseconds until it resets when it
/// is past its limit, or 0 when it is within it.
const HIT: &str = r#"
local window = tonumber(ARGV[1])
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], window) end
if n <= tonumber(ARGV[2]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return ttl
"#;

/// A limit was hit; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: RedisConn,
    prefix: String,
    hit: Arc<Script>,
}

impl RateLimiter {
    pub fn new(redis: RedisConn, prefix: String) -> Self {
        Self { redis, prefix, hit: Arc::new(Script::new(HIT)) }
    }

    /// Counts one attempt against each `(key, limit)`; keys are relative to `<p>rl:`.
    #[tracing::instrument(name = "rate_limit.hit", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn hit(&self, checks: &[(String, Limit)]) -> redis::RedisResult<Result<(), Exceeded>> {
        let counted = futures::future::try_join_all(checks.iter().map(|(key, limit)| {
            let mut invocation = self.hit.key(format!("{}rl:{key}", self.prefix));
            invocation.arg(limit.window.as_millis() as u64).arg(limit.max);
            let mut redis = self.redis.clone();
            async move { invocation.invoke_async::<u64>(&mut redis).await }
        }))
        .await?;
        let retry_ms = counted.into_iter().max().unwrap_or(0);
        Ok(if retry_ms == 0 { Ok(()) } else { Err(Exceeded { retry_after: Duration::from_millis(retry_ms) }) })
    }

    /// Marks `key` used for `ttl`: `true` the first time, `false` while the
    /// mark lasts (single-use tokens such as an `mfaToken`). Keys are
    /// relative to `<p>once:`.
    #[tracing::instrument(name = "rate_limit.claim_once", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn claim_once(&self, key: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}once:{key}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(set.is_some())
    }

    /// Keeps `value` under `key` for `ttl`, for one [`RateLimiter::take`]
    /// (the record of a started outside sign-in). Keys are relative to `<p>stash:`.
    pub async fn stash(&self, key: &str, value: &str, ttl: Duration) -> redis::RedisResult<()> {
        redis::cmd("SET")
            .arg(format!("{}stash:{key}", self.prefix))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .query_async(&mut self.redis.clone())
            .await
    }

    /// The value [`RateLimiter::stash`] kept under `key`, removed as it is read:
    /// a second take finds nothing.
    pub async fn take(&self, key: &str) -> redis::RedisResult<Option<String>> {
        redis::cmd("GETDEL").arg(format!("{}stash:{key}", self.prefix)).query_async(&mut self.redis.clone()).await
    }

    /// Whether [`RateLimiter::claim_once`] already marked `key`.
    pub async fn is_claimed(&self, key: &str) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS").arg(format!("{}once:{key}", self.prefix)).query_async(&mut self.redis.clone()).await
    }

    /// Forgets the counter of `key` (a successful login clears its account's failures).
    #[tracing::instrument(name = "rate_limit.clear", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn clear(&self, key: &str) -> redis::RedisResult<()> {
        redis::cmd("DEL").arg(format!("{}rl:{key}", self.prefix)).query_async(&mut self.redis.clone()).await
    }
}
