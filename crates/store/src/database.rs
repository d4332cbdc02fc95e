//! PostgreSQL pools for the services: created databases, a request timeout,
//! the errors a client is told about, and following a failover.

use gatehouse_common::infra::{Unreachable, CONNECT_TIMEOUT, REQUEST_DEPENDENCY_TIMEOUT};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
        let error = postgres("postgres://postgres@127.0.0.1:9/x", 1).await.expect_err("nothing listens on port 9");
        assert!(error.to_string().starts_with("PostgreSQL is not reachable at postgres://postgres@127.0.0.1:9/x"));
        assert!(error.to_string().contains("docker compose -f compose.dev.yaml up -d postgres"), "{error}");
    }
}
