//! Verifying access tokens against a JWKS that is kept fresh in the background.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use gatehouse_common::identity::ExternalSubject;

use crate::jwks::{self, Algorithm, KeySet, VerificationKey};

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document URL, such as the auth subgraph's `/.well-known/jwks.json`.
    Jwks(Url),
    /// An OIDC issuer: its `/.well-known/openid-configuration` names the `jwks_uri`.
    OidcIssuer(Url),
}

/// How a verified token's claims become the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRules {
    /// Our own auth service's tokens: `sub` and `sid` are UUIDs, `jti` is
    /// present, `scope` is a space-separated string.
    Gatehouse,
    /// Another provider's tokens, mapped by configuration.
    Mapped(ClaimMapping),
}

/// Where another provider's tokens keep the caller's id and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The provider's name, forwarded to subgraphs with the subject.
    pub provider: Arc<str>,
    /// Path of the claim holding the user id (a string or a number). Default `sub`.
    pub subject: ClaimPath,
    /// Path of the claim holding scopes or roles: a space-separated string
    /// (`scope`) or an array of strings (`realm_access.roles`). Default `scope`.
    pub scopes: ClaimPath,
}

impl ClaimMapping {
    pub fn new(provider: impl Into<Arc<str>>) -> Self {
        Self { provider: provider.into(), subject: ClaimPath::new("sub"), scopes: ClaimPath::new("scope") }
    }
}

/// A dotted path into the claims: `realm_access.roles`. A claim name that
/// itself holds dots (a namespaced claim such as `https://example.com/roles`)
/// is matched whole first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(String);

impl ClaimPath {
    pub fn new(path: impl Into<String>) -> Self {
        Self(path.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value at this path, if any.
    pub fn find<'a>(&self, claims: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        if let Some(whole) = claims.get(&self.0) {
            return Some(whole);
        }
        self.0.split('.').try_fold(claims, |value, segment| value.get(segment))
    }
}

/// Longest subject, and most scopes, a mapped token may carry: they travel
/// to every subgraph in the signed identity header.
const MAX_SUBJECT_BYTES: usize = 256;
const MAX_SCOPES: usize = 256;
const MAX_SCOPE_BYTES: usize = 256;

/// Verification settings, fixed at start-up.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub source: KeySource,
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values: the token must name at least one (it may list others too).
    pub audiences: Vec<String>,
    /// The algorithms tokens may be signed with; each key still verifies only its own.
    pub algorithms: Vec<Algorithm>,
    /// Require `typ: at+jwt` (RFC 9068), so an ID token is never taken for an access token.
    pub require_access_token_type: bool,
    /// How the claims become the caller.
    pub claims: ClaimRules,
    /// Clock skew tolerated for `exp` and `nbf`. Default 30 s.
    pub leeway: Duration,
    /// Longest time between two key refreshes; a shorter `Cache-Control:
    /// max-age` from the JWKS endpoint wins (but never below `min_refresh`).
    pub refresh_interval: Duration,
    /// Shortest time between two refreshes, including those caused by an
    /// unknown `kid`, so a flood of forged `kid`s cannot hammer the endpoint.
    pub min_refresh: Duration,
    /// Timeout of one JWKS or discovery request.
    pub http_timeout: Duration,
}

impl VerifierConfig {
    /// The settings for our own auth service's tokens.
    pub fn new(source: KeySource, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            source,
            issuer: issuer.into(),
            audiences: vec![audience.into()],
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            require_access_token_type: true,
            claims: ClaimRules::Gatehouse,
            leeway: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(300),
            min_refresh: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
        }
    }
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    /// The account id; for another provider's caller, an id derived from
    /// the issuer and the subject (see [`derived_id`]).
    pub sub: Uuid,
    /// The session; for another provider's caller, derived from its `sid`
    /// claim, else its `jti`, else the subject.
    pub sid: Uuid,
    /// Scopes (for our tokens lower-case, implied roles included).
    pub scopes: Vec<String>,
    pub exp: u64,
    /// For another provider's caller: the provider and its own subject.
    pub external: Option<ExternalSubject>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().map(String::as_str)
    }
}

/// Our own tokens' claims, all required but `scope`.
#[derive(Deserialize)]
struct GatehouseClaims {
    sub: Uuid,
    sid: Uuid,
    #[allow(dead_code)] // required to be present, not read
    jti: String,
    #[serde(default)]
    scope: String,
    exp: u64,
    #[allow(dead_code)]
    iat: u64,
}

/// A stable id for an outside subject: a UUIDv8 from SHA-256 over the issuer
/// and the value. It never collides with our own ids (v7) and the same
/// subject of the same issuer always gets the same id, so subgraphs keyed by
/// user id work for every provider; `kind` keeps users and sessions apart.
pub fn derived_id(issuer: &str, kind: &str, value: &str) -> Uuid {
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [issuer, kind, value] {
        digest.update(part.as_bytes());
        digest.update(&[0]);
    }
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.finish().as_ref()[..16]);
    Uuid::new_v8(bytes)
}

/// Why a token was refused. The `Display` text is safe to show clients.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token is not signed with an algorithm its issuer may use, or not with its key's algorithm")]
    WrongAlgorithm,
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    #[error("the access token is signed by an unknown key")]
    UnknownKey,
    #[error("the access token signature is invalid")]
    BadSignature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token has the wrong issuer")]
    WrongIssuer,
    #[error("the access token is for another audience")]
    WrongAudience,
    #[error("the access token is missing required claims")]
    MissingClaims,
    #[error("the access token names critical header extensions this gateway does not understand")]
    UnknownCritical,
    #[error("the access token's subject or scopes are missing, too long or not strings")]
    UnusableClaims,
    #[error("access tokens of this issuer are not accepted from where this one was sent")]
    WrongPlace,
}

/// The parts of a JOSE header the verifier reads. Unknown members are
/// ignored, as RFC 7515 requires, except those listed in `crit`.
#[derive(Deserialize)]
struct JoseHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    /// Extensions the issuer says must be understood. This verifier
    /// understands none, so any `crit` member refuses the token (RFC 7515
    /// section 4.1.11).
    crit: Option<serde_json::Value>,
}

impl JoseHeader {
    fn decode(token: &str) -> Result<Self, VerifyError> {
        let encoded = token.split('.').next().ok_or(VerifyError::Malformed)?;
        let json = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| VerifyError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
    }
}

/// The largest JWKS or discovery document read. A key set of a dozen RSA
/// keys is about 6 KB; anything near this bound is not a key set.
pub const MAX_KEY_DOCUMENT_BYTES: usize = 256 * 1024;

/// A token that passed every check that does not depend on the clock
/// (algorithm, type, signature, issuer, audience). Presented again, it costs a
/// hash lookup instead of an RSA verification; `exp` and `nbf` are checked
/// every time, and the entry counts only while the key that verified it is
/// still the one published under its `kid`.
struct Verified {
    claims: AccessClaims,
    nbf: Option<u64>,
    kid: String,
    key: Arc<VerificationKey>,
}

/// How many verified tokens are remembered, and for how long at most.
const VERIFIED_CAPACITY: u64 = 50_000;
const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// Verifies access tokens; cheap to share (`Arc<Verifier>`).
pub struct Verifier {
    config: VerifierConfig,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    /// Keyed by the whole token: a token differing in any byte is verified anew.
    verified: moka::sync::Cache<Box<str>, Arc<Verified>>,
    /// When the last fetch was attempted (successful or not), for `min_refresh`.
    /// The async mutex also makes concurrent refreshes single-flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Wakes the background refresher early (after a fetch triggered by a kid).
    next_refresh: std::sync::Mutex<Duration>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("config", &self.config).field("keys", &self.keys.load()).finish()
    }
}

/// Why fetching keys failed. The verifier keeps its last good set regardless.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {source}")]
    Jwks { url: String, source: jwks::JwksError },
    #[error("{url} is not an OIDC discovery document with a jwks_uri")]
    Discovery { url: String },
}

impl Verifier {
    /// A verifier with no keys yet; call [`Verifier::refresh`] or
    /// [`Verifier::spawn_refresher`] to load them.
    pub fn new(config: VerifierConfig) -> Arc<Self> {
        let http =
            reqwest::Client::builder().timeout(config.http_timeout).build().expect("a default HTTP client builds");
        let next_refresh = std::sync::Mutex::new(config.refresh_interval);
        Arc::new(Self {
            config,
            http,
            keys: ArcSwap::from_pointee(KeySet::default()),
            verified: moka::sync::Cache::builder().max_capacity(VERIFIED_CAPACITY).time_to_live(VERIFIED_TTL).build(),
            last_fetch: tokio::sync::Mutex::new(None),
            next_refresh,
        })
    }

    /// The settings this verifier was built with.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The key ids currently trusted.
    pub fn kids(&self) -> Vec<String> {
        self.keys.load().kids().into_iter().map(str::to_owned).collect()
    }

    /// True once a key set has been loaded.
    pub fn has_keys(&self) -> bool {
        !self.keys.load().is_empty()
    }

    /// Verifies `token`; an unknown `kid` triggers at most one refetch per
    /// `min_refresh`.
    pub async fn verify(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        if let Some(hit) = self.verified.get(token) {
            if self.keys.load().get(&hit.kid).is_some_and(|key| Arc::ptr_eq(key, &hit.key)) {
                self.check_times(hit.claims.exp, hit.nbf)?;
                return Ok(hit.claims.clone());
            }
            self.verified.invalidate(token);
        }
        let header = JoseHeader::decode(token)?;
        // Pinned before any key is looked at: no `none`, no HS256 with a
        // public key, only what this issuer may use; and below, the key's own
        // algorithm must be the header's.
        let alg =
            header.alg.as_deref().and_then(Algorithm::from_name).filter(|alg| self.config.algorithms.contains(alg));
        let Some(alg) = alg else {
            return Err(VerifyError::WrongAlgorithm);
        };
        if header.crit.is_some() {
            return Err(VerifyError::UnknownCritical);
        }
        let typ_ok = header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
        if self.config.require_access_token_type && !typ_ok {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = match self.keys.load().get(&kid) {
            Some(key) => key.clone(),
            None => {
                self.refresh_for_unknown_kid().await;
                self.keys.load().get(&kid).cloned().ok_or(VerifyError::UnknownKey)?
            }
        };
        if key.alg != alg {
            return Err(VerifyError::WrongAlgorithm);
        }
        // The signature, with the key parsed once per JWKS fetch.
        let (message, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
        let (_, payload) = message.split_once('.').ok_or(VerifyError::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| VerifyError::Malformed)?;
        key.verify_sig(message.as_bytes(), &signature).map_err(|_| VerifyError::BadSignature)?;
        let (claims, nbf) = self.claims(payload)?;
        self.check_times(claims.exp, nbf)?;
        let verified = Verified { claims: claims.clone(), nbf, kid, key };
        self.verified.insert(token.into(), Arc::new(verified));
        Ok(claims)
    }

    /// `exp` and `nbf` against the clock, with the leeway.
    fn check_times(&self, exp: u64, nbf: Option<u64>) -> Result<(), VerifyError> {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let leeway = self.config.leeway.as_secs();
        if now > exp.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }

    /// The claims of a token whose signature is valid, with its `nbf`:
    /// `iss` exactly, `aud` as a string or a list, `exp` present, then the
    /// caller by the [`ClaimRules`].
    fn claims(&self, payload: &str) -> Result<(AccessClaims, Option<u64>), VerifyError> {
        use serde_json::Value;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| VerifyError::Malformed)?;
        let claims: Value = serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)?;
        let exp = claims.get("exp").and_then(Value::as_u64).ok_or(VerifyError::MissingClaims)?;
        let nbf = match claims.get("nbf") {
            Some(nbf) => Some(nbf.as_u64().ok_or(VerifyError::Malformed)?),
            None => None,
        };
        let issuer = claims.get("iss").and_then(Value::as_str).ok_or(VerifyError::MissingClaims)?;
        if issuer != self.config.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        let accepted = |aud: &Value| aud.as_str().is_some_and(|aud| self.config.audiences.iter().any(|a| a == aud));
        let audience_matches = match claims.get("aud") {
            Some(aud @ Value::String(_)) => accepted(aud),
            Some(Value::Array(auds)) => auds.iter().any(accepted),
            Some(_) => false,
            None => return Err(VerifyError::MissingClaims),
        };
        if !audience_matches {
            return Err(VerifyError::WrongAudience);
        }
        let claims = match &self.config.claims {
            ClaimRules::Gatehouse => {
                let own: GatehouseClaims = serde_json::from_value(claims).map_err(|_| VerifyError::MissingClaims)?;
                AccessClaims {
                    sub: own.sub,
                    sid: own.sid,
                    scopes: own.scope.split_ascii_whitespace().map(str::to_owned).collect(),
                    exp: own.exp,
                    external: None,
                }
            }
            ClaimRules::Mapped(mapping) => mapped(&self.config.issuer, mapping, &claims, exp)?,
        };
        Ok((claims, nbf))
    }

    async fn refresh_for_unknown_kid(&self) {
        let mut last = self.last_fetch.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.config.min_refresh) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.fetch_and_swap().await {
            tracing::warn!(%error, "JWKS refetch for an unknown kid failed; keeping the last good keys");
        }
    }

    /// Fetches the key set now (respecting `min_refresh`); on failure the last
    /// good set stays in place.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let mut last = self.last_fetch.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_swap().await
    }

    async fn fetch_and_swap(&self) -> Result<(), FetchError> {
        let jwks_url = self.jwks_url().await?;
        let response = self
            .http
            .get(jwks_url.clone())
            .send()
            .await
            .map_err(|e| FetchError::Http { url: jwks_url.to_string(), reason: e.without_url().to_string() })?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status { url: jwks_url.to_string(), status: status.as_u16() });
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(jwks::max_age);
        let body = read_bounded(response, &jwks_url).await?;
        let set = jwks::parse(&body).map_err(|source| FetchError::Jwks { url: jwks_url.to_string(), source })?;
        tracing::info!(issuer = %self.config.issuer, kids = ?set.kids(), "loaded JWKS");
        metrics::counter!("gateway_jwks_refresh_total", "result" => "ok").increment(1);
        self.keys.store(Arc::new(set));
        let next = max_age
            .unwrap_or(self.config.refresh_interval)
            .min(self.config.refresh_interval)
            .max(self.config.min_refresh);
        *self.next_refresh.lock().expect("not poisoned") = next;
        Ok(())
    }

    async fn jwks_url(&self) -> Result<Url, FetchError> {
        match &self.config.source {
            KeySource::Jwks(url) => Ok(url.clone()),
            KeySource::OidcIssuer(issuer) => {
                #[derive(Deserialize)]
                struct Discovery {
                    jwks_uri: String,
                }
                let mut discovery = issuer.clone();
                let path = format!("{}/.well-known/openid-configuration", issuer.path().trim_end_matches('/'));
                discovery.set_path(&path);
                let failed = || FetchError::Discovery { url: discovery.to_string() };
                let response = self.http.get(discovery.clone()).send().await.map_err(|_| failed())?;
                if !response.status().is_success() {
                    return Err(failed());
                }
                let body = read_bounded(response, &discovery).await?;
                let doc: Discovery = serde_json::from_slice(&body).map_err(|_| failed())?;
                Url::parse(&doc.jwks_uri).map_err(|_| failed())
            }
        }
    }

    /// Keeps keys fresh until `shutdown`: refreshes on the interval (or the
    /// endpoint's `max-age`), retrying sooner after a failure.
    pub fn spawn_refresher(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let verifier = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let wait = match verifier.refresh().await {
                    Ok(()) => *verifier.next_refresh.lock().expect("not poisoned"),
                    Err(error) => {
                        metrics::counter!("gateway_jwks_refresh_total", "result" => "error").increment(1);
                        tracing::warn!(issuer = %verifier.config.issuer, %error, "JWKS refresh failed; keeping the last good keys");
                        verifier.config.min_refresh
                    }
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }
}

/// Another provider's claims as a caller: the subject (a string, or a
/// number as some providers send), the scopes (a space-separated string or
/// an array of strings; other values are ignored), ids derived from both.
fn mapped(
    issuer: &str,
    mapping: &ClaimMapping,
    claims: &serde_json::Value,
    exp: u64,
) -> Result<AccessClaims, VerifyError> {
    use serde_json::Value;
    let subject = match mapping.subject.find(claims) {
        Some(Value::String(subject)) => subject.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => return Err(VerifyError::UnusableClaims),
    };
    if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
        return Err(VerifyError::UnusableClaims);
    }
    let scopes: Vec<String> = match mapping.scopes.find(claims) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(scopes)) => scopes.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(_) => return Err(VerifyError::UnusableClaims),
    };
    if scopes.len() > MAX_SCOPES || scopes.iter().any(|scope| scope.is_empty() || scope.len() > MAX_SCOPE_BYTES) {
        return Err(VerifyError::UnusableClaims);
    }
    let session = ["sid", "jti"]
        .into_iter()
        .find_map(|claim| claims.get(claim).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .unwrap_or(&subject);
    Ok(AccessClaims {
        sub: derived_id(issuer, "user", &subject),
        sid: derived_id(issuer, "session", session),
        scopes,
        exp,
        external: Some(ExternalSubject { provider: mapping.provider.to_string(), subject }),
    })
}

/// A key document's body, refused once it passes [`MAX_KEY_DOCUMENT_BYTES`]
/// (by its `Content-Length`, or while it streams in without one), so a
/// compromised or misconfigured endpoint cannot fill the gateway's memory.
async fn read_bounded(mut response: reqwest::Response, url: &Url) -> Result<Vec<u8>, FetchError> {
    let too_large =
        || FetchError::Http { url: url.to_string(), reason: format!("larger than {MAX_KEY_DOCUMENT_BYTES} bytes") };
    if response.content_length().is_some_and(|length| length > MAX_KEY_DOCUMENT_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::Http { url: url.to_string(), reason: e.without_url().to_string() })?
    {
        if body.len() + chunk.len() > MAX_KEY_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
