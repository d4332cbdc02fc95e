//! The caller identity the gateway forwards to subgraphs.
//!
//! The gateway verifies the client's access token and then tells subgraphs who
//! is calling in the [`IDENTITY_HEADER`]: `v1.<payload>.<mac>`, where the
//! payload is base64url JSON (user, session, scopes, issued-at) and the MAC is
//! HMAC-SHA256 over `v1.<payload>` with a secret only the gateway and the
//! subgraphs hold. Subgraphs reject a header whose MAC does not match or whose
//! timestamp is stale, and treat a missing header as an anonymous caller.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// The header that carries the signed identity from the gateway to subgraphs.
pub const IDENTITY_HEADER: &str = "x-gatehouse-identity";

const VERSION: &str = "v1";

/// Who is calling, as verified by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The account id (the access token's `sub`).
    #[serde(rename = "sub")]
    pub user_id: Uuid,
    /// The session (refresh-token family) the access token belongs to (`sid`).
    #[serde(rename = "sid")]
    pub session_id: Uuid,
    /// Scope names: for our own accounts lower-case, implied roles included
    /// (`user admin`); for another provider's caller, as its token maps them.
    #[serde(rename = "scope")]
    pub scopes: Vec<String>,
    /// Set when the caller signed in with another provider than our auth
    /// service: then `user_id` and `session_id` are derived from its token
    /// (stable per subject) and name no account of ours.
    #[serde(rename = "ext", default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalSubject>,
}

/// Who vouches for a caller that is not one of our accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSubject {
    /// The provider's configured name (`GATEWAY_JWT_PROVIDERS`).
    pub provider: String,
    /// The user id in the provider's token.
    pub subject: String,
}

impl Identity {
    /// One of our own accounts (not another provider's caller).
    pub fn new(user_id: Uuid, session_id: Uuid, scopes: Vec<String>) -> Self {
        Self { user_id, session_id, scopes, external: None }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The caller's own id as its issuer knows it: the account id, or the
    /// other provider's subject.
    pub fn subject(&self) -> String {
        match &self.external {
            Some(external) => external.subject.clone(),
            None => self.user_id.to_string(),
        }
    }
}

/// Why a forwarded identity was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    #[error("identity header is malformed")]
    Malformed,
    #[error("identity header signature does not match")]
    BadSignature,
    #[error("identity header is stale or from the future")]
    Stale,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(flatten)]
    identity: Identity,
    /// Unix seconds when the gateway signed it.
    iat: i64,
}

/// Signs and verifies identity headers with the shared secret.
#[derive(Clone)]
pub struct IdentityCodec {
    key: Hmac<Sha256>,
    max_age_secs: i64,
}

impl std::fmt::Debug for IdentityCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityCodec").field("max_age_secs", &self.max_age_secs).finish_non_exhaustive()
    }
}

impl IdentityCodec {
    /// `max_age_secs` bounds how old (or how far in the future, for clock
    /// skew) a header may be; a few seconds is plenty for one hop.
    pub fn new(secret: &SecretString, max_age_secs: i64) -> Self {
        let key =
            Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC accepts keys of any length");
        Self { key, max_age_secs }
    }

    pub fn sign(&self, identity: &Identity, now_unix: i64) -> String {
        let envelope = Envelope { identity: identity.clone(), iat: now_unix };
        let json = serde_json::to_vec(&envelope).expect("identity serialises");
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    pub fn verify(&self, header: &str, now_unix: i64) -> Result<Identity, IdentityError> {
        let (signed, tag) = header.rsplit_once('.').ok_or(IdentityError::Malformed)?;
        let (version, payload) = signed.split_once('.').ok_or(IdentityError::Malformed)?;
        if version != VERSION {
            return Err(IdentityError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| IdentityError::Malformed)?;
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&tag).map_err(|_| IdentityError::BadSignature)?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| IdentityError::Malformed)?;
        let envelope: Envelope = serde_json::from_slice(&json).map_err(|_| IdentityError::Malformed)?;
        if (now_unix - envelope.iat).abs() > self.max_age_secs {
            return Err(IdentityError::Stale);
        }
        Ok(envelope.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(secret: &str) -> IdentityCodec {
        IdentityCodec::new(&SecretString::from(secret.to_owned()), 30)
    }

    fn alice() -> Identity {
        Identity::new(Uuid::new_v4(), Uuid::new_v4(), vec!["guest".into(), "user".into()])
    }

    #[test]
    fn an_external_caller_round_trips_and_plain_headers_stay_plain() {
        let c = codec("s3cret");
        let mut id = alice();
        let plain = c.sign(&id, 1_000);
        assert!(!String::from_utf8(URL_SAFE_NO_PAD.decode(plain.split('.').nth(1).unwrap()).unwrap())
            .unwrap()
            .contains("ext"));
        id.external = Some(ExternalSubject { provider: "keycloak".into(), subject: "f:1:alice".into() });
        assert_eq!(c.verify(&c.sign(&id, 1_000), 1_000), Ok(id.clone()));
        assert_eq!(id.subject(), "f:1:alice");
        assert_eq!(alice().external, None);
    }

    #[test]
    fn a_signed_identity_verifies_and_round_trips() {
        let c = codec("s3cret");
        let id = alice();
        assert_eq!(c.verify(&c.sign(&id, 1_000), 1_010), Ok(id));
    }

    #[test]
    fn another_secret_is_refused() {
        let header = codec("one").sign(&alice(), 1_000);
        assert_eq!(codec("two").verify(&header, 1_000), Err(IdentityError::BadSignature));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let c = codec("s3cret");
        let header = c.sign(&alice(), 1_000);
        let mut parts: Vec<&str> = header.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"00000000-0000-0000-0000-000000000000","sid":"00000000-0000-0000-0000-000000000000","scope":["sys_admin"],"iat":1000}"#);
        parts[1] = &forged;
        assert_eq!(c.verify(&parts.join("."), 1_000), Err(IdentityError::BadSignature));
    }

    #[test]
    fn stale_and_future_headers_are_refused() {
        let c = codec("s3cret");
        let header = c.sign(&alice(), 1_000);
        assert_eq!(c.verify(&header, 1_031), Err(IdentityError::Stale));
        assert_eq!(c.verify(&header, 969), Err(IdentityError::Stale));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let c = codec("s3cret");
        for junk in ["", ".", "..", "v1..", "v2.a.b", "v1.!!!.???", "v1.e30.AAAA", "\u{0}\u{ffff}"] {
            assert!(c.verify(junk, 0).is_err(), "{junk:?} was accepted");
        }
    }
}
