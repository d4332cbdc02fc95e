//! Building and running the users service: the HTTP API and the projection.

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use gatehouse_common::identity::IdentityCodec;
use gatehouse_common::{infra, settings::SharedSettings};

use crate::http::{router, HttpState};
use crate::live::LiveFeed;
use crate::projection::{Projection, ProjectionOptions};
use crate::schema::build_schema;
use crate::UsersConfig;

/// Connections kept for the HTTP API on top of one per projection lane, so
/// draining a backlog never starves requests of connections.
const API_CONNECTIONS: usize = 8;

/// Connects to (and if needed creates) the users database.
pub async fn connect_database(config: &UsersConfig) -> Result<PgPool, infra::Unreachable> {
    let connections = config.projection_concurrency.max(1) + API_CONNECTIONS;
    gatehouse_store::postgres(&config.database_url, u32::try_from(connections).unwrap_or(u32::MAX)).await
}

/// Applies the users migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// A bound, migrated, ready-to-serve users service with its projection.
pub struct Application {
    listener: TcpListener,
    router: Router,
    projection: Projection,
    pool: PgPool,
    server: std::sync::Arc<gatehouse_listener::Server>,
    live: LiveFeed,
    shared: SharedSettings,
}

impl Application {
    /// Connects, migrates, creates the streams and the durable consumer, and
    /// binds the listener (port 0 picks a free port).
    pub async fn build(config: UsersConfig, shared: SharedSettings) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records (the
        // projection's lag gauge), not on the first scrape.
        gatehouse_common::telemetry::metrics_handle();
        let pool = connect_database(&config).await?;
        migrate(&pool).await?;
        let nats = infra::nats(&shared.nats).await?;
        let projection =
            Projection::connect(pool.clone(), nats.clone(), &shared, ProjectionOptions::from(&config)).await?;
        let codec = IdentityCodec::new(&shared.identity_secret, config.identity_max_age_secs);
        let live = LiveFeed::new(nats.clone(), &shared);
        let state = HttpState { schema: build_schema(pool.clone(), live.clone()), codec, pool: pool.clone(), nats };
        let listener = gatehouse_listener::bind("users", "USERS_LISTEN", config.listen).await?;
        let router = router(state, config.max_body_bytes, config.listener.limits().body_read_timeout);
        Ok(Self {
            listener,
            router,
            projection,
            pool,
            live,
            shared,
            server: config
                .listener
                .server()
                .map_err(|e| anyhow::anyhow!("USERS_TLS_CERT_FILE/USERS_TLS_KEY_FILE: {e}"))?,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The database pool (tests inspect the projection through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves and consumes until `shutdown` is cancelled; in-flight requests
    /// and events finish first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let projection = tokio::spawn(self.projection.run(shutdown.clone()));
        self.live.start(&self.shared, shutdown.clone());
        let served = gatehouse_listener::serve(self.server, self.listener, self.router, shutdown.clone()).await;
        // If the server failed on its own, stop the projection too.
        shutdown.cancel();
        projection.await?;
        served?;
        Ok(())
    }
}
