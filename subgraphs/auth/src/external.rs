//! Sign-in with outside OpenID providers, as a relying party: the
//! authorization-code flow with PKCE, `state` and `nonce` (the
//! `openidconnect` crate), the ID token checked against the provider's JWKS.
//!
//! `AUTH_OIDC_PROVIDERS` holds one line per provider:
//!
//! ```text
//! google issuer=https://accounts.google.com client_id=ID client_secret=SECRET redirect=https://app.example.com/callback
//! ```
//!
//! `redirect` is repeatable and required: `externalLoginUrl` accepts only
//! these URIs, so a code can never be sent anywhere else. `scopes` (`+`
//! separated, default `openid+email+profile`) adds what to ask for.
//!
//! Each sign-in's `state` is a random key to a record in Redis (provider,
//! redirect URI, nonce, PKCE verifier) that lives ten minutes and is taken
//! once: a forged, replayed or expired `state` finds nothing.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use gatehouse_common::telemetry::describe_error;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

/// How long a started sign-in may take before `completeExternalLogin`.
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// How long a provider's discovery document and keys are reused.
const METADATA_TTL: Duration = Duration::from_secs(300);

/// One provider, as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalProviderSpec {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirects: Vec<String>,
    pub scopes: Vec<String>,
}

impl fmt::Debug for ExternalProviderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalProviderSpec")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirects", &self.redirects)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for ExternalProviderSpec {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        parse(line)
    }
}

/// Reads one provider line; the error says what is wrong.
pub fn parse(line: &str) -> Result<ExternalProviderSpec, String> {
    let (name, words) =
        gatehouse_common::settings::entry_name(line, "sign-in provider", "issuer=… client_id=… redirect=…")?;
    let fail = |message: String| format!("sign-in provider {name}: {message}");
    let (mut issuer, mut client_id, mut client_secret, mut scopes) = (None, None, None, None);
    let mut redirects = Vec::new();
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| fail(format!("{:?} is not `key=value`", short(word))))?;
        if value.is_empty() {
            return Err(fail(format!("{key}= needs a value")));
        }
        let slot = match key {
            "issuer" => &mut issuer,
            "client_id" => &mut client_id,
            "client_secret" => &mut client_secret,
            "scopes" => &mut scopes,
            "redirect" => {
                let url = Url::parse(value).map_err(|e| fail(format!("redirect {value:?} is not a URL: {e}")))?;
                let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
                if url.scheme() != "https" && !(url.scheme() == "http" && local) {
                    return Err(fail(format!("redirect {value:?} must be https (http only on localhost)")));
                }
                if url.fragment().is_some() {
                    return Err(fail(format!("redirect {value:?} must not have a fragment")));
                }
                redirects.push(value.to_owned());
                continue;
            }
            other => {
                return Err(fail(format!("unknown key {other:?} (issuer, client_id, client_secret, redirect, scopes)")))
            }
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(fail(format!("{key} is given twice")));
        }
    }
    let issuer = issuer.ok_or_else(|| fail("issuer= is required".into()))?;
    let parsed = Url::parse(&issuer).map_err(|e| fail(format!("issuer {issuer:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(fail(format!("issuer {issuer:?} is not an http(s) URL")));
    }
    let client_id = client_id.ok_or_else(|| fail("client_id= is required".into()))?;
    if redirects.is_empty() {
        return Err(fail("redirect= is required: the URIs the app may receive the sign-in at".into()));
    }
    let scopes: Vec<String> = match scopes {
        Some(list) => list.split('+').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        None => ["openid", "email", "profile"].map(String::from).to_vec(),
    };
    if !scopes.iter().any(|s| s == "openid") {
        return Err(fail("scopes must include openid".into()));
    }
    Ok(ExternalProviderSpec { name: name.to_owned(), issuer, client_id, client_secret, redirects, scopes })
}

/// A word of a line, cut short for an error message (it may hold a secret).
fn short(word: &str) -> String {
    word.chars().take(24).collect()
}

/// What a started sign-in must remember until it completes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub provider: String,
    pub redirect: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Who the provider says signed in, from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalPerson {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// Why an outside sign-in failed; details go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    #[error("no sign-in provider is named {0:?}")]
    UnknownProvider(String),
    #[error("{0} is not a redirect URI registered for this provider")]
    RedirectNotAllowed(String),
    #[error("the provider could not be used: {0}")]
    Provider(String),
}

struct Provider {
    spec: ExternalProviderSpec,
    secret: Option<SecretString>,
    metadata: tokio::sync::Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

/// The configured providers and the HTTP client that talks to them.
pub struct ExternalLogins {
    providers: HashMap<String, Provider>,
    http: openidconnect::reqwest::Client,
}

impl fmt::Debug for ExternalLogins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalLogins").field("providers", &self.providers.keys().collect::<Vec<_>>()).finish()
    }
}

impl ExternalLogins {
    /// The providers of `specs` (their names are distinct: the settings check).
    pub fn new(specs: &[ExternalProviderSpec]) -> Self {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider's answer send us elsewhere (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with rustls builds");
        let providers = specs
            .iter()
            .map(|spec| {
                let provider = Provider {
                    secret: spec.client_secret.clone().map(SecretString::from),
                    spec: spec.clone(),
                    metadata: tokio::sync::Mutex::new(None),
                };
                (spec.name.clone(), provider)
            })
            .collect();
        Self { providers, http }
    }

    /// The names of the configured providers.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn provider(&self, name: &str) -> Result<&Provider, ExternalError> {
        self.providers.get(name).ok_or_else(|| ExternalError::UnknownProvider(name.to_owned()))
    }

    /// The provider's discovery document and keys, fetched at most every
    /// [`METADATA_TTL`] (and again after an ID token they could not check).
    async fn metadata(&self, provider: &Provider) -> Result<CoreProviderMetadata, ExternalError> {
        let mut cached = provider.metadata.lock().await;
        if let Some((metadata, at)) = cached.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer =
            IssuerUrl::new(provider.spec.issuer.clone()).map_err(|e| ExternalError::Provider(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| ExternalError::Provider(format!("discovery: {}", describe_error(&e))))?;
        *cached = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// The URL to send the browser to, and what to remember under its `state`.
    pub async fn start(&self, name: &str, redirect: &str) -> Result<(String, String, PendingSignIn), ExternalError> {
        let provider = self.provider(name)?;
        if !provider.spec.redirects.iter().any(|allowed| allowed == redirect) {
            return Err(ExternalError::RedirectNotAllowed(redirect.chars().take(200).collect()));
        }
        let metadata = self.metadata(provider).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.spec.client_id.clone()),
            provider.secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).map_err(|e| ExternalError::Provider(e.to_string()))?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in provider.spec.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let pending = PendingSignIn {
            provider: name.to_owned(),
            redirect: redirect.to_owned(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        };
        Ok((url.to_string(), state.secret().clone(), pending))
    }

    /// Redeems `code` for the sign-in `pending` remembers and checks the ID
    /// token: signature by the provider's keys, issuer, audience, expiry and
    /// the nonce.
    pub async fn finish(&self, pending: &PendingSignIn, code: &str) -> Result<ExternalPerson, ExternalError> {
        let provider = self.provider(&pending.provider)?;
        let metadata = self.metadata(provider).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.spec.client_id.clone()),
            provider.secret.as_ref().map(|s| ClientSecret::new(s.expose_secret().to_owned())),
        )
        .set_redirect_uri(
            RedirectUrl::new(pending.redirect.clone()).map_err(|e| ExternalError::Provider(e.to_string()))?,
        );
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ExternalError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let tokens = request
            .request_async(&self.http)
            .await
            .map_err(|e| ExternalError::Provider(format!("code exchange: {}", describe_error(&e))))?;
        let id_token = tokens.id_token().ok_or_else(|| ExternalError::Provider("no ID token".into()))?;
        let claims = match id_token.claims(&client.id_token_verifier(), &Nonce::new(pending.nonce.clone())) {
            Ok(claims) => claims,
            Err(error) => {
                // Perhaps a key the cached set lacks (the provider rotated):
                // the code is spent, but the next sign-in finds the new key.
                *provider.metadata.lock().await = None;
                return Err(ExternalError::Provider(format!("ID token: {error}")));
            }
        };
        Ok(ExternalPerson {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|email| email.as_str().to_lowercase()),
            email_verified: claims.email_verified().unwrap_or(false),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims.name().and_then(|name| name.get(None)).map(|name| name.as_str().to_owned()),
        })
    }
}

/// A username for a new account from what the provider says: its preferred
/// username or the email's local part, folded to the allowed characters.
/// The caller appends digits while it is taken.
pub fn username_base(person: &ExternalPerson) -> String {
    let source = person
        .preferred_username
        .as_deref()
        .or_else(|| person.email.as_deref().and_then(|email| email.split('@').next()))
        .unwrap_or("user");
    let mut name: String = source
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '_' })
        .collect();
    name.truncate(24);
    while name.len() < 3 {
        name.push('_');
    }
    name
}

// ----- storage --------------------------------------------------------------

/// One outside identity linked to an account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub linked_at: chrono::DateTime<chrono::Utc>,
}

/// The account an outside identity signs in to, if it is linked.
pub async fn account_of(
    db: impl sqlx::PgExecutor<'_>,
    provider: &str,
    subject: &str,
) -> Result<Option<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM external_identities WHERE provider = $1 AND subject = $2")
        .bind(provider)
        .bind(subject)
        .fetch_optional(db)
        .await
}

/// Links an identity to an account; `false` when it is linked already (to
/// this account or, by a concurrent sign-in, to another).
pub async fn link(
    db: impl sqlx::PgExecutor<'_>,
    provider: &str,
    subject: &str,
    account: uuid::Uuid,
    email: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let linked = sqlx::query(
        "INSERT INTO external_identities (provider, subject, account_id, email) VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider, subject) DO NOTHING",
    )
    .bind(provider)
    .bind(subject)
    .bind(account)
    .bind(email)
    .execute(db)
    .await?;
    Ok(linked.rows_affected() == 1)
}

pub async fn linked(db: impl sqlx::PgExecutor<'_>, account: uuid::Uuid) -> Result<Vec<LinkedIdentity>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, subject, email, linked_at FROM external_identities WHERE account_id = $1 ORDER BY linked_at",
    )
    .bind(account)
    .fetch_all(db)
    .await
}

/// Unlinks the account's identities at `provider`, unless that would leave
/// the account no way in (no other identity and no password it knows):
/// `Ok(None)` then, else how many were removed.
pub async fn unlink(
    conn: &mut sqlx::PgConnection,
    account: uuid::Uuid,
    provider: &str,
) -> Result<Option<u64>, sqlx::Error> {
    // The account row's lock serialises unlinks of one account.
    let password_usable: Option<bool> =
        sqlx::query_scalar("SELECT password_usable FROM accounts WHERE id = $1 FOR UPDATE")
            .bind(account)
            .fetch_optional(&mut *conn)
            .await?;
    let others: i64 =
        sqlx::query_scalar("SELECT count(*) FROM external_identities WHERE account_id = $1 AND provider <> $2")
            .bind(account)
            .bind(provider)
            .fetch_one(&mut *conn)
            .await?;
    if !password_usable.unwrap_or(false) && others == 0 {
        return Ok(None);
    }
    let removed = sqlx::query("DELETE FROM external_identities WHERE account_id = $1 AND provider = $2")
        .bind(account)
        .bind(provider)
        .execute(&mut *conn)
        .await?;
    Ok(Some(removed.rows_affected()))
}

/// Marks a new account's password as one nobody knows.
pub async fn mark_password_unusable(db: impl sqlx::PgExecutor<'_>, account: uuid::Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET password_usable = false WHERE id = $1").bind(account).execute(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_reads_and_bad_ones_say_why() {
        let spec = parse(
            "corp issuer=https://sso.example.com/realms/acme client_id=app client_secret=s3cret \
             redirect=https://app.example.com/cb redirect=http://localhost:4003/cb scopes=openid+email",
        )
        .unwrap();
        assert_eq!(spec.redirects, ["https://app.example.com/cb", "http://localhost:4003/cb"]);
        assert_eq!(spec.scopes, ["openid", "email"]);
        assert!(!format!("{spec:?}").contains("s3cret"), "the secret never reaches a log");
        for (line, reason) in [
            ("", "needs a name"),
            ("Corp issuer=https://a client_id=b redirect=https://c", "lower-case"),
            ("corp client_id=b redirect=https://c", "issuer= is required"),
            ("corp issuer=https://a redirect=https://c", "client_id= is required"),
            ("corp issuer=https://a client_id=b", "redirect= is required"),
            ("corp issuer=https://a client_id=b redirect=http://app.example.com/cb", "must be https"),
            ("corp issuer=https://a client_id=b redirect=https://c/#x", "fragment"),
            ("corp issuer=ftp://a client_id=b redirect=https://c", "http(s)"),
            ("corp issuer=https://a client_id=b client_id=c redirect=https://c", "twice"),
            ("corp issuer=https://a client_id=b redirect=https://c scopes=email", "include openid"),
            ("corp issuer=https://a client_id=b redirect=https://c colour=blue", "unknown key"),
            ("corp issuer=https://a client_id=b redirect=https://c client_secret", "not `key=value`"),
        ] {
            let error = parse(line).expect_err(line);
            assert!(error.contains(reason), "{line:?}: {error}");
        }
    }

    #[test]
    fn usernames_are_folded_to_the_allowed_characters() {
        let person = |preferred: Option<&str>, email: Option<&str>| ExternalPerson {
            subject: "s".into(),
            email: email.map(str::to_owned),
            email_verified: true,
            preferred_username: preferred.map(str::to_owned),
            name: None,
        };
        assert_eq!(username_base(&person(Some("Ann.Lee"), None)), "ann_lee");
        assert_eq!(username_base(&person(None, Some("bo@example.com"))), "bo_");
        assert_eq!(username_base(&person(None, None)), "user");
        assert_eq!(username_base(&person(Some("Ünïcødé-Näme-that-is-far-too-long"), None)).len(), 24);
    }
}
