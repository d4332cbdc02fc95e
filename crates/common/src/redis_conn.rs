//! One Redis connection type for every deployment shape: a single server,
//! a Redis Cluster, or a primary that Sentinel manages.
//!
//! [`RedisConn`] implements the redis crate's `ConnectionLike`, so commands,
//! pipelines and scripts are written once. What differs is what callers must
//! keep in mind:
//!
//! - In a cluster a script, a `MULTI` block or a multi-key command may only
//!   touch keys of one hash slot. Keys that go together carry the same hash
//!   tag (`{...}`), as [`tagged`] writes them; commands on unrelated keys are
//!   sent one by one (each is routed to its own node).
//! - With Sentinel, the connection follows the primary: an answer that says
//!   the server is gone or read-only (a demoted primary) makes the next
//!   request ask the sentinels where the primary is now. The request that saw
//!   the failure fails (the caller answers SERVICE_UNAVAILABLE); Redis'
//!   replication is asynchronous, so a write acknowledged just before a
//!   failover can be lost (see `subgraphs/auth/README.md` for what that
//!   means for sessions).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisFuture, RedisResult, Value};

/// How Redis is deployed (`REDIS_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RedisMode {
    /// One server (`REDIS_URL` names it).
    #[default]
    Standalone,
    /// A Redis Cluster (`REDIS_URL` lists some of its nodes; the rest are discovered).
    Cluster,
    /// A primary managed by Sentinel (`REDIS_URL` lists the sentinels,
    /// `REDIS_SENTINEL_MASTER` names the primary).
    Sentinel,
}

/// Where Redis is and how it is deployed.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// One URL, or a comma-separated list (cluster seed nodes, sentinels).
    pub url: String,
    pub mode: RedisMode,
    /// The name the sentinels know the primary by (`sentinel` mode).
    pub sentinel_master: Option<String>,
}

impl RedisSettings {
    /// A single server at `url`.
    pub fn standalone(url: impl Into<String>) -> Self {
        Self { url: url.into(), mode: RedisMode::Standalone, sentinel_master: None }
    }

    /// The URLs of [`RedisSettings::url`], each trimmed, empty entries dropped.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|s| !s.is_empty())
    }

    /// Whether keys written by releases before hash tags may still exist and
    /// must be read too: only where those releases ran (never in a cluster,
    /// which they did not support).
    pub fn legacy_keys(&self) -> bool {
        self.mode != RedisMode::Cluster
    }
}

/// A key whose hash slot is decided by `tag` alone: `<prefix><name>:{<tag>}`.
/// Keys with the same tag live on the same cluster node, so one script may
/// touch them together.
pub fn tagged(prefix: &str, name: &str, tag: impl std::fmt::Display) -> String {
    format!("{prefix}{name}:{{{tag}}}")
}

/// The revocation record of session `sid`, which the auth service writes and
/// the gateways check: `<prefix>revoked:sid:{<sid>}`.
pub fn revoked_key(prefix: &str, sid: impl std::fmt::Display) -> String {
    tagged(prefix, "revoked:sid", sid)
}

/// The name releases before hash tags gave a key: the same without braces.
pub fn untagged(key: &str) -> String {
    key.replace(['{', '}'], "")
}

/// A cheap, cloneable connection to Redis in any [`RedisMode`].
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    legacy_keys: bool,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelPrimary>),
}

impl From<ConnectionManager> for RedisConn {
    fn from(manager: ConnectionManager) -> Self {
        Self { inner: Inner::Single(manager), legacy_keys: true }
    }
}

impl RedisConn {
    /// Connects as `settings` say; requests time out after `response_timeout`.
    pub async fn connect(
        settings: &RedisSettings,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<Self> {
        let urls: Vec<&str> = settings.urls().collect();
        if urls.is_empty() {
            return Err((redis::ErrorKind::InvalidClientConfig, "no Redis URL given").into());
        }
        let manager_config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(connect_timeout)
                .set_number_of_retries(1)
                .set_response_timeout(response_timeout)
        };
        let inner = match settings.mode {
            RedisMode::Standalone => {
                if urls.len() > 1 {
                    return Err((
                        redis::ErrorKind::InvalidClientConfig,
                        "a standalone Redis takes one URL; set REDIS_MODE=cluster or sentinel for a list",
                    )
                        .into());
                }
                let client = redis::Client::open(urls[0])?;
                Inner::Single(client.get_connection_manager_with_config(manager_config()).await?)
            }
            RedisMode::Cluster => {
                let client = redis::cluster::ClusterClientBuilder::new(urls)
                    .connection_timeout(connect_timeout)
                    .response_timeout(response_timeout)
                    // A failover takes the cluster about twice its node
                    // timeout; retries follow the new layout within it.
                    .retries(4)
                    .min_retry_wait(100)
                    .max_retry_wait(1000)
                    .build()?;
                Inner::Cluster(client.get_async_connection().await?)
            }
            RedisMode::Sentinel => {
                let master = settings.sentinel_master.clone().ok_or((
                    redis::ErrorKind::InvalidClientConfig,
                    "REDIS_MODE=sentinel needs REDIS_SENTINEL_MASTER, the name the sentinels know the primary by",
                ))?;
                let first = urls[0].into_connection_info()?;
                let node =
                    SentinelNodeConnectionInfo { tls_mode: None, redis_connection_info: Some(first.redis.clone()) };
                let sentinel = SentinelClient::build(urls, master, Some(node), SentinelServerType::Master)?;
                Inner::Sentinel(Arc::new(SentinelPrimary::connect(sentinel, manager_config()).await?))
            }
        };
        Ok(Self { inner, legacy_keys: settings.legacy_keys() })
    }

    /// See [`RedisSettings::legacy_keys`].
    pub fn legacy_keys(&self) -> bool {
        self.legacy_keys
    }

    /// Whether the tagged `key` exists, or, where releases before hash tags
    /// ran, its [`untagged`] name: one `EXISTS` either way.
    pub async fn exists_tagged(&self, key: &str) -> RedisResult<bool> {
        let mut exists = redis::cmd("EXISTS");
        exists.arg(key);
        if self.legacy_keys {
            exists.arg(untagged(key));
        }
        Ok(exists.query_async::<i64>(&mut self.clone()).await? > 0)
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(manager) => manager.req_packed_command(cmd),
            Inner::Cluster(cluster) => cluster.req_packed_command(cmd),
            Inner::Sentinel(primary) => {
                let primary = primary.clone();
                Box::pin(async move {
                    let (generation, mut manager) = primary.current();
                    let answer = manager.req_packed_command(cmd).await;
                    primary.observe(generation, &answer).await;
                    answer
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
            Inner::Sentinel(primary) => {
                let primary = primary.clone();
                Box::pin(async move {
                    let (generation, mut manager) = primary.current();
                    let answer = manager.req_packed_commands(pipeline, offset, count).await;
                    primary.observe(generation, &answer).await;
                    answer
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(manager) => manager.get_db(),
            Inner::Cluster(cluster) => cluster.get_db(),
            Inner::Sentinel(primary) => primary.manager.load().get_db(),
        }
    }
}

/// The connection to the primary the sentinels name, replaced when it stops
/// being the primary.
struct SentinelPrimary {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    config: ConnectionManagerConfig,
    manager: ArcSwap<ConnectionManager>,
    /// Bumped at each replacement, so a burst of failures against one
    /// primary asks the sentinels once.
    generation: AtomicU64,
}

impl SentinelPrimary {
    async fn connect(mut sentinel: SentinelClient, config: ConnectionManagerConfig) -> RedisResult<Self> {
        let client = sentinel.async_get_client().await?;
        let manager = client.get_connection_manager_with_config(config.clone()).await?;
        Ok(Self {
            sentinel: tokio::sync::Mutex::new(sentinel),
            config,
            manager: ArcSwap::from_pointee(manager),
            generation: AtomicU64::new(0),
        })
    }

    fn current(&self) -> (u64, ConnectionManager) {
        let generation = self.generation.load(Ordering::Acquire);
        (generation, ConnectionManager::clone(&self.manager.load()))
    }

    /// After an answer from the connection of `generation`: when it says the
    /// primary is gone or demoted, asks the sentinels for the primary now.
    async fn observe<T>(&self, generation: u64, answer: &RedisResult<T>) {
        let Err(error) = answer else { return };
        if !crate::infra::is_redis_unavailable(error) {
            return;
        }
        let mut sentinel = self.sentinel.lock().await;
        if self.generation.load(Ordering::Acquire) != generation {
            return; // another request replaced it meanwhile
        }
        let replaced = async {
            let client = sentinel.async_get_client().await?;
            client.get_connection_manager_with_config(self.config.clone()).await
        }
        .await;
        match replaced {
            Ok(manager) => {
                self.manager.store(Arc::new(manager));
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::warn!(%error, "Redis primary unavailable; reconnected to the primary the sentinels name");
            }
            Err(lookup) => tracing::warn!(%error, %lookup, "Redis primary unavailable and no new primary yet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_keys_hash_on_their_tag_alone() {
        let sid = "0b4a5c1e-0000-4000-8000-000000000001";
        let session = tagged("gatehouse:", "session", sid);
        let revoked = tagged("gatehouse:", "revoked:sid", sid);
        assert_eq!(session, format!("gatehouse:session:{{{sid}}}"));
        assert_eq!(revoked, format!("gatehouse:revoked:sid:{{{sid}}}"));
        // Redis hashes what lies between the first `{` and the next `}`.
        let tag =
            |key: &str| key.split_once('{').and_then(|(_, rest)| rest.split_once('}')).map(|(tag, _)| tag.to_owned());
        assert_eq!(tag(&session).as_deref(), Some(sid));
        assert_eq!(tag(&revoked).as_deref(), Some(sid));
    }

    #[test]
    fn a_url_list_is_trimmed_and_legacy_keys_are_read_outside_a_cluster() {
        let settings =
            RedisSettings { url: " redis://a:1, ,redis://b:2".into(), mode: RedisMode::Cluster, sentinel_master: None };
        assert_eq!(settings.urls().collect::<Vec<_>>(), ["redis://a:1", "redis://b:2"]);
        assert!(!settings.legacy_keys());
        assert!(RedisSettings::standalone("redis://a").legacy_keys());
    }

    #[tokio::test]
    async fn settings_that_cannot_work_are_refused_before_connecting() {
        let list = RedisSettings::standalone("redis://127.0.0.1:9,redis://127.0.0.1:10");
        let error =
            RedisConn::connect(&list, Duration::from_millis(200), Duration::from_millis(200)).await.err().unwrap();
        assert!(error.to_string().contains("REDIS_MODE=cluster"), "{error}");
        let nameless = RedisSettings { mode: RedisMode::Sentinel, ..RedisSettings::standalone("redis://127.0.0.1:9") };
        let error =
            RedisConn::connect(&nameless, Duration::from_millis(200), Duration::from_millis(200)).await.err().unwrap();
        assert!(error.to_string().contains("REDIS_SENTINEL_MASTER"), "{error}");
        let empty = RedisSettings::standalone(" , ");
        assert!(RedisConn::connect(&empty, Duration::from_millis(200), Duration::from_millis(200)).await.is_err());
    }
}
