//! The Gatehouse federation gateway: any Federation v2 supergraph in, correct
//! federated responses out. Plans with `hive-router-query-planner`; executes
//! with its own executor.
//!
//! - [`config`]: flags and `GATEWAY_*` variables, compiled once into runtime settings.
//! - [`supergraph`]: loading a supergraph (planner, public schema, endpoints, caches); hot reload.
//! - [`schema`]: the public schema indexed for projection, coercion and introspection.
//! - [`pipeline`]: the request stages in order: parse, validate, normalize, plan, variables, project.
//! - [`executor`]: runs plan nodes against subgraphs and merges results (fetch, entities, merge).
//! - [`introspection`]: `__schema` / `__type` answered from the public schema.
//! - [`client`]: the pooled keep-alive HTTP client for subgraph requests.
//! - [`http`]: GraphQL over HTTP, GraphiQL, `/health`, `/ready`, `/metrics`.
//! - `server`: client connections served on a thread per core, each connection kept on one thread.
//! - [`security`]: token verification, directive guards, CSRF, CORS, cookies and the identity sent to subgraphs.
//! - [`subscription`]: subscriptions to subgraphs over graphql-ws, each event completed through the plan; limits; sessions ending them.
//! - [`error`]: client-facing errors and their stable codes.

pub mod client;
pub mod config;
pub mod cost;
pub mod error;
pub mod executor;
pub mod header_rules;
pub mod http;
pub mod introspection;
pub mod jwt_providers;
pub mod persisted;
pub mod pipeline;
pub mod rate_limit;
pub mod schema;
pub mod security;
mod server;
pub mod subscription;
pub mod supergraph;
pub mod transport;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::GatewayConfig;
pub use pipeline::Gateway;

use config::RuntimeConfig;
use gatehouse_common::settings::SharedSettings;
use security::Security;
use supergraph::SupergraphStore;

/// A bound, ready-to-serve gateway.
pub struct Application {
    listener: TcpListener,
    /// The admin listener (`/metrics`, `/health`, `/ready`), when configured.
    admin: Option<TcpListener>,
    server: Arc<gatehouse_listener::Server>,
    gateway: Arc<Gateway>,
    /// Stops the JWKS refresher and the revocation listener with the server.
    background: CancellationToken,
}

impl Application {
    /// Compiles the configuration, loads the supergraph and binds the listener.
    ///
    /// A supergraph that cannot be loaded is logged and the gateway starts
    /// unready (`/ready` answers 503) until a valid file appears.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        Self::build_with(config, None).await
    }

    /// As [`Application::build`], with the shared settings authentication
    /// needs (identity secret, Redis, NATS). Required when `security.auth` is on.
    pub async fn build_with(config: GatewayConfig, shared: Option<SharedSettings>) -> anyhow::Result<Self> {
        let background = CancellationToken::new();
        let security = Arc::new(Security::build(&config.security, shared.as_ref(), &background).await?);
        let runtime = Arc::new(RuntimeConfig::try_from(&config)?);
        // Install the process-wide Prometheus recorder before anything records.
        let _ = gatehouse_common::telemetry::metrics_handle();
        let store = Arc::new(SupergraphStore::default());
        if let Err(e) = store.reload(runtime.supergraph_path.clone(), runtime.clone()).await {
            tracing::error!(path = %runtime.supergraph_path.display(), error = %format!("{e:#}"), "the supergraph could not be loaded; serving unready");
        }
        let listener = gatehouse_listener::bind("gateway", "GATEWAY_LISTEN", config.listen).await?;
        let admin = match config.admin_listen {
            Some(address) => Some(gatehouse_listener::bind("gateway admin", "GATEWAY_ADMIN_LISTEN", address).await?),
            None => None,
        };
        let server =
            config.listener.server().map_err(|e| anyhow::anyhow!("GATEWAY_TLS_CERT_FILE/GATEWAY_TLS_KEY_FILE: {e}"))?;
        let transports = runtime
            .transports
            .iter()
            .map(transport::Transport::build)
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| anyhow::anyhow!("GATEWAY_SUBGRAPH_CA_FILE(S)/GATEWAY_SUBGRAPH_CLIENT_CERT(S): {e:#}"))?;
        let client = client::SubgraphClient::with_transports(transports)
            .with_max_connections_per_host(runtime.max_connections_per_subgraph);
        let gateway = Arc::new(Gateway {
            store,
            config: runtime.clone(),
            thread_clients: (0..runtime.server_threads).map(|_| client.with_own_pool()).collect(),
            client,
            security,
            documents: Arc::new(persisted::PersistedDocuments::build(&config.documents, shared.as_ref()).await?),
            rate_limits: rate_limit::RateLimits::build(&config.rate_limits, shared.as_ref()).await?,
            subscriptions: Arc::new(subscription::Subscriptions::new(config.subscriptions.clone())),
        });
        Ok(Self { listener, admin, server, gateway, background })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The admin listener's port, when there is one.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port())
    }

    /// The request handling behind the HTTP server (tests use it for plans).
    pub fn gateway(&self) -> Arc<Gateway> {
        self.gateway.clone()
    }

    /// Serves until `shutdown` is cancelled; in-flight requests finish first.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let watcher =
            tokio::spawn(supergraph::watch(self.gateway.store.clone(), self.gateway.config.clone(), shutdown.clone()));
        tokio::spawn(self.gateway.documents.clone().watch(shutdown.clone()));
        let revocations = self.gateway.security.gatekeeper.as_ref().and_then(|g| g.revocations().cloned());
        self.gateway.subscriptions.start(revocations, shutdown.clone());
        for pair in self.gateway.client.client_certificates() {
            tokio::spawn(pair.clone().watch("gateway subgraph client", shutdown.clone()));
        }
        let router = http::router(self.gateway.clone());
        let admin = self.admin.map(|listener| {
            // A few connections for the monitoring, with the usual timeouts.
            let limits = gatehouse_listener::Limits { max_connections: 64, ..self.server.limits().clone() };
            let server = gatehouse_listener::Server::new("gateway admin", "GATEWAY_ADMIN_LISTEN", limits);
            tokio::spawn(gatehouse_listener::serve(
                server,
                listener,
                http::admin_router(self.gateway.clone()),
                shutdown.clone(),
            ))
        });
        let served = server::serve(self.listener, router, &self.gateway, self.server, shutdown.clone()).await;
        shutdown.cancel();
        self.background.cancel();
        let _ = watcher.await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        served
    }
}
