//! Settings of the users service, read from flags or environment.

use std::net::SocketAddr;
use std::time::Duration;

/// Users service settings.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Users subgraph")]
pub struct UsersConfig {
    /// Address the users subgraph listens on. Default: 127.0.0.1:4002.
    #[arg(id = "users-listen", long = "users-listen", env = "USERS_LISTEN", default_value = "127.0.0.1:4002")]
    pub listen: SocketAddr,

    /// The users database (created if missing). Default: postgres://postgres@127.0.0.1:5432/gatehouse_users.
    #[arg(
        id = "users-database-url",
        long = "users-database-url",
        env = "USERS_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/gatehouse_users"
    )]
    pub database_url: String,

    /// Name of the durable JetStream consumer that feeds the users table.
    /// Replicas share it (each event goes to one of them). Default: users-projection.
    #[arg(
        id = "users-projection-consumer",
        long = "users-projection-consumer",
        env = "USERS_PROJECTION_CONSUMER",
        default_value = "users-projection"
    )]
    pub projection_consumer: String,

    /// Deliveries after which an event that keeps failing on its content is
    /// dead-lettered to `<prefix>.dlq.users`. Default: 5.
    #[arg(
        id = "users-projection-max-deliveries",
        long = "users-projection-max-deliveries",
        env = "USERS_PROJECTION_MAX_DELIVERIES",
        default_value_t = 5
    )]
    pub projection_max_deliveries: i64,

    /// Deliveries an event may wait for its predecessor (a newer version that
    /// arrived first) before it is dead-lettered. Default: 30 (about two minutes).
    #[arg(
        id = "users-projection-max-gap-deliveries",
        long = "users-projection-max-gap-deliveries",
        env = "USERS_PROJECTION_MAX_GAP_DELIVERIES",
        default_value_t = 30
    )]
    pub projection_max_gap_deliveries: i64,

    /// First redelivery delay after a failure, doubled per delivery up to
    /// 5 s. Default: 100 (milliseconds).
    #[arg(
        id = "users-projection-retry-ms",
        long = "users-projection-retry-ms",
        env = "USERS_PROJECTION_RETRY_MS",
        default_value_t = 100
    )]
    pub projection_retry_ms: u64,

    /// Events applied concurrently (each account's events stay in order).
    /// Default: 16.
    #[arg(
        id = "users-projection-concurrency",
        long = "users-projection-concurrency",
        env = "USERS_PROJECTION_CONCURRENCY",
        default_value_t = 16
    )]
    pub projection_concurrency: usize,

    /// How long JetStream waits for the projection to acknowledge an event
    /// before delivering it again: the longest an event lost on its way (a
    /// replica that crashed holding it, a JetStream leader change) waits.
    /// Applied to the shared consumer at start-up. Default: 10 (seconds).
    #[arg(long = "users-projection-ack-wait-secs", env = "USERS_PROJECTION_ACK_WAIT_SECS", default_value_t = 10)]
    pub projection_ack_wait_secs: u64,

    /// How old (or how far ahead, for clock skew) a forwarded identity header
    /// may be before it is refused as stale. Default: 30 (seconds).
    #[arg(
        id = "users-identity-max-age-secs",
        long = "users-identity-max-age-secs",
        env = "USERS_IDENTITY_MAX_AGE_SECS",
        default_value_t = 30
    )]
    pub identity_max_age_secs: i64,

    /// Largest accepted request body in bytes. Default: 65536.
    #[arg(
        id = "users-max-body-bytes",
        long = "users-max-body-bytes",
        env = "USERS_MAX_BODY_BYTES",
        default_value_t = 65_536
    )]
    pub max_body_bytes: usize,

    /// Connection limit and client timeouts.
    #[command(flatten)]
    pub listener: UsersListenerArgs,
}

gatehouse_listener::listener_args!(
    UsersListenerArgs,
    service = "users",
    heading = "Users subgraph",
    env = "USERS",
    id = "users",
    long = "users-",
    max_connections = 1000
);

impl UsersConfig {
    /// Settings for tests: port 0, the given database, the given consumer name,
    /// short retry delays, and fewer lanes (tests share one PostgreSQL).
    pub fn for_tests(database_url: &str, projection_consumer: &str) -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            database_url: database_url.to_owned(),
            projection_consumer: projection_consumer.to_owned(),
            projection_max_deliveries: 3,
            projection_max_gap_deliveries: 30,
            projection_retry_ms: 20,
            projection_concurrency: 8,
            projection_ack_wait_secs: 3,
            identity_max_age_secs: 30,
            max_body_bytes: 65_536,
            listener: UsersListenerArgs::default(),
        }
    }

    /// The first redelivery delay.
    pub fn projection_retry(&self) -> Duration {
        Duration::from_millis(self.projection_retry_ms)
    }
}
