//! PostgreSQL for the services that keep data in it (auth, users, and the
//! `gatehouse` binary's migrate and seed): the gateway does not depend on
//! this crate, so it builds without sqlx.
//!
//! - [`database`]: pools that create their database, answer within the
//!   request timeout and follow a failover; which errors a client is told
//!   are retryable.
//! - [`outbox`]: writing account events in the caller's transaction, and
//!   relaying them to JetStream.
//! - [`testing`] (feature `test-support`): a private PostgreSQL for fault tests.

pub mod database;
pub mod outbox;
#[cfg(feature = "test-support")]
pub mod testing;

pub use database::{classify_database_error, drop_database, failover, is_read_only, postgres, DatabaseFailure};
