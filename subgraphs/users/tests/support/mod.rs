//! Test helpers: a users app on port 0 with its own database, stream, subject
//! prefix and consumer; an auth-side outbox database; a private nats-server.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::Publish};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use gatehouse_common::events::{self, AccountChange, AccountEvent};
use gatehouse_common::identity::{Identity, IdentityCodec, IDENTITY_HEADER};
use gatehouse_common::settings::SharedSettings;
use gatehouse_store::outbox::{self, Relay, RelayOptions};
use gatehouse_users::{Application, UsersConfig};

/// How long eventual results may take before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(60);

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..16])
}

fn database_url(name: &str) -> String {
    let base = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    format!("{base}/{name}")
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Per-test names: stream, subject prefix, consumer.
pub fn test_settings() -> SharedSettings {
    SharedSettings::for_tests(&unique("t:"), &unique("T_"), &unique("t"))
}

pub fn registered(user_id: Uuid, username: &str, display_name: &str, role: &str) -> AccountEvent {
    AccountEvent {
        event_id: Uuid::now_v7(),
        user_id,
        version: 1,
        occurred_at: chrono::Utc::now(),
        change: AccountChange::Registered {
            username: username.into(),
            email: format!("{username}@example.com"),
            role: role.into(),
            display_name: display_name.into(),
            email_verified: false,
            active: true,
        },
    }
}

pub fn event(user_id: Uuid, version: i64, change: AccountChange) -> AccountEvent {
    AccountEvent { event_id: Uuid::now_v7(), user_id, version, occurred_at: chrono::Utc::now(), change }
}

/// A running users service.
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub settings: SharedSettings,
    pub config: UsersConfig,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub http: reqwest::Client,
    pub codec: IdentityCodec,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// A fresh app: new database, stream, subject prefix and consumer.
    pub async fn spawn() -> Self {
        let settings = test_settings();
        let config = UsersConfig::for_tests(&database_url(&unique("gh_users_")), &unique("users-projection-"));
        Self::spawn_with(config, settings).await
    }

    /// An app over existing names (a restart, or another NATS server).
    pub async fn spawn_with(config: UsersConfig, settings: SharedSettings) -> Self {
        let app = Application::build(config.clone(), settings.clone()).await.expect("users app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let pool = app.pool().clone();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        let nats = gatehouse_common::infra::nats(&settings.nats).await.expect("NATS is up");
        let jetstream = jetstream::new(nats.clone());
        let codec = IdentityCodec::new(&settings.identity_secret, 30);
        Self { address, pool, settings, config, nats, jetstream, http: reqwest::Client::new(), codec, shutdown, handle }
    }

    /// Stops gracefully (HTTP and projection); returns the names for a restart.
    pub async fn stop(self) -> (UsersConfig, SharedSettings) {
        self.shutdown.cancel();
        self.handle.await.expect("app task").expect("app stopped cleanly");
        self.pool.close().await;
        (self.config, self.settings)
    }

    /// Stops and removes the database and streams.
    pub async fn cleanup(self) {
        let js = self.jetstream.clone();
        let (config, settings) = self.stop().await;
        cleanup_names(&js, &config.database_url, &settings).await;
    }

    pub fn sign(&self, identity: &Identity) -> String {
        self.codec.sign(identity, chrono::Utc::now().timestamp())
    }

    /// Posts a GraphQL request with an optional identity header value.
    pub async fn post(&self, body: Value, identity_header: Option<&str>) -> (u16, Value) {
        let mut request = self.http.post(format!("{}/graphql", self.address)).json(&body);
        if let Some(header) = identity_header {
            request = request.header(IDENTITY_HEADER, header);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn graphql(&self, query: &str, variables: Value, caller: Option<&Identity>) -> Value {
        let header = caller.map(|c| self.sign(c));
        let (status, body) = self.post(json!({ "query": query, "variables": variables }), header.as_deref()).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Publishes an event as the relay would (message id = event id).
    pub async fn publish(&self, event: &AccountEvent) {
        self.publish_with_id(event, &event.event_id.to_string()).await;
    }

    /// Publishes an event under another message id, so JetStream keeps it as
    /// a second copy: a duplicate that got past the duplicate window.
    pub async fn publish_with_id(&self, event: &AccountEvent, message_id: &str) {
        let subject = events::event_subject(&self.settings.events_subject_prefix, event.change.type_name());
        let payload = serde_json::to_vec(event).unwrap();
        let headers = self.settings.message_signer().headers(&subject, &payload);
        let publish = Publish::build().headers(headers).payload(payload.into()).message_id(message_id);
        self.jetstream.send_publish(subject, publish).await.unwrap().await.expect("JetStream acknowledged");
    }

    /// Publishes `payload`, signed as the auth service signs, on the subject of `type_name`.
    pub async fn publish_raw(&self, type_name: &str, payload: &[u8]) {
        let subject = events::event_subject(&self.settings.events_subject_prefix, type_name);
        let headers = self.settings.message_signer().headers(&subject, payload);
        self.jetstream
            .publish_with_headers(subject, headers, payload.to_vec().into())
            .await
            .unwrap()
            .await
            .expect("acknowledged");
    }

    /// Publishes an event as a stranger on the broker would: with the given
    /// headers (none, or a signature made with another key).
    pub async fn publish_forged(&self, event: &AccountEvent, headers: async_nats::HeaderMap) {
        let subject = events::event_subject(&self.settings.events_subject_prefix, event.change.type_name());
        let payload = serde_json::to_vec(event).unwrap();
        let publish = Publish::build().headers(headers).payload(payload.into()).message_id(event.event_id.to_string());
        self.jetstream.send_publish(subject, publish).await.unwrap().await.expect("JetStream acknowledged");
    }

    /// A registered user, visible in the users table.
    pub async fn register(&self, username: &str, display_name: &str, role: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.publish(&registered(id, username, display_name, role)).await;
        self.wait_for_version(id, 1).await;
        id
    }

    /// Publishes the next event of an account and waits until it is applied.
    pub async fn apply(&self, user_id: Uuid, version: i64, change: AccountChange) {
        self.publish(&event(user_id, version, change)).await;
        self.wait_for_version(user_id, version).await;
    }

    pub async fn version_of(&self, user_id: Uuid) -> Option<i64> {
        sqlx::query_scalar("SELECT version FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .unwrap()
    }

    pub async fn wait_for_version(&self, user_id: Uuid, version: i64) {
        eventually(&format!("user {user_id} at version {version}"), || async {
            (self.version_of(user_id).await == Some(version)).then_some(())
        })
        .await;
    }

    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until the consumer has nothing pending or unacknowledged.
    pub async fn wait_until_drained(&self) {
        let stream = self.jetstream.get_stream(&self.settings.events_stream).await.unwrap();
        eventually("the projection to drain", || {
            let stream = stream.clone();
            let name = self.config.projection_consumer.clone();
            async move {
                let mut consumer: jetstream::consumer::PullConsumer = stream.get_consumer(&name).await.ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            }
        })
        .await;
    }

    /// Messages in the events stream.
    pub async fn stream_messages(&self) -> u64 {
        let mut stream = self.jetstream.get_stream(&self.settings.events_stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    }
}

pub fn identity(user_id: Uuid, scopes: &[&str]) -> Identity {
    Identity::new(user_id, Uuid::new_v4(), scopes.iter().map(|s| s.to_string()).collect())
}

pub const USER: &[&str] = &["guest", "user"];
pub const ADMIN: &[&str] = &["guest", "user", "admin"];

/// Drops a test's database and deletes its streams.
pub async fn cleanup_names(js: &jetstream::Context, database_url: &str, settings: &SharedSettings) {
    let _ = js.delete_stream(&settings.events_stream).await;
    let _ = js.delete_stream(events::dead_letter_stream(settings)).await;
    gatehouse_store::drop_database(database_url).await.expect("test database dropped");
}

/// The auth side of the outbox: a database with the auth migrations.
pub struct AuthSide {
    pub pool: PgPool,
    pub url: String,
}

impl AuthSide {
    pub async fn create() -> Self {
        let url = database_url(&unique("gh_auth_"));
        let pool = gatehouse_store::postgres(&url, 8).await.expect("PostgreSQL is up");
        sqlx::migrate!("../auth/migrations").run(&pool).await.expect("auth migrations apply");
        Self { pool, url }
    }

    /// A sign-up as the auth service writes it: the event in its own transaction.
    pub async fn sign_up(&self, username: &str) -> Uuid {
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await.unwrap();
        let AccountEvent { change, .. } = registered(id, username, &format!("{username} display"), "USER");
        outbox::enqueue(&mut tx, id, 1, change).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    pub async fn change(&self, user_id: Uuid, version: i64, change: AccountChange) {
        let mut tx = self.pool.begin().await.unwrap();
        outbox::enqueue(&mut tx, user_id, version, change).await.unwrap();
        tx.commit().await.unwrap();
    }

    pub async fn pending(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn relay(&self, settings: &SharedSettings, options: RelayOptions) -> Relay {
        let client = gatehouse_common::infra::nats(&settings.nats).await.expect("NATS is up");
        Relay::with_options(self.pool.clone(), client, settings, options)
    }

    /// Runs a relay in the background until the returned token is cancelled.
    pub async fn spawn_relay(&self, settings: &SharedSettings) -> (CancellationToken, JoinHandle<()>) {
        let relay = self.relay(settings, fast_relay()).await;
        let stop = CancellationToken::new();
        let handle = tokio::spawn(relay.run(stop.clone()));
        (stop, handle)
    }

    pub async fn cleanup(self) {
        self.pool.close().await;
        gatehouse_store::drop_database(&self.url).await.expect("auth test database dropped");
    }
}

/// Relay options for tests: short back-off and publish timeout.
pub fn fast_relay() -> RelayOptions {
    RelayOptions {
        publish_timeout: Duration::from_secs(2),
        backoff_max: Duration::from_millis(500),
        stream_check_interval: Duration::from_millis(500),
        ..RelayOptions::default()
    }
}
