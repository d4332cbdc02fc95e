//! Access-token verification for the gateway.
//!
//! - [`jwks`]: reading a JWKS document (tolerant of bad keys) and its `Cache-Control`.
//! - [`verifier`]: [`Verifier`], which keeps the last good key set fresh and
//!   verifies RS256 access tokens against it (algorithm, `typ`, `iss`, `aud`,
//!   `exp`, `nbf` pinned).
//! - [`guards`]: `@authenticated` / `@requiresScopes` read from the supergraph
//!   and applied to an operation before planning.
//! - [`revocation`]: [`Revocations`], which answers "was this session revoked?"
//!   within a second without a Redis round trip per request.
//!
//! Only the gateway depends on this crate; subgraphs trust the gateway's
//! signed identity instead of reading tokens.

pub mod guards;
pub mod jwks;
pub mod revocation;
pub mod verifier;

pub use revocation::{RevocationConfig, RevocationError, Revocations};
pub use verifier::{AccessClaims, KeySource, Verifier, VerifierConfig, VerifyError};
