//! Connecting to PostgreSQL, Redis and NATS, with one clear line when one is missing.
//!
//! Start-up must not end in a panic or a backtrace when a backing service is
//! down: each connector returns an [`Unreachable`] whose `Display` names the
//! service, the URL it tried (password hidden) and how to start it.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use url::Url;

/// How long start-up waits for a backing service before calling it unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a request waits for a database connection, and for a Redis
/// answer, before it is answered SERVICE_UNAVAILABLE: well inside a client's
/// patience and the gateway's subgraph timeout.
pub const REQUEST_DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(2);

/// What a database error means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// The server is unreachable, restarting, overloaded or out of
    /// connections: retryable, `SERVICE_UNAVAILABLE`.
    Unavailable,
    /// A text value held a NUL byte, which PostgreSQL cannot store: the
    /// client's input, `BAD_USER_INPUT`.
    NulInInput,
    Other,
}

/// Sorts a database error into what the client is told.
pub fn classify_database_error(error: &sqlx::Error) -> DatabaseFailure {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => DatabaseFailure::Unavailable,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_byte_sequence / character_not_in_repertoire: a NUL in text.
            Some("22021") => DatabaseFailure::NulInInput,
            // Class 08: connection exceptions; 57P0x: the server shutting down
            // or starting; 53300: too many connections; 40001/40P01 would be
            // retryable too, but are answered where a transaction is retried.
            Some(code) if code.starts_with("08") || code.starts_with("57P") || code == "53300" => {
                DatabaseFailure::Unavailable
            }
            _ => DatabaseFailure::Other,
        },
        _ => DatabaseFailure::Other,
    }
}

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
    fn new(service: &'static str, compose_service: &'static str, url: &str, reason: impl ToString) -> Self {
        Self { service, compose_service, url: redact(url), reason: reason.to_string() }
    }
}

/// Replaces the password of a URL with `***` so it can be printed.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<invalid URL>".to_owned(),
    }
}

/// Connects to the PostgreSQL database at `url`, creating the database first
/// when the server is up but the database does not exist yet.
pub async fn postgres(url: &str, max_connections: u32) -> Result<PgPool, Unreachable> {
    let unreachable = |reason: String| Unreachable::new("PostgreSQL", "postgres", url, reason);
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| unreachable(e.to_string()))?;
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    let pool_options = PgPoolOptions::new().max_connections(max_connections).acquire_timeout(CONNECT_TIMEOUT);

    // Start-up waits longer for the first connection than requests later do.
    let connected = match pool_options.clone().connect_with(options.clone()).await {
        Ok(pool) => Ok(pool),
        Err(error) if is_missing_database(&error) => {
            create_database(&options).await.map_err(|e| unreachable(e.to_string()))?;
            pool_options.connect_with(options).await.map_err(|e| unreachable(e.to_string()))
        }
        Err(error) => Err(unreachable(error.to_string())),
    }?;
    Ok(with_request_timeout(connected))
}

/// The pool as requests use it: a connection within
/// [`REQUEST_DEPENDENCY_TIMEOUT`] or an error that says the database is
/// unavailable.
fn with_request_timeout(pool: PgPool) -> PgPool {
    let options = pool.options().clone().acquire_timeout(REQUEST_DEPENDENCY_TIMEOUT);
    let connect = pool.connect_options().as_ref().clone();
    let fast = options.connect_lazy_with(connect);
    // Hand over: the lazy pool opens its own connections on demand; the
    // start-up pool only proved the server answers.
    drop(pool);
    fast
}

fn is_missing_database(error: &sqlx::Error) -> bool {
    // 3D000: invalid_catalog_name, what PostgreSQL answers for an unknown database.
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000"))
}

async fn create_database(options: &PgConnectOptions) -> Result<(), sqlx::Error> {
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let statement = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
    match sqlx::query(&statement).execute(&mut admin).await {
        Ok(_) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
        // 42P04: duplicate_database, another process created it first.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P04") => Ok(()),
        Err(error) => Err(error),
    }
}

/// Drops a database; tests use it to clean up after themselves.
pub async fn drop_database(url: &str) -> Result<(), sqlx::Error> {
    let options: PgConnectOptions = url.parse()?;
    let name = options.get_database().unwrap_or_default().to_owned();
    let mut admin = options.database("postgres").connect().await?;
    let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", name.replace('"', "\"\""));
    sqlx::query(&statement).execute(&mut admin).await?;
    Ok(())
}

/// Connects to Redis and checks it answers `PING`.
pub async fn redis(url: &str) -> Result<redis::aio::ConnectionManager, Unreachable> {
    let unreachable = |reason: String| Unreachable::new("Redis", "redis", url, reason);
    let client = redis::Client::open(url).map_err(|e| unreachable(e.to_string()))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_number_of_retries(1)
        .set_response_timeout(REQUEST_DEPENDENCY_TIMEOUT);
    let mut manager = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _: String = redis::cmd("PING").query_async(&mut manager).await.map_err(|e| unreachable(e.to_string()))?;
    Ok(manager)
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
    }

    #[tokio::test]
    async fn a_closed_port_gives_one_clear_line() {
        // Port 9 (discard) is closed on this machine and on CI's.
        let error = redis("redis://127.0.0.1:9").await.err().expect("nothing listens on port 9");
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

        let error = postgres("postgres://postgres@127.0.0.1:9/x", 1).await.expect_err("nothing listens on port 9");
        assert!(error.to_string().starts_with("PostgreSQL is not reachable at postgres://postgres@127.0.0.1:9/x"));
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
