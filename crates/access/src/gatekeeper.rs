//! Authenticating one request: the token (`Authorization: Bearer`, or a
//! provider's cookie) → its provider's verified claims → revocation check
//! (our own sessions) → the [`Identity`] forwarded to subgraphs.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue};

use gatehouse_common::identity::{Identity, IdentityCodec};

use crate::guards::Caller;
use crate::providers::Providers;
use crate::revocation::Revocations;
use crate::verifier::VerifyError;

/// Why a request with credentials was refused. Each maps to a 401 with a
/// `WWW-Authenticate` challenge, except [`Rejection::Unavailable`] (503).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("the Authorization header must be `Bearer <token>`")]
    BadHeader,
    #[error("{0}")]
    Invalid(VerifyError),
    #[error("the session of this access token was ended")]
    Revoked,
    #[error("the session state cannot be checked right now; try again shortly")]
    Unavailable,
}

impl Rejection {
    /// The HTTP status: 401 for bad credentials, 503 when revocation state is unreachable.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Unavailable => 503,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750), when the status is 401.
    pub fn challenge(&self) -> Option<HeaderValue> {
        let (error, description) = match self {
            Rejection::BadHeader => ("invalid_request", self.to_string()),
            Rejection::Invalid(_) | Rejection::Revoked => ("invalid_token", self.to_string()),
            Rejection::Unavailable => return None,
        };
        let value = format!(
            r#"Bearer realm="gatehouse", error="{error}", error_description="{}""#,
            description.replace('"', "'")
        );
        HeaderValue::from_str(&value).ok()
    }

    /// The stable GraphQL error code for the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Unavailable => "SERVICE_UNAVAILABLE",
            _ => "UNAUTHENTICATED",
        }
    }
}

/// Who a request comes from, once authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub identity: Identity,
    /// When the access token expires (`exp`, Unix seconds): a subscription
    /// it opened ends then, unless the client authenticates again.
    pub expires_at: u64,
}

impl Authenticated {
    /// The caller as the directive guards see it.
    pub fn caller(&self) -> Caller {
        Caller::with_scopes(self.identity.scopes.iter().map(String::as_str))
    }
}

/// Verifies access tokens and signs the identity forwarded to subgraphs.
#[derive(Clone)]
pub struct Gatekeeper {
    providers: Arc<Providers>,
    revocations: Option<Revocations>,
    codec: IdentityCodec,
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive and may be followed by any run of spaces (RFC 9110
/// section 11.1, RFC 6750 section 2.1); the token itself has no spaces.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once([' ', '\t'])?;
    let token = token.trim_start_matches([' ', '\t']);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains([' ', '\t'])).then_some(token)
}

impl Gatekeeper {
    /// `revocations: None` skips the revocation check (tokens then live to
    /// their expiry); the gateway always configures it, and it applies to
    /// the revocable provider (ours) only.
    pub fn new(providers: Providers, revocations: Option<Revocations>, codec: IdentityCodec) -> Self {
        Self { providers: Arc::new(providers), revocations, codec }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Where revoked sessions are known, when they are checked.
    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref()
    }

    /// No token (no `Authorization` header, no provider's cookie):
    /// `Ok(None)`, an anonymous caller. A token that is present but not
    /// valid and live: a [`Rejection`].
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Authenticated>, Rejection> {
        let Some(found) = self.providers.token(headers).map_err(|_| Rejection::BadHeader)? else { return Ok(None) };
        let (claims, provider) = self.providers.verify(found.token, &found.source).await.map_err(Rejection::Invalid)?;
        if let (Some(revocations), true) = (&self.revocations, provider.revocable) {
            match revocations.is_revoked(claims.sid).await {
                Ok(false) => {}
                Ok(true) => return Err(Rejection::Revoked),
                Err(_) => return Err(Rejection::Unavailable),
            }
        }
        let identity =
            Identity { user_id: claims.sub, session_id: claims.sid, scopes: claims.scopes, external: claims.external };
        Ok(Some(Authenticated { identity, expires_at: claims.exp }))
    }

    /// The value of the identity header for one subgraph request.
    pub fn identity_header(&self, identity: &Identity) -> HeaderValue {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        HeaderValue::from_str(&self.codec.sign(identity, now)).expect("the signed identity is ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_carry_a_challenge_and_a_stable_code() {
        let r = Rejection::Invalid(VerifyError::Expired);
        assert_eq!(r.status(), 401);
        assert_eq!(r.code(), "UNAUTHENTICATED");
        let challenge = r.challenge().unwrap();
        assert!(challenge.to_str().unwrap().starts_with(r#"Bearer realm="gatehouse", error="invalid_token""#));
        assert!(Rejection::BadHeader.challenge().unwrap().to_str().unwrap().contains("invalid_request"));
        assert_eq!(Rejection::Unavailable.status(), 503);
        assert!(Rejection::Unavailable.challenge().is_none());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
        for value in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER abc.def.ghi",
            "BeArEr   abc.def.ghi",
            " Bearer\tabc.def.ghi ",
        ] {
            assert_eq!(bearer_token(value), Some("abc.def.ghi"), "{value:?}");
        }
        for value in ["Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer abc def", "Token abc", ""] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
