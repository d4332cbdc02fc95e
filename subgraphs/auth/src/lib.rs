//! The auth subgraph: accounts, credentials, sessions, tokens and JWKS.
//!
//! - [`config`]: [`AuthConfig`], the settings as the operator wrote them.
//! - [`settings`]: [`settings::AuthSettings`], the settings resolved once at start-up.
//! - [`startup`]: [`Application`], which connects, migrates, binds and serves.
//! - [`http`]: the axum router; turns headers into a [`service::RequestContext`].
//! - [`schema`]: the GraphQL schema ([`schema::AuthSchema`]), guards and the annotated SDL.
//! - [`service`]: the use cases, one method per operation, free of GraphQL and HTTP.
//! - [`domain`]: `Email`, `Username`, `DisplayName`, `Password`, `Role`, parsed at the edge.
//! - [`accounts`]: the `accounts` table, codes and reset tokens; outbox writes for account changes.
//! - [`credentials`]: argon2id hashing on blocking threads, dummy hash, rehash on parameter rise.
//! - [`keys`]: the signing key ring in PostgreSQL (RS256/ES256; next, current, previous), JWKS, rotate and retire.
//! - [`seal`]: AES-256-GCM sealing of secrets at rest (signing keys, mail secrets, TOTP secrets).
//! - [`mfa`]: TOTP and recovery codes (single-use).
//! - [`external`]: sign-in with outside OpenID providers (code flow, PKCE, state, nonce).
//! - [`ticket`]: signed short-lived tickets between the steps of a sign-in (`mfaToken`, `linkToken`).
//! - [`tokens`]: access-token claims (RS256 or ES256, with `amr`/`acr`) and the refresh-token codec (HS256).
//! - [`sessions`]: refresh-token families in Redis, atomic rotation, revocation records and notices.
//! - [`rate_limit`]: fixed-window limits in Redis.
//! - [`devices`]: device cookies, so an owner gets into an account strangers keep failing on.
//! - [`mail`]: the mail queue table and the sender task (SMTP or `.eml` folder).
//! - [`error`]: client-safe errors and their `extensions.code`.
//! - [`seed`]: the idempotent SYS_ADMIN (and development demo accounts) seeding.

pub mod accounts;
pub mod config;
pub mod credentials;
pub mod devices;
pub mod domain;
pub mod error;
pub mod external;
pub mod http;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod rate_limit;
pub mod schema;
pub mod seal;
pub mod seed;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod startup;
pub mod ticket;
pub mod tokens;

pub use config::AuthConfig;
pub use schema::schema_sdl;
pub use startup::{connect_database, migrate, Application};
