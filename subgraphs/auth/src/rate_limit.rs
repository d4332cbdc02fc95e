//! Fixed-window rate limits in Redis.
//!
//! Every attempt counts (an aliased batch of 50 logins is 50 attempts), the
//! counters of one check move together in one Lua call, and a window never
//! grows with more attempts, so a limit can delay an account but never lock it.
//!
//! Keys: `<p>rl:<kind>:<subject>`, e.g. `<p>rl:login:account:<account id>` (or
//! `<p>rl:login:account:<login>` when no account matches),
//! `<p>rl:login:ip:203.0.113.9`, `<p>rl:verify:<email>`, `<p>rl:resend:<email>`,
//! `<p>rl:reset:<email>`, `<p>rl:mail:ip:<ip>`, `<p>rl:password:<account id>`
//! (current-password checks of `changePassword` and `deleteAccount`).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;

use crate::settings::Limit;

/// Increments every counter; answers the milliseconds until the most
/// exhausted one resets, or 0 when all are within their limits.
const HIT: &str = r#"
local retry = 0
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local max = tonumber(ARGV[2 * i])
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, window) end
  if n > max then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    if ttl > retry then retry = ttl end
  end
end
return retry
"#;

/// A limit was hit; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
    hit: Arc<Script>,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, prefix: String) -> Self {
        Self { redis, prefix, hit: Arc::new(Script::new(HIT)) }
    }

    /// Counts one attempt against each `(key, limit)`; keys are relative to `<p>rl:`.
    #[tracing::instrument(name = "rate_limit.hit", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn hit(&self, checks: &[(String, Limit)]) -> redis::RedisResult<Result<(), Exceeded>> {
        let mut invocation = self.hit.prepare_invoke();
        for (key, limit) in checks {
            invocation.key(format!("{}rl:{key}", self.prefix));
            invocation.arg(limit.window.as_millis() as u64).arg(limit.max);
        }
        let retry_ms: u64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(if retry_ms == 0 { Ok(()) } else { Err(Exceeded { retry_after: Duration::from_millis(retry_ms) }) })
    }

    /// Forgets the counter of `key` (a successful login clears its account's failures).
    #[tracing::instrument(name = "rate_limit.clear", skip_all, fields(otel.kind = "client", db.system.name = "redis"))]
    pub async fn clear(&self, key: &str) -> redis::RedisResult<()> {
        redis::cmd("DEL").arg(format!("{}rl:{key}", self.prefix)).query_async(&mut self.redis.clone()).await
    }
}
