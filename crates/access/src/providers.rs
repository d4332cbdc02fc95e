//! Several token issuers side by side: our auth service and any number of
//! outside OIDC providers (Keycloak, Auth0, Entra ID, Google…).
//!
//! A token's provider is chosen by its `iss` claim, read before the
//! signature is checked, and the token is then verified with that provider's
//! keys and rules only: keys are never tried one provider after another, so
//! one provider's key can never vouch for another's subject. Each provider
//! keeps its own JWKS, refreshed on its own schedule, and says where its
//! tokens may come from (the `Authorization` header, a named cookie).

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::verifier::{AccessClaims, Verifier, VerifyError};

/// Where a request carried its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// A cookie of this name.
    Cookie(String),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Header => f.write_str("header"),
            TokenSource::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// One issuer of access tokens.
pub struct Provider {
    /// The name forwarded to subgraphs and used in logs and metrics.
    pub name: Arc<str>,
    pub verifier: Arc<Verifier>,
    /// Where its tokens are accepted from.
    pub sources: Vec<TokenSource>,
    /// Whether its sessions can be revoked through our revocation notices
    /// (true only for our own auth service).
    pub revocable: bool,
}

/// Why a set of providers cannot be used together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProvidersError {
    #[error("two token providers are named {0:?}")]
    DuplicateName(String),
    #[error("two token providers have the issuer {0:?}: a token's issuer must choose one provider")]
    DuplicateIssuer(String),
    #[error("token provider {0:?} accepts tokens from nowhere")]
    NoSource(String),
    #[error("token providers need at least one provider")]
    Empty,
}

/// Every configured provider, by issuer.
pub struct Providers {
    by_issuer: HashMap<String, Arc<Provider>>,
    /// The only provider, when there is one: its verifier checks `iss`
    /// itself, so the payload need not be read twice.
    only: Option<Arc<Provider>>,
    /// Cookie names any provider reads tokens from, in configuration order.
    cookies: Vec<String>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.by_issuer.values().map(|p| &*p.name).collect();
        f.debug_struct("Providers").field("names", &names).field("cookies", &self.cookies).finish()
    }
}

/// A token found in a request, with where it was found.
#[derive(Debug, PartialEq, Eq)]
pub struct FoundToken<'a> {
    pub token: &'a str,
    pub source: TokenSource,
}

/// Why no token could be read from a request that offered one.
#[derive(Debug, PartialEq, Eq)]
pub struct BadAuthorization;

impl Providers {
    pub fn new(providers: Vec<Provider>) -> Result<Self, ProvidersError> {
        let providers: Vec<Arc<Provider>> = providers.into_iter().map(Arc::new).collect();
        let mut by_issuer = HashMap::new();
        let mut names = std::collections::HashSet::new();
        let mut cookies = Vec::new();
        for provider in &providers {
            if !names.insert(provider.name.clone()) {
                return Err(ProvidersError::DuplicateName(provider.name.to_string()));
            }
            if provider.sources.is_empty() {
                return Err(ProvidersError::NoSource(provider.name.to_string()));
            }
            for source in &provider.sources {
                if let TokenSource::Cookie(name) = source {
                    if !cookies.contains(name) {
                        cookies.push(name.clone());
                    }
                }
            }
            let issuer = provider.verifier.config().issuer.clone();
            if by_issuer.insert(issuer.clone(), provider.clone()).is_some() {
                return Err(ProvidersError::DuplicateIssuer(issuer));
            }
        }
        let only = match providers.as_slice() {
            [] => return Err(ProvidersError::Empty),
            [only] => Some(only.clone()),
            _ => None,
        };
        Ok(Self { by_issuer, only, cookies })
    }

    /// Just one provider (ours, in tests and simple deployments), read from
    /// the `Authorization` header and revocable.
    pub fn single(verifier: Arc<Verifier>) -> Self {
        let provider =
            Provider { name: Arc::from("gatehouse"), verifier, sources: vec![TokenSource::Header], revocable: true };
        Self::new(vec![provider]).expect("one provider is a valid set")
    }

    /// Every provider, for readiness and diagnostics.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.by_issuer.values().map(|p| &**p)
    }

    /// The request's token: the `Authorization` header when present (it must
    /// then be a bearer token), else the first configured cookie that is
    /// set. `Ok(None)`: the request carries no credentials.
    pub fn token<'a>(&self, headers: &'a HeaderMap) -> Result<Option<FoundToken<'a>>, BadAuthorization> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let token = value.to_str().ok().and_then(crate::gatekeeper::bearer_token).ok_or(BadAuthorization)?;
            return Ok(Some(FoundToken { token, source: TokenSource::Header }));
        }
        if self.cookies.is_empty() {
            return Ok(None);
        }
        for name in &self.cookies {
            if let Some(token) = gatehouse_common::http::cookie(headers, name) {
                return Ok(Some(FoundToken { token, source: TokenSource::Cookie(name.clone()) }));
            }
        }
        Ok(None)
    }

    /// Verifies a token with the provider its `iss` names, which must accept
    /// tokens from `source`.
    pub async fn verify(&self, token: &str, source: &TokenSource) -> Result<(AccessClaims, &Provider), VerifyError> {
        let provider = match &self.only {
            Some(only) => only,
            None => self.by_issuer.get(unverified_issuer(token)?.as_str()).ok_or(VerifyError::WrongIssuer)?,
        };
        if !provider.sources.contains(source) {
            return Err(VerifyError::WrongPlace);
        }
        let claims = provider.verifier.verify(token).await?;
        Ok((claims, provider))
    }

    /// Starts every provider's JWKS refresher; each stops with `shutdown`.
    pub fn spawn_refreshers(&self, shutdown: &CancellationToken) {
        for provider in self.by_issuer.values() {
            provider.verifier.spawn_refresher(shutdown.child_token());
        }
    }
}

/// The `iss` of a token whose signature is not checked yet: used only to
/// choose whose keys check it.
fn unverified_issuer(token: &str) -> Result<String, VerifyError> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let mut parts = token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => return Err(VerifyError::Malformed),
    };
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| VerifyError::Malformed)?;
    let claims: Issuer = serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)?;
    claims.iss.ok_or(VerifyError::MissingClaims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_is_read_only_from_a_three_part_token() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp.example"}"#);
        assert_eq!(unverified_issuer(&format!("h.{payload}.s")).unwrap(), "https://idp.example");
        for junk in ["", "a.b", "a.b.c.d", &format!("h.{payload}"), "h.!!!.s", "h.bnVsbA.s"] {
            assert!(unverified_issuer(junk).is_err(), "{junk:?}");
        }
        let no_iss = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
        assert_eq!(unverified_issuer(&format!("h.{no_iss}.s")), Err(VerifyError::MissingClaims));
        let number = URL_SAFE_NO_PAD.encode(br#"{"iss":7}"#);
        assert_eq!(unverified_issuer(&format!("h.{number}.s")), Err(VerifyError::Malformed));
    }
}
