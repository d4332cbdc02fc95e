//! Building and running the auth service.

use std::sync::Arc;

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use gatehouse_common::{infra, settings::SharedSettings};
use gatehouse_store::outbox::Relay;

use crate::credentials::Hasher;
use crate::http::{self, AppState};
use crate::keys::Keys;
use crate::mail::MailSender;
use crate::rate_limit::RateLimiter;
use crate::schema::{self, AuthSchema};
use crate::service::AuthService;
use crate::sessions::SessionStore;
use crate::settings::AuthSettings;
use crate::AuthConfig;

/// Connects to (and if needed creates) the auth database.
pub async fn connect_database(config: &AuthConfig) -> Result<PgPool, infra::Unreachable> {
    gatehouse_store::postgres(&config.database_url, config.database_max_connections.max(2)).await
}

/// Applies the auth migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// A bound, migrated, ready-to-serve auth service.
pub struct Application {
    listener: TcpListener,
    router: Router,
    service: AuthService,
    schema: AuthSchema,
    mail: MailSender,
    /// Publishes account events from the outbox to JetStream.
    relay: Relay,
    keys: Arc<Keys>,
    keys_reload: std::time::Duration,
    server: Arc<gatehouse_listener::Server>,
}

impl Application {
    /// Connects to PostgreSQL, Redis and NATS, migrates, loads the signing key
    /// ring (creating it when the database has none) and binds the listener
    /// (port 0 works).
    pub async fn build(config: AuthConfig, shared: SharedSettings) -> anyhow::Result<Self> {
        let settings = AuthSettings::resolve(&config, &shared)?;
        let pool = connect_database(&config).await?;
        migrate(&pool).await?;
        let redis = infra::redis(&shared.redis()).await?;
        let nats = infra::nats(&shared.nats).await?;
        // The relay creates or updates the event stream when it starts.
        let relay = Relay::new(pool.clone(), nats.clone(), &shared);
        let keys = Arc::new(Keys::load(pool.clone(), &config, &settings, &shared).await?);
        let hasher = Hasher::new(settings.hash, settings.hash_concurrency).await?;
        let sessions = SessionStore::new(
            redis.clone(),
            nats.clone(),
            shared.message_signer(),
            settings.redis_key_prefix.clone(),
            settings.revocation_subject.clone(),
            settings.tokens.refresh_idle_ttl,
            settings.tokens.access_ttl,
        );
        let limiter = RateLimiter::new(redis.clone(), settings.redis_key_prefix.clone());
        let seal = crate::mail::MailSeal::from_secret(&settings.refresh_secret);
        let mail = MailSender::new(pool.clone(), seal, &settings.mail, &settings.mail_from, settings.mail_poll)?;
        let service = AuthService::new(pool, settings, hasher, keys.clone(), sessions, limiter, mail.wake.clone());
        let schema = schema::build(service.clone());
        let router = http::router(AppState { schema: schema.clone(), service: service.clone(), redis, nats });
        let listener = gatehouse_listener::bind("auth", "AUTH_LISTEN", config.listen).await?;
        let server =
            config.listener.server().map_err(|e| anyhow::anyhow!("AUTH_TLS_CERT_FILE/AUTH_TLS_KEY_FILE: {e}"))?;
        Ok(Self {
            listener,
            router,
            service,
            schema,
            mail,
            relay,
            keys,
            keys_reload: std::time::Duration::from_secs(config.keys_reload_secs),
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The use cases, for tests and tools that skip HTTP.
    pub fn service(&self) -> &AuthService {
        &self.service
    }

    pub fn schema(&self) -> &AuthSchema {
        &self.schema
    }

    /// The mail sender; tests may call [`MailSender::try_send_next`] directly.
    pub fn mail_sender(&self) -> &MailSender {
        &self.mail
    }

    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests
    /// and stops the mail sender, the outbox relay and the key watcher.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let background = shutdown.child_token();
        let mail = tokio::spawn(self.mail.clone().run(background.clone()));
        let relay = tokio::spawn(self.relay.clone().run(background.clone()));
        let keys = tokio::spawn(self.keys.clone().watch(self.keys_reload, background.clone()));
        let served = gatehouse_listener::serve(self.server, self.listener, self.router, shutdown).await;
        background.cancel();
        let _ = tokio::join!(mail, relay, keys);
        served?;
        Ok(())
    }
}
