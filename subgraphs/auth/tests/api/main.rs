//! Integration tests of the auth subgraph: the real service against real
//! PostgreSQL, Redis, NATS and a local SMTP sink.

mod helpers;
mod smtp;

mod accounts;
mod admin;
mod external;
mod federation;
mod keys;
mod mfa;
mod passwords;
mod sessions;
mod tokens;
