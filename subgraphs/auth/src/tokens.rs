//! Token formats: RS256 access tokens and HS256 refresh tokens.
//!
//! A refresh token's `jti` is its secret part. Rotation does not draw a new
//! random `jti`: the successor is `HMAC(secret, jti)`, and its `iat` is the
//! rotation time stored in Redis. So a retry with the just-rotated token inside
//! the grace window gets back *the same* successor, and the family still has
//! exactly one live token, while Redis holds nothing but SHA-256 hashes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Role;
use crate::keys::KeyRing;
use crate::settings::TokenSettings;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub scope: String,
    /// How the session was authenticated (RFC 8176): `pwd`, plus `otp` and
    /// `mfa` after a second factor.
    pub amr: Vec<String>,
    /// The assurance level: `aal2` with a second factor, else `aal1`.
    pub acr: String,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

/// Signs an access token for `user` in session `sid` with the current key;
/// a session that proved a second factor also gets the `mfa` scope.
pub fn issue_access_token(
    ring: &KeyRing,
    settings: &TokenSettings,
    user: Uuid,
    sid: Uuid,
    role: Role,
    amr: &[String],
    now: i64,
) -> anyhow::Result<AccessToken> {
    let ttl = settings.access_ttl.as_secs() as i64;
    let multi_factor = crate::mfa::is_multi_factor(amr);
    let mut scope = role.scope_claim();
    if multi_factor {
        scope.push(' ');
        scope.push_str(crate::mfa::MFA_SCOPE);
    }
    let claims = AccessClaims {
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        sub: user.to_string(),
        sid: sid.to_string(),
        jti: Uuid::new_v4().to_string(),
        iat: now,
        exp: now + ttl,
        scope,
        amr: if amr.is_empty() { vec![crate::mfa::AMR_PASSWORD.into()] } else { amr.to_vec() },
        acr: if multi_factor { "aal2" } else { "aal1" }.into(),
    };
    Ok(AccessToken { token: ring.current.sign_jwt(&claims)?, expires_in: ttl })
}

/// Claims of a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: Uuid,
    pub sid: Uuid,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// Always `refresh`, so an access token can never pass for one.
    pub typ: String,
    /// The session's authentication methods, carried from token to token
    /// so refreshed access tokens keep them. Absent: a password login.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

const REFRESH_TYP: &str = "refresh";

/// Signs, verifies and derives refresh tokens.
#[derive(Clone)]
pub struct RefreshCodec {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    successor_key: Hmac<Sha256>,
    issuer: String,
}

impl std::fmt::Debug for RefreshCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshCodec").finish_non_exhaustive()
    }
}

impl RefreshCodec {
    pub fn new(secret: &SecretString, issuer: &str) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        // Only HS256: `alg: none`, RS*, other HS* are all refused at decode.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // A separate key for successor derivation, so the signing key is never
        // used for two purposes.
        let successor_key = crate::seal::labelled_hmac(secret, "gatehouse-refresh-successor:");
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            successor_key,
            issuer: issuer.to_owned(),
        }
    }

    /// A new random `jti` (128 bits from the OS CSPRNG).
    pub fn random_jti() -> String {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The `jti` of the token that replaces `jti` at rotation.
    pub fn successor_jti(&self, jti: &str) -> String {
        let mut mac = self.successor_key.clone();
        mac.update(jti.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    pub fn sign(
        &self,
        user: Uuid,
        sid: Uuid,
        jti: String,
        iat: i64,
        exp: i64,
        amr: &[String],
    ) -> anyhow::Result<String> {
        let claims = RefreshClaims {
            iss: self.issuer.clone(),
            sub: user,
            sid,
            jti,
            iat,
            exp,
            typ: REFRESH_TYP.into(),
            amr: amr.to_vec(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Verifies signature, algorithm, issuer, expiry and type. `None` for
    /// anything else, whatever the reason: callers answer the same way.
    pub fn verify(&self, token: &str) -> Option<RefreshClaims> {
        if token.len() > 2048 {
            return None;
        }
        let data = jsonwebtoken::decode::<RefreshClaims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.typ == REFRESH_TYP && !data.claims.jti.is_empty() && data.claims.jti.len() <= 64)
            .then_some(data.claims)
    }

    /// Like [`verify`](Self::verify) but accepting an expired token, for logout.
    pub fn verify_ignoring_expiry(&self, token: &str) -> Option<RefreshClaims> {
        if token.len() > 2048 {
            return None;
        }
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<RefreshClaims>(token, &self.decoding, &validation).ok()?;
        (data.claims.typ == REFRESH_TYP).then_some(data.claims)
    }
}

/// What Redis stores for a token: the hex SHA-256 of its `jti`.
pub fn token_hash(jti: &str) -> String {
    hex::encode(Sha256::digest(jti.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> RefreshCodec {
        RefreshCodec::new(&SecretString::from("test-secret-0123456789-0123456789".to_owned()), "iss")
    }

    #[test]
    fn a_signed_refresh_token_verifies_and_successors_are_stable() {
        let c = codec();
        let now = chrono::Utc::now().timestamp();
        let token = c.sign(Uuid::new_v4(), Uuid::new_v4(), "abc".into(), now, now + 60, &[]).unwrap();
        assert_eq!(c.verify(&token).unwrap().jti, "abc");
        assert_eq!(c.successor_jti("abc"), c.successor_jti("abc"));
        assert_ne!(c.successor_jti("abc"), c.successor_jti("abd"));
    }

    #[test]
    fn expired_foreign_and_unsigned_tokens_are_refused() {
        let c = codec();
        let now = chrono::Utc::now().timestamp();
        let expired = c.sign(Uuid::new_v4(), Uuid::new_v4(), "abc".into(), now - 100, now - 10, &[]).unwrap();
        assert!(c.verify(&expired).is_none());
        assert!(c.verify_ignoring_expiry(&expired).is_some());
        let other = RefreshCodec::new(&SecretString::from("another-secret-0123456789-012345".to_owned()), "iss");
        let foreign = other.sign(Uuid::new_v4(), Uuid::new_v4(), "abc".into(), now, now + 60, &[]).unwrap();
        assert!(c.verify(&foreign).is_none());
        let parts: Vec<&str> = foreign.split('.').collect();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(c.verify(&format!("{none_header}.{}.", parts[1])).is_none());
    }
}
