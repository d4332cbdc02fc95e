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

/// A backing service that could not be reached at start-up.
#[derive(Debug, thiserror::Error)]
#[error("{service} is not reachable at {url} ({reason}); start it with `docker compose up -d {compose_service}`")]
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

    match pool_options.clone().connect_with(options.clone()).await {
        Ok(pool) => Ok(pool),
        Err(error) if is_missing_database(&error) => {
            create_database(&options).await.map_err(|e| unreachable(e.to_string()))?;
            pool_options.connect_with(options).await.map_err(|e| unreachable(e.to_string()))
        }
        Err(error) => Err(unreachable(error.to_string())),
    }
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
    let config =
        redis::aio::ConnectionManagerConfig::new().set_connection_timeout(CONNECT_TIMEOUT).set_number_of_retries(1);
    let mut manager = tokio::time::timeout(CONNECT_TIMEOUT, client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _: String = redis::cmd("PING").query_async(&mut manager).await.map_err(|e| unreachable(e.to_string()))?;
    Ok(manager)
}

/// Connects to NATS. JetStream availability is checked by whoever needs it.
pub async fn nats(url: &str) -> Result<async_nats::Client, Unreachable> {
    let unreachable = |reason: String| Unreachable::new("NATS", "nats", url, reason);
    let options = async_nats::ConnectOptions::new().connection_timeout(CONNECT_TIMEOUT);
    tokio::time::timeout(CONNECT_TIMEOUT, options.connect(url))
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
        assert!(line.contains("docker compose up -d redis"), "{line}");
        assert!(!line.contains('\n'));

        let error = nats("nats://127.0.0.1:9").await.expect_err("nothing listens on port 9");
        assert!(error.to_string().starts_with("NATS is not reachable at nats://127.0.0.1:9"));

        let error = postgres("postgres://postgres@127.0.0.1:9/x", 1).await.expect_err("nothing listens on port 9");
        assert!(error.to_string().starts_with("PostgreSQL is not reachable at postgres://postgres@127.0.0.1:9/x"));
    }
}
