//! Connecting to Redis and NATS, with one clear line when one is missing
//! (PostgreSQL: `gatehouse-store`).
//!
//! Start-up must not end in a panic or a backtrace when a backing service is
//! down: each connector returns an [`Unreachable`] whose `Display` names the
//! service, the URL it tried (password hidden) and how to start it.

use std::time::Duration;

use url::Url;

/// How long start-up waits for a backing service before calling it unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a database connection, and for a Redis
/// answer, before it is answered SERVICE_UNAVAILABLE: well inside a client's
/// patience and the gateway's subgraph timeout.
pub const REQUEST_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a Redis error means Redis is unreachable or not serving now.
pub fn is_redis_unavailable(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::ReadOnly
                // A cluster moving slots (a failover): the client's retries
                // ran out before it learnt the new layout.
                | redis::ErrorKind::Moved
                | redis::ErrorKind::Ask
        )
}

/// A backing service that could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{service} is not reachable at {url} ({reason}); start it (at the development default: `scripts/services ensure`, or `docker compose -f compose.dev.yaml up -d {compose_service}`)")]
pub struct Unreachable {
    pub service: &'static str,
    pub compose_service: &'static str,
    /// The URL tried, with any password replaced by `***`.
    pub url: String,
    pub reason: String,
}

impl Unreachable {
    /// `service` could not be reached at `url` (its password is hidden) for
    /// `reason`; `compose_service` names it in compose.dev.yaml.
    pub fn new(service: &'static str, compose_service: &'static str, url: &str, reason: impl ToString) -> Self {
        Self { service, compose_service, url: redact(url), reason: reason.to_string() }
    }
}

/// Replaces the password of a URL, or of each URL of a comma-separated
/// list, with `***` so it can be printed.
pub fn redact(url: &str) -> String {
    if url.contains(',') {
        return url.split(',').map(|one| redact(one.trim())).collect::<Vec<_>>().join(",");
    }
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// Connects to Redis as `settings` say (one server, a cluster, or the
/// primary the sentinels name) and checks it answers `PING`.
pub async fn redis(settings: &crate::redis_conn::RedisSettings) -> Result<crate::redis_conn::RedisConn, Unreachable> {
    let unreachable = |reason: String| Unreachable::new("Redis", "redis", &settings.url, reason);
    let mut connection = tokio::time::timeout(
        CONNECT_TIMEOUT,
        crate::redis_conn::RedisConn::connect(settings, CONNECT_TIMEOUT, REQUEST_DEPENDENCY_TIMEOUT),
    )
    .await
    .map_err(|_| unreachable("timed out".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let _: String = redis::cmd("PING").query_async(&mut connection).await.map_err(|e| unreachable(e.to_string()))?;
    Ok(connection)
}

/// Connects to NATS (any of the listed servers; the client reconnects across
/// them), with the configured credentials and TLS. JetStream availability is
/// checked by whoever needs it.
pub async fn nats(settings: &crate::settings::NatsSettings) -> Result<async_nats::Client, Unreachable> {
    use crate::settings::NatsAuth;
    use secrecy::ExposeSecret;
    let unreachable = |reason: String| Unreachable::new("NATS", "nats", &settings.url, reason);
    let servers: Vec<&str> = settings.servers().collect();
    for url in &servers {
        url.parse::<async_nats::ServerAddr>().map_err(|e| unreachable(format!("{url:?} is not a NATS URL: {e}")))?;
    }
    if servers.is_empty() {
        return Err(unreachable("no server URL given".into()));
    }
    let mut options = match &settings.auth {
        NatsAuth::None => async_nats::ConnectOptions::new(),
        NatsAuth::CredsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|e| unreachable(format!("cannot read the credentials file {}: {e}", path.display())))?,
        NatsAuth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.expose_secret().to_owned()),
        NatsAuth::UserPassword(user, password) => {
            async_nats::ConnectOptions::with_user_and_password(user.clone(), password.expose_secret().to_owned())
        }
        NatsAuth::Token(token) => async_nats::ConnectOptions::with_token(token.expose_secret().to_owned()),
    };
    options = options.connection_timeout(CONNECT_TIMEOUT).require_tls(settings.tls_required);
    if let Some(ca) = &settings.tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    if let Some((cert, key)) = &settings.tls_client {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    tokio::time::timeout(CONNECT_TIMEOUT, options.connect(servers.as_slice()))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_message() {
        assert_eq!(redact("postgres://app:hunter2@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("::not a url"), "<invalid URL>");
        assert_eq!(redact("redis://:pw@a:1, redis://b:2"), "redis://:***@a:1,redis://b:2");
    }

    #[tokio::test]
    async fn a_closed_port_gives_one_clear_line() {
        // Port 9 (discard) is closed on this machine and on CI's.
        let error = redis(&crate::redis_conn::RedisSettings::standalone("redis://127.0.0.1:9"))
            .await
            .err()
            .expect("nothing listens on port 9");
        let line = error.to_string();
        assert!(line.starts_with("Redis is not reachable at redis://127.0.0.1:9"), "{line}");
        assert!(
            line.contains("`scripts/services ensure`, or `docker compose -f compose.dev.yaml up -d redis`"),
            "{line}"
        );
        assert!(!line.contains('\n'));

        let error = nats(&crate::settings::NatsSettings::plain("nats://127.0.0.1:9"))
            .await
            .expect_err("nothing listens on port 9");
        assert!(error.to_string().starts_with("NATS is not reachable at nats://127.0.0.1:9"));
    }

    #[tokio::test]
    async fn nats_credentials_are_used_and_a_wrong_one_is_named() {
        use crate::settings::{NatsAuth, NatsSettings};
        use secrecy::SecretString;
        let server = crate::testing::PrivateNats::start_with(&["--user", "gatehouse", "--pass", "s3cret"]).await;
        let with = |auth| NatsSettings { auth, ..NatsSettings::plain(server.url()) };
        let right = with(NatsAuth::UserPassword("gatehouse".into(), SecretString::from("s3cret".to_owned())));
        let client = nats(&right).await.expect("the right password connects");
        client.publish("t.ok", "x".into()).await.unwrap();
        client.flush().await.unwrap();
        for wrong in [NatsAuth::None, NatsAuth::UserPassword("gatehouse".into(), SecretString::from("nope".to_owned()))]
        {
            let error = nats(&with(wrong)).await.expect_err("refused").to_string();
            assert!(error.starts_with(&format!("NATS is not reachable at {}", server.url())), "{error}");
            assert!(error.to_lowercase().contains("auth"), "{error}");
        }
        // A list of servers: one of them answering is enough.
        let list = NatsSettings { url: format!("nats://127.0.0.1:9, {}", server.url()), ..right };
        nats(&list).await.expect("the second server of the list answers");
    }
}
