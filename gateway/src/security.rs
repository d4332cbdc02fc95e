//! Who is calling and what they may do, as the gateway decides it.
//!
//! [`SecurityConfig`] is read once; [`Security`] is what requests use:
//! the [`Gatekeeper`] (bearer token → verified, unrevoked identity), the
//! guard mode for `@authenticated` / `@requiresScopes`, the CSRF rule, the
//! CORS allowlist, and which subgraphs see the browser's cookies.
//!
//! Redis unreachable: the gateway fails closed by default (a token whose
//! session cannot be checked is refused with 503); `GATEWAY_REVOCATION_FAIL_OPEN`
//! trades that for availability.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use http::HeaderName;
use tokio_util::sync::CancellationToken;
use url::Url;

use gatehouse_access::cors::CorsPolicy;
use gatehouse_access::csrf::{CsrfPolicy, DEFAULT_REQUIRED_HEADERS};
use gatehouse_access::{
    Gatekeeper, KeySource, Provider, Providers, RevocationConfig, Revocations, TokenSource, Verifier, VerifierConfig,
};
use gatehouse_common::identity::IdentityCodec;
use gatehouse_common::settings::SharedSettings;

use crate::jwt_providers::{ProviderSpec, Timing, OWN_PROVIDER};

/// What happens to an operation that selects something the caller may not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthorizationMode {
    /// Remove the fields: they come back as `null` with an
    /// `UNAUTHORIZED_FIELD_OR_TYPE` error each.
    Filter,
    /// Refuse the whole operation.
    Reject,
}

/// Security settings, read from flags or `GATEWAY_*` variables.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Gateway: tokens, guards and browsers")]
pub struct SecurityConfig {
    /// Verify access tokens, enforce `@authenticated` / `@requiresScopes` and
    /// forward the signed identity. Default: true.
    #[arg(id = "gateway-auth", long = "auth", env = "GATEWAY_AUTH", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth: bool,

    /// Accept our own auth service's tokens (the issuer below). Turn off to
    /// accept only `GATEWAY_JWT_PROVIDERS`. Default: true.
    #[arg(long = "own-tokens", env = "GATEWAY_OWN_TOKENS", default_value_t = true, action = clap::ArgAction::Set)]
    pub own_tokens: bool,

    /// Outside token providers (Keycloak, Auth0, Entra ID, any OIDC issuer),
    /// repeatable (comma-separated in the environment), each `NAME
    /// issuer=URL audience=AUD [jwks=URL|discovery=URL] [alg=RS256|PS256|ES256|EdDSA]…
    /// [token=header|cookie:NAME]… [subject=CLAIM] [scopes=CLAIM.PATH]
    /// [typ=at+jwt]`; a token's `iss` chooses its provider. Default: none.
    #[arg(id = "gateway-jwt-provider", long = "jwt-provider", env = "GATEWAY_JWT_PROVIDERS", value_delimiter = ',')]
    pub jwt_providers: Vec<ProviderSpec>,

    /// JWKS URL of the token issuer. Default: http://127.0.0.1:4001/.well-known/jwks.json.
    #[arg(long = "jwks-url", env = "GATEWAY_JWKS_URL", default_value = "http://127.0.0.1:4001/.well-known/jwks.json")]
    pub jwks_url: String,

    /// An OIDC issuer whose discovery document names the JWKS (instead of
    /// `GATEWAY_JWKS_URL`). Default: none.
    #[arg(long = "oidc-issuer", env = "GATEWAY_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,

    /// Required `iss` of access tokens. Default: http://127.0.0.1:4001 (the auth service's `AUTH_ISSUER`).
    #[arg(long = "token-issuer", env = "GATEWAY_TOKEN_ISSUER", default_value = "http://127.0.0.1:4001")]
    pub token_issuer: String,

    /// Required `aud` of access tokens. Default: gatehouse.
    #[arg(long = "token-audience", env = "GATEWAY_TOKEN_AUDIENCE", default_value = "gatehouse")]
    pub token_audience: String,

    /// Clock skew tolerated on `exp` and `nbf`, in seconds: a token is still
    /// accepted this long after it expires, so with a short
    /// `AUTH_ACCESS_TOKEN_TTL_SECS` (60, say) a token works for up to that
    /// plus the leeway (90 s); keep the leeway well below the lifetime.
    /// Revocation (logout, a password change) ends a token at once whatever
    /// its expiry. Default: 30.
    #[arg(long = "token-leeway-secs", env = "GATEWAY_TOKEN_LEEWAY_SECS", default_value_t = 30)]
    pub token_leeway_secs: u64,

    /// Longest time between JWKS refreshes, in seconds (a shorter
    /// `Cache-Control: max-age` wins). Default: 300.
    #[arg(long = "jwks-refresh-secs", env = "GATEWAY_JWKS_REFRESH_SECS", default_value_t = 300)]
    pub jwks_refresh_secs: u64,

    /// Shortest time between JWKS fetches, including those an unknown `kid`
    /// triggers, in seconds. Default: 10.
    #[arg(long = "jwks-min-refresh-secs", env = "GATEWAY_JWKS_MIN_REFRESH_SECS", default_value_t = 10)]
    pub jwks_min_refresh_secs: u64,

    /// How long a "session not revoked" answer from Redis is trusted, in
    /// milliseconds; revocation notices over NATS act at once. Default: 1000.
    #[arg(long = "revocation-recheck-ms", env = "GATEWAY_REVOCATION_RECHECK_MS", default_value_t = 1000)]
    pub revocation_recheck_ms: u64,

    /// Accept tokens when Redis cannot answer whether their session was
    /// revoked. Default: false (fail closed: such requests get 503).
    #[arg(long = "revocation-fail-open", env = "GATEWAY_REVOCATION_FAIL_OPEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub revocation_fail_open: bool,

    /// `filter` (unauthorised fields become null with an error) or `reject`
    /// (the whole operation is refused). Default: filter.
    #[arg(long = "authorization-mode", env = "GATEWAY_AUTHORIZATION_MODE", value_enum, default_value = "filter")]
    pub authorization_mode: AuthorizationMode,

    /// Refuse simple (unpreflighted) browser requests. Default: true.
    #[arg(long = "csrf", env = "GATEWAY_CSRF", default_value_t = true, action = clap::ArgAction::Set)]
    pub csrf: bool,

    /// Headers that let a request with a simple content type through the CSRF
    /// rule, comma-separated. Default: x-apollo-operation-name,apollo-require-preflight.
    #[arg(long = "csrf-required-header", env = "GATEWAY_CSRF_REQUIRED_HEADERS", value_delimiter = ',', default_values_t = DEFAULT_REQUIRED_HEADERS.map(String::from))]
    pub csrf_required_headers: Vec<String>,

    /// Browser origins allowed to call the gateway (with credentials),
    /// comma-separated; never `*`. Default: none (same origin only).
    #[arg(long = "cors-origin", env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Subgraphs that receive the client's `Cookie` header and whose
    /// `Set-Cookie` goes back to the client, comma-separated. Default: auth.
    #[arg(long = "cookie-subgraph", env = "GATEWAY_COOKIE_SUBGRAPHS", value_delimiter = ',', default_values_t = ["auth".to_string()])]
    pub cookie_subgraphs: Vec<String>,
}

impl Default for SecurityConfig {
    /// The same values as the flags' defaults (a config test checks they agree).
    fn default() -> Self {
        Self {
            auth: true,
            own_tokens: true,
            jwks_url: "http://127.0.0.1:4001/.well-known/jwks.json".into(),
            oidc_issuer: None,
            token_issuer: "http://127.0.0.1:4001".into(),
            token_audience: "gatehouse".into(),
            csrf: true,
            csrf_required_headers: DEFAULT_REQUIRED_HEADERS.map(String::from).to_vec(),
            cookie_subgraphs: vec!["auth".into()],
            ..Self::off()
        }
    }
}

impl SecurityConfig {
    /// Everything off: for gateways in front of subgraphs that do their own
    /// authentication, and for tests of the federation engine alone.
    pub fn off() -> Self {
        Self {
            auth: false,
            own_tokens: true,
            jwt_providers: Vec::new(),
            jwks_url: String::new(),
            oidc_issuer: None,
            token_issuer: String::new(),
            token_audience: String::new(),
            token_leeway_secs: 30,
            jwks_refresh_secs: 300,
            jwks_min_refresh_secs: 10,
            revocation_recheck_ms: 1000,
            revocation_fail_open: false,
            authorization_mode: AuthorizationMode::Filter,
            csrf: false,
            csrf_required_headers: Vec::new(),
            cors_origins: Vec::new(),
            cookie_subgraphs: Vec::new(),
        }
    }
}

/// The security settings as requests use them.
pub struct Security {
    /// `None` when authentication is off.
    pub gatekeeper: Option<Gatekeeper>,
    pub mode: AuthorizationMode,
    pub csrf: CsrfPolicy,
    pub cors: CorsPolicy,
    pub cookie_subgraphs: HashSet<String>,
}

impl Security {
    /// No authentication, no CSRF rule, no CORS, no cookies forwarded.
    pub fn off() -> Self {
        Self {
            gatekeeper: None,
            mode: AuthorizationMode::Filter,
            csrf: CsrfPolicy::disabled(),
            cors: CorsPolicy::default(),
            cookie_subgraphs: HashSet::new(),
        }
    }

    /// Builds the runtime security, starting the JWKS refresher and the
    /// revocation listener; both stop with `shutdown`.
    pub async fn build(
        config: &SecurityConfig,
        shared: Option<&SharedSettings>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let csrf_headers = config
            .csrf_required_headers
            .iter()
            .map(|h| HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .context("GATEWAY_CSRF_REQUIRED_HEADERS holds an invalid header name")?;
        let cors = CorsPolicy::new(&config.cors_origins).context("GATEWAY_CORS_ORIGINS")?;
        let cookie_subgraphs =
            config.cookie_subgraphs.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        let gatekeeper = if config.auth {
            let shared = shared.context("authentication needs the shared settings (identity secret, Redis, NATS)")?;
            Some(gatekeeper(config, shared, shutdown).await?)
        } else {
            None
        };
        Ok(Self {
            gatekeeper,
            mode: config.authorization_mode,
            csrf: CsrfPolicy::new(config.csrf, csrf_headers),
            cors,
            cookie_subgraphs,
        })
    }
}

async fn gatekeeper(
    config: &SecurityConfig,
    shared: &SharedSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<Gatekeeper> {
    let timing = Timing {
        leeway: Duration::from_secs(config.token_leeway_secs),
        refresh_interval: Duration::from_secs(config.jwks_refresh_secs),
        min_refresh: Duration::from_secs(config.jwks_min_refresh_secs),
    };
    let mut providers = Vec::new();
    if config.own_tokens {
        let source = match &config.oidc_issuer {
            Some(issuer) => KeySource::OidcIssuer(Url::parse(issuer).context("GATEWAY_OIDC_ISSUER is not a URL")?),
            None => KeySource::Jwks(Url::parse(&config.jwks_url).context("GATEWAY_JWKS_URL is not a URL")?),
        };
        let mut verifier_config = VerifierConfig::new(source, &config.token_issuer, &config.token_audience);
        timing.apply(&mut verifier_config);
        providers.push(Provider {
            name: OWN_PROVIDER.into(),
            verifier: Verifier::new(verifier_config),
            sources: vec![TokenSource::Header],
            revocable: true,
        });
    }
    providers.extend(config.jwt_providers.iter().map(|spec| spec.build(timing)));
    if providers.is_empty() {
        anyhow::bail!(
            "GATEWAY_OWN_TOKENS is off and GATEWAY_JWT_PROVIDERS names no provider: no token could be accepted"
        );
    }
    let providers = Providers::new(providers).context("GATEWAY_JWT_PROVIDERS")?;
    // The refreshers fetch at once and retry on failure; start-up does not
    // wait for them (in `gatehouse dev` the auth service is not serving
    // yet). Until a provider's keys arrive, its tokens are refused as signed
    // by an unknown key.
    providers.spawn_refreshers(shutdown);

    let redis = gatehouse_common::infra::redis(&shared.redis()).await?;
    let mut revocation_config =
        RevocationConfig::new(&shared.redis_key_prefix, shared.revocation_subject(), shared.message_signer());
    revocation_config.recheck = Duration::from_millis(config.revocation_recheck_ms);
    revocation_config.fail_open = config.revocation_fail_open;
    let revocations = Revocations::new(revocation_config, redis);
    let nats = gatehouse_common::infra::nats(&shared.nats).await?;
    let listener = revocations.clone();
    let stop = shutdown.child_token();
    tokio::spawn(async move {
        if let Err(error) = listener.listen(nats, stop).await {
            tracing::error!(%error, "revocation notices stopped; Redis rechecks still apply");
        }
    });

    let codec = IdentityCodec::new(&shared.identity_secret, 30);
    Ok(Gatekeeper::new(providers, Some(revocations), codec))
}
