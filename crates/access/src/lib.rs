//! Access control for the gateway: who is calling, and what they may select.
//!
//! - [`jwks`]: reading a JWKS document (tolerant of bad keys) and its `Cache-Control`.
//! - [`verifier`]: [`Verifier`], which keeps one issuer's last good key set
//!   fresh and verifies its access tokens against it (the algorithm pinned
//!   to the issuer's list and to the key's own, `typ`, `iss`, `aud`, `exp`,
//!   `nbf`), mapping the claims to a caller.
//! - [`providers`]: [`Providers`], several issuers side by side, a token's
//!   chosen by its `iss`, each read from the header or a named cookie.
//! - [`gatekeeper`]: [`Gatekeeper`], one request's token to a verified,
//!   unrevoked [`gatehouse_common::identity::Identity`] (or a 401).
//! - [`csrf`]: refusing simple (unpreflighted) browser requests.
//! - [`cors`]: the origin allowlist; credentials only for listed origins.
//! - [`guards`]: `@authenticated` / `@requiresScopes` read from the supergraph
//!   and applied to an operation before planning.
//! - [`revocation`]: [`Revocations`], which answers "was this session revoked?"
//!   within a second without a Redis round trip per request.
//!
//! Only the gateway depends on this crate; subgraphs trust the gateway's
//! signed identity instead of reading tokens.

pub mod cors;
pub mod csrf;
pub mod gatekeeper;
pub mod guards;
pub mod jwks;
pub mod providers;
pub mod revocation;
pub mod verifier;

pub use gatekeeper::{Authenticated, Gatekeeper, Rejection};
pub use jwks::Algorithm;
pub use providers::{Provider, Providers, ProvidersError, TokenSource};
pub use revocation::{RevocationConfig, RevocationError, Revocations};
pub use verifier::{
    AccessClaims, ClaimMapping, ClaimPath, ClaimRules, KeySource, Verifier, VerifierConfig, VerifyError,
};
