//! Gateway rate limits: per caller (the user id when authenticated, the
//! client address otherwise) over all operations, and per caller and
//! operation name for the operations configured. A refused request gets
//! HTTP 429 with `Retry-After` and `extensions.code = RATE_LIMITED` before
//! any subgraph is called.
//!
//! The algorithm is GCRA (a token bucket kept as one timestamp per key): a
//! limit of N per window lets N requests through at once and then one every
//! window ÷ N. The state is in this gateway's memory, or in Redis (one key
//! per caller and limit, updated by a script) when several gateways must
//! share the budget.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use http::HeaderMap;

use crate::error::{codes, GraphQLError, RequestError};

/// Where rate-limit state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimitStore {
    /// In this gateway's memory: each gateway has its own budget.
    Memory,
    /// In Redis (`REDIS_URL`, keys under `REDIS_KEY_PREFIX`): every gateway
    /// on the same Redis shares one budget per caller.
    Redis,
}

/// Rate-limit settings.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway rate limits")]
pub struct RateLimitConfig {
    /// Most operations one caller may send per window, over all
    /// operations; 0 means no limit. Default 0.
    #[arg(id = "gateway-rate-limit", long = "rate-limit", env = "GATEWAY_RATE_LIMIT", default_value_t = 0)]
    pub per_caller: u64,

    /// Most operations of one name a caller may send per window, as
    /// `OPERATION=N`, repeatable (comma-separated in the environment), for
    /// example `Login=10`. The name is that of the operation that runs.
    /// Default: none.
    #[arg(
        id = "gateway-rate-limit-operation",
        long = "rate-limit-operation",
        env = "GATEWAY_RATE_LIMIT_OPERATIONS",
        value_delimiter = ','
    )]
    pub per_operation: Vec<String>,

    /// The window of the limits, in seconds. Default 60.
    #[arg(
        id = "gateway-rate-limit-window-secs",
        long = "rate-limit-window-secs",
        env = "GATEWAY_RATE_LIMIT_WINDOW_SECS",
        default_value_t = 60
    )]
    pub window_secs: u64,

    /// Where the limits' state is kept: `memory` (each gateway its own) or
    /// `redis` (shared by every gateway on the same Redis). Default: memory.
    #[arg(
        id = "gateway-rate-limit-store",
        long = "rate-limit-store",
        env = "GATEWAY_RATE_LIMIT_STORE",
        value_enum,
        default_value = "memory"
    )]
    pub store: RateLimitStore,

    /// How many proxies in front of the gateway append to
    /// `X-Forwarded-For`: anonymous callers are told apart by the address
    /// that many entries from its end (0, or a shorter chain: the
    /// connection's own address), as the auth subgraph's
    /// `AUTH_TRUSTED_PROXY_HOPS`. Default 0.
    #[arg(
        id = "gateway-rate-limit-proxy-hops",
        long = "rate-limit-proxy-hops",
        env = "GATEWAY_RATE_LIMIT_PROXY_HOPS",
        default_value_t = 0
    )]
    pub proxy_hops: usize,
}

impl Default for RateLimitConfig {
    /// The same values as the flags' defaults (a config test checks they agree).
    fn default() -> Self {
        Self { per_caller: 0, per_operation: Vec::new(), window_secs: 60, store: RateLimitStore::Memory, proxy_hops: 0 }
    }
}

/// One limit: `burst` requests at once, then one per `interval`.
#[derive(Debug, Clone, Copy)]
struct Quota {
    interval: Duration,
    /// How far ahead of now the bucket's timestamp may run: (N - 1) intervals.
    tolerance: Duration,
}

impl Quota {
    fn new(requests: u64, window: Duration) -> Self {
        let interval = window / u32::try_from(requests.max(1)).unwrap_or(u32::MAX);
        Self { interval, tolerance: interval * u32::try_from(requests.saturating_sub(1)).unwrap_or(u32::MAX) }
    }
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKey {
    User(String),
    Address(IpAddr),
    /// No address known (requests not from a socket, as in tests).
    Unknown,
}

impl CallerKey {
    /// The caller: the authenticated user, else the client address, taken
    /// from `X-Forwarded-For` behind `proxy_hops` trusted proxies as the auth
    /// subgraph takes it ([`gatehouse_common::http::client_ip`]).
    pub fn of(user_id: Option<String>, peer: Option<IpAddr>, headers: &HeaderMap, proxy_hops: usize) -> Self {
        match (user_id, peer) {
            (Some(user), _) => Self::User(user),
            (None, Some(peer)) => Self::Address(gatehouse_common::http::client_ip(headers, peer, proxy_hops)),
            (None, None) => Self::Unknown,
        }
    }

    fn label(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Address(address) => format!("ip:{address}"),
            Self::Unknown => "unknown".to_owned(),
        }
    }
}

/// The gateway's rate limits, compiled from [`RateLimitConfig`].
pub struct RateLimits {
    per_caller: Option<Quota>,
    per_operation: hashbrown::HashMap<String, Quota>,
    proxy_hops: usize,
    store: Store,
}

/// Theoretical arrival times, in nanoseconds since `epoch`, by key.
struct Buckets {
    epoch: Instant,
    buckets: moka::sync::Cache<String, Arc<AtomicU64>>,
}

impl Buckets {
    fn new(window: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            buckets: moka::sync::Cache::builder().max_capacity(1_000_000).time_to_idle(window).build(),
        }
    }

    fn take(&self, key: String, quota: Quota) -> Duration {
        let bucket = self.buckets.get_with(key, || Arc::new(AtomicU64::new(0)));
        gcra(&bucket, self.epoch.elapsed(), quota)
    }
}

enum Store {
    Memory(Buckets),
    /// Shared through Redis; while Redis cannot answer, each gateway counts
    /// in its own buckets rather than refusing everyone or no one.
    Redis {
        connection: gatehouse_common::redis_conn::RedisConn,
        prefix: String,
        script: redis::Script,
        fallback: Buckets,
    },
}

/// GCRA in Redis, on the server's clock: returns 0 when the request may go,
/// else the microseconds to wait. One key, so it works on Redis Cluster.
const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1)
return 0
";

impl RateLimits {
    /// `None` when no limit is configured.
    pub async fn build(
        config: &RateLimitConfig,
        shared: Option<&gatehouse_common::settings::SharedSettings>,
    ) -> anyhow::Result<Option<Self>> {
        if config.window_secs == 0 {
            bail!("GATEWAY_RATE_LIMIT_WINDOW_SECS must be positive");
        }
        let window = Duration::from_secs(config.window_secs);
        let mut per_operation = hashbrown::HashMap::new();
        for raw in config.per_operation.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let (name, n) = raw
                .split_once('=')
                .with_context(|| format!("GATEWAY_RATE_LIMIT_OPERATIONS: {raw:?} must look like OPERATION=N"))?;
            let n: u64 = n.trim().parse().ok().filter(|&n| n > 0).with_context(|| {
                format!("GATEWAY_RATE_LIMIT_OPERATIONS: the limit of {name:?} must be a positive number")
            })?;
            per_operation.insert(name.trim().to_owned(), Quota::new(n, window));
        }
        let per_caller = (config.per_caller > 0).then(|| Quota::new(config.per_caller, window));
        if per_caller.is_none() && per_operation.is_empty() {
            return Ok(None);
        }
        let store = match config.store {
            RateLimitStore::Memory => Store::Memory(Buckets::new(window)),
            RateLimitStore::Redis => {
                let shared = shared.context("GATEWAY_RATE_LIMIT_STORE=redis needs REDIS_URL")?;
                Store::Redis {
                    connection: gatehouse_common::infra::redis(&shared.redis()).await?,
                    prefix: format!("{}ratelimit:", shared.redis_key_prefix),
                    script: redis::Script::new(GCRA_SCRIPT),
                    fallback: Buckets::new(window),
                }
            }
        };
        Ok(Some(Self { per_caller, per_operation, proxy_hops: config.proxy_hops, store }))
    }

    pub fn proxy_hops(&self) -> usize {
        self.proxy_hops
    }

    /// Counts a request against the caller's overall limit.
    pub async fn check_caller(&self, caller: &CallerKey) -> Result<(), RequestError> {
        match self.per_caller {
            Some(quota) => self.take(format!("all:{}", caller.label()), quota).await,
            None => Ok(()),
        }
    }

    /// Counts a request against the limit of the operation it runs, if any.
    pub async fn check_operation(&self, caller: &CallerKey, operation: Option<&str>) -> Result<(), RequestError> {
        let Some((name, &quota)) = operation.and_then(|name| self.per_operation.get_key_value(name)) else {
            return Ok(());
        };
        self.take(format!("op:{name}:{}", caller.label()), quota).await
    }

    async fn take(&self, key: String, quota: Quota) -> Result<(), RequestError> {
        let wait = match &self.store {
            Store::Memory(buckets) => buckets.take(key, quota),
            Store::Redis { connection, prefix, script, fallback } => {
                let mut connection = connection.clone();
                let shared: Result<u64, _> = script
                    .key(format!("{prefix}{key}"))
                    .arg(quota.interval.as_micros() as u64)
                    .arg(quota.tolerance.as_micros() as u64)
                    .invoke_async(&mut connection)
                    .await;
                match shared {
                    Ok(micros) => Duration::from_micros(micros),
                    Err(error) => {
                        metrics::counter!("gateway_rate_limit_store_errors_total").increment(1);
                        tracing::warn!(%error, "the rate-limit store in Redis failed; counting in this gateway meanwhile");
                        fallback.take(key, quota)
                    }
                }
            }
        };
        if wait.is_zero() {
            return Ok(());
        }
        metrics::counter!("gateway_rate_limited_total").increment(1);
        let seconds = wait.as_millis().div_ceil(1000).max(1) as u64;
        Err(RequestError::RateLimited(
            GraphQLError::new("Too many requests; try again later", codes::RATE_LIMITED)
                .with_extension("retryAfter", serde_json::Value::from(seconds)),
            seconds,
        ))
    }
}

/// One GCRA step on an in-memory bucket at time `now`: zero when the
/// request may go (and the bucket moves on), else how long to wait.
fn gcra(bucket: &AtomicU64, now: Duration, quota: Quota) -> Duration {
    let now = now.as_nanos() as u64;
    let (interval, tolerance) = (quota.interval.as_nanos() as u64, quota.tolerance.as_nanos() as u64);
    let mut current = bucket.load(Ordering::Acquire);
    loop {
        let tat = current.max(now);
        if tat - now > tolerance {
            return Duration::from_nanos(tat - now - tolerance);
        }
        match bucket.compare_exchange_weak(current, tat + interval, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Duration::ZERO,
            Err(actual) => current = actual,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_one_per_interval() {
        let quota = Quota::new(3, Duration::from_secs(3));
        let bucket = AtomicU64::new(0);
        let at = |secs: f64| Duration::from_secs_f64(secs);
        let start = 10.0;
        for _ in 0..3 {
            assert_eq!(gcra(&bucket, at(start), quota), Duration::ZERO);
        }
        let wait = gcra(&bucket, at(start), quota);
        assert_eq!(wait, Duration::from_secs(1), "the fourth waits one interval");
        assert!(!gcra(&bucket, at(start + 0.5), quota).is_zero());
        assert!(gcra(&bucket, at(start + 1.0), quota).is_zero(), "one more after an interval");
        assert!(!gcra(&bucket, at(start + 1.0), quota).is_zero());
        // After a whole window idle, the whole burst again.
        for _ in 0..3 {
            assert!(gcra(&bucket, at(start + 10.0), quota).is_zero());
        }
    }

    #[test]
    fn callers_are_users_or_addresses_behind_the_configured_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(CallerKey::of(Some("u1".into()), Some(peer), &headers, 1), CallerKey::User("u1".into()));
        assert_eq!(CallerKey::of(None, Some(peer), &headers, 0), CallerKey::Address(peer));
        assert_eq!(CallerKey::of(None, Some(peer), &headers, 1), CallerKey::Address("198.51.100.7".parse().unwrap()));
        assert_eq!(CallerKey::of(None, Some(peer), &headers, 2), CallerKey::Address("203.0.113.9".parse().unwrap()));
        // A chain shorter than the proxies configured: nothing in it is trusted.
        assert_eq!(CallerKey::of(None, Some(peer), &headers, 9), CallerKey::Address(peer));
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(CallerKey::of(None, Some(peer), &headers, 1), CallerKey::Address(peer));
        assert_eq!(CallerKey::of(None, None, &HeaderMap::new(), 0), CallerKey::Unknown);
    }
}
