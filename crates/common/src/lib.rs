//! Plumbing shared by the Gatehouse services.
//!
//! - [`identity`]: the caller identity the gateway forwards to subgraphs, signed with HMAC.
//! - [`events`]: the account events the auth service publishes and the users service consumes.
//! - [`profile`]: profile values both subgraphs parse the same way (`DisplayName`).
//! - [`infra`]: connecting to Redis and NATS with one clear line when one is missing (PostgreSQL: `gatehouse-store`).
//! - [`redis_conn`]: one Redis connection for a single server, a cluster or a Sentinel-managed primary.
//! - [`signing`]: signatures on account events and revocation notices sent over NATS.
//! - [`settings`]: the settings every service shares (environment, secrets, infrastructure URLs).
//! - [`dev_secrets`]: development-only secrets generated once and kept under `.dev/`.
//! - [`telemetry`]: the one tracing subscriber and the one Prometheus recorder.
//! - [`shutdown`]: turning Ctrl-C and SIGTERM into a cancellation token.
//! - [`http`]: small axum pieces every service mounts (`/health`, `/metrics`).

pub mod dev_secrets;
pub mod events;
pub mod http;
pub mod identity;
pub mod infra;
pub mod live;
pub mod profile;
pub mod redis_conn;
pub mod settings;
pub mod shutdown;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
