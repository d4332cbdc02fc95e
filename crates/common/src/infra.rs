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

/// Sorts a database error into what the client is told. An error that says
/// the server has become read-only (a primary demoted by a failover) also
/// retires every connection opened before it: see [`postgres`].
pub fn classify_database_error(error: &sqlx::Error) -> DatabaseFailure {
    if is_read_only(error) {
        failover::seen();
        return DatabaseFailure::Unavailable;
    }
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

/// SQLSTATE 25006, read_only_sql_transaction: a write reached a server that
/// is (now) a standby.
pub fn is_read_only(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("25006"))
}

/// When this process last saw a server refuse a write as read-only. Pools
/// drop connections older than that instead of handing them out again, so
/// after a failover the next requests connect afresh (and DNS, a proxy or
/// the URL's host list lead them to the new primary).
pub mod failover {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static EPOCH: OnceLock<Instant> = OnceLock::new();
    /// Milliseconds after [`EPOCH`] of the last read-only refusal, plus one
    /// (0: never).
    static SEEN: AtomicU64 = AtomicU64::new(0);

    fn epoch() -> Instant {
        *EPOCH.get_or_init(Instant::now)
    }

    /// Records a read-only refusal now.
    pub fn seen() {
        let at = epoch().elapsed().as_millis() as u64 + 1;
        if SEEN.swap(at, Ordering::AcqRel) == 0 {
            tracing::warn!("PostgreSQL refused a write as read-only (failover?); reconnecting");
        }
        metrics::counter!("database_read_only_refusals_total").increment(1);
    }

    /// Whether a connection of this `age` was opened before the last refusal.
    pub fn predates_refusal(age: Duration) -> bool {
        let seen = SEEN.load(Ordering::Acquire);
        if seen == 0 {
            return false;
        }
        let refused_at = epoch() + Duration::from_millis(seen - 1);
        Instant::now().checked_sub(age).is_some_and(|opened| opened <= refused_at)
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
    fn new(service: &'static str, compose_service: &'static str, url: &str, reason: impl ToString) -> Self {
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

/// Connects to the PostgreSQL database at `url`, creating the database first
/// when the server is up but the database does not exist yet.
pub async fn postgres(url: &str, max_connections: u32) -> Result<PgPool, Unreachable> {
    let unreachable = |reason: String| Unreachable::new("PostgreSQL", "postgres", url, reason);
    let options: PgConnectOptions = url.parse().map_err(|e: sqlx::Error| unreachable(e.to_string()))?;
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    let pool_options = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(CONNECT_TIMEOUT)
        // A new connection that lands on a standby (the old primary, before
        // DNS or the proxy moves) is refused, so the pool tries again.
        .after_connect(|connection, _| {
            Box::pin(async move {
                let read_only: String = sqlx::query_scalar("SHOW transaction_read_only").fetch_one(connection).await?;
                if read_only == "on" {
                    failover::seen();
                    // An I/O error, as a refused connection would be: the
                    // caller answers SERVICE_UNAVAILABLE and tries again.
                    return Err(sqlx::Error::Io(std::io::Error::other(
                        "the server is read-only (a standby, not the primary)",
                    )));
                }
                Ok(())
            })
        })
        .before_acquire(|_, meta| Box::pin(async move { Ok(!failover::predates_refusal(meta.age)) }));

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
    async fn after_a_failover_read_only_connections_are_retired_and_standbys_refused() {
        let name = format!("gatehouse_failover_{}", uuid::Uuid::new_v4().simple());
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let pool = postgres(&url, 1).await.expect("PostgreSQL is up");
        sqlx::query("CREATE TABLE t (x int)").execute(&pool).await.unwrap();

        // The pool's one connection turns read-only, as a demoted primary's would.
        sqlx::query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY").execute(&pool).await.unwrap();
        let refused = sqlx::query("INSERT INTO t VALUES (1)").execute(&pool).await.unwrap_err();
        assert_eq!(classify_database_error(&refused), DatabaseFailure::Unavailable);
        // That connection is not handed out again: the next write gets a new one.
        sqlx::query("INSERT INTO t VALUES (2)").execute(&pool).await.expect("a fresh connection writes");

        // A server that is read-only for new connections (a standby) is refused
        // at connect time, and served again once it is the primary.
        let admin = postgres("postgres://postgres@127.0.0.1:5432/postgres", 1).await.unwrap();
        let set = |on: bool| format!("ALTER DATABASE \"{name}\" SET default_transaction_read_only = {on}");
        sqlx::query(&set(true)).execute(&admin).await.unwrap();
        failover::seen(); // what a refused write would record
        let error = sqlx::query("INSERT INTO t VALUES (3)").execute(&pool).await.unwrap_err();
        assert_eq!(classify_database_error(&error), DatabaseFailure::Unavailable, "{error}");
        sqlx::query(&set(false)).execute(&admin).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (4)").execute(&pool).await.expect("the primary again");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await.unwrap();
        assert_eq!(rows, 2);
        pool.close().await;
        admin.close().await;
        drop_database(&url).await.unwrap();
    }

    #[tokio::test]
    async fn the_pool_recovers_after_the_server_restarts_and_never_hangs_while_it_is_down() {
        let mut server = crate::testing::PrivatePostgres::start().await;
        let pool = postgres(&server.url("gatehouse_restart"), 4).await.expect("the private server answers");
        let one = || async { sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool).await };
        assert_eq!(one().await.unwrap(), 1);

        server.kill();
        // Down: every request is answered, as unavailable, within the request timeout.
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let error = one().await.expect_err("the server is down");
            assert_eq!(classify_database_error(&error), DatabaseFailure::Unavailable, "{error}");
            assert!(started.elapsed() < REQUEST_DEPENDENCY_TIMEOUT + Duration::from_secs(1), "{:?}", started.elapsed());
        }

        // Back: the same pool serves again, its dead connections replaced.
        server.restart().await;
        let started = std::time::Instant::now();
        loop {
            match one().await {
                Ok(1) => break,
                Ok(other) => panic!("SELECT 1 answered {other}"),
                Err(error) => assert_eq!(classify_database_error(&error), DatabaseFailure::Unavailable, "{error}"),
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the pool never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool.close().await;
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
