//! Outside token providers (`GATEWAY_JWT_PROVIDERS`): Keycloak, Auth0,
//! Entra ID, Google or any OIDC issuer whose access tokens are JWTs.
//!
//! One provider is one line of space-separated `key=value` fields after its
//! name; a key that takes several values is repeated:
//!
//! ```text
//! keycloak issuer=https://sso.example.com/realms/acme audience=api scopes=realm_access.roles
//! auth0 issuer=https://acme.eu.auth0.com/ audience=https://api.acme.com alg=RS256 alg=PS256
//! partner issuer=https://id.partner.example jwks=https://id.partner.example/keys.json audience=acme token=cookie:partner_at
//! ```
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `issuer` | required `iss`, which also chooses the provider | (required) |
//! | `audience` | accepted `aud`, repeatable: a token must name one | (required) |
//! | `jwks` | the JWKS URL | none: OIDC discovery |
//! | `discovery` | the issuer URL whose `/.well-known/openid-configuration` names the JWKS | `issuer` |
//! | `alg` | allowed algorithms, repeatable: RS256, PS256, ES256, EdDSA | RS256 |
//! | `token` | where tokens come from, repeatable: `header` or `cookie:NAME` | header |
//! | `subject` | claim path of the user id | `sub` |
//! | `scopes` | claim path of the scopes or roles (a space-separated string or an array) | `scope` |
//! | `typ` | `at+jwt` to require RFC 9068 access tokens | not checked |
//!
//! A claim path is dotted (`realm_access.roles`); a claim whose own name
//! holds dots (`https://acme.com/roles`) is matched whole first. Values hold
//! no spaces or commas (the environment separates providers by commas).

use std::fmt;
use std::sync::Arc;

use url::Url;

use gatehouse_access::{
    Algorithm, ClaimMapping, ClaimPath, ClaimRules, KeySource, Provider, TokenSource, Verifier, VerifierConfig,
};

/// The name our own auth service's tokens go by.
pub const OWN_PROVIDER: &str = "gatehouse";

/// One outside provider, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub source: KeySourceSpec,
    pub algorithms: Vec<Algorithm>,
    pub tokens: Vec<TokenSource>,
    pub subject: String,
    pub scopes: String,
    pub require_access_token_type: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySourceSpec {
    Jwks(Url),
    Discovery(Url),
}

impl fmt::Display for ProviderSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} issuer={}", self.name, self.issuer)?;
        for audience in &self.audiences {
            write!(f, " audience={audience}")?;
        }
        match &self.source {
            KeySourceSpec::Jwks(url) => write!(f, " jwks={url}")?,
            KeySourceSpec::Discovery(url) => write!(f, " discovery={url}")?,
        }
        for alg in &self.algorithms {
            write!(f, " alg={alg}")?;
        }
        for token in &self.tokens {
            write!(f, " token={token}")?;
        }
        write!(f, " subject={} scopes={}", self.subject, self.scopes)?;
        if self.require_access_token_type {
            f.write_str(" typ=at+jwt")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ProviderSpec {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        parse(line)
    }
}

/// Reads one provider line; the error says what is wrong and how it should read.
pub fn parse(line: &str) -> Result<ProviderSpec, String> {
    let (name, words) = gatehouse_common::settings::entry_name(line, "token provider", "issuer=… audience=…")?;
    if name == OWN_PROVIDER {
        return Err(format!("{OWN_PROVIDER:?} is the name of our own auth service's tokens; choose another"));
    }
    let fail = |message: String| format!("token provider {name}: {message}");
    let mut issuer = None;
    let mut audiences = Vec::new();
    let mut source = None;
    let mut algorithms = Vec::new();
    let mut tokens = Vec::new();
    let mut subject = None;
    let mut scopes = None;
    let mut require_access_token_type = false;
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| fail(format!("{word:?} is not `key=value`")))?;
        if value.is_empty() {
            return Err(fail(format!("{key}= needs a value")));
        }
        let once = |slot: &Option<_>| match slot {
            Some(_) => Err(fail(format!("{key} is given twice"))),
            None => Ok(()),
        };
        match key {
            "issuer" => {
                once(&issuer)?;
                http_url(value).map_err(|e| fail(format!("issuer {e}")))?;
                issuer = Some(value.to_owned());
            }
            "audience" => audiences.push(value.to_owned()),
            "jwks" | "discovery" => {
                if source.is_some() {
                    return Err(fail("give one of jwks= or discovery=, once".into()));
                }
                let url = http_url(value).map_err(|e| fail(format!("{key} {e}")))?;
                source = Some(match key {
                    "jwks" => KeySourceSpec::Jwks(url),
                    _ => KeySourceSpec::Discovery(url),
                });
            }
            "alg" => {
                let alg = Algorithm::from_name(value).ok_or_else(|| {
                    fail(format!(
                        "alg={value} is not allowed: RS256, PS256, ES256 or EdDSA (never `none` or a shared-secret HMAC)"
                    ))
                })?;
                if !algorithms.contains(&alg) {
                    algorithms.push(alg);
                }
            }
            "token" => {
                let token = match value.split_once(':') {
                    None if value == "header" => TokenSource::Header,
                    Some(("cookie", cookie)) if is_cookie_name(cookie) => TokenSource::Cookie(cookie.to_owned()),
                    _ => return Err(fail(format!("token={value}: expected `header` or `cookie:NAME`"))),
                };
                if !tokens.contains(&token) {
                    tokens.push(token);
                }
            }
            "subject" => {
                once(&subject)?;
                subject = Some(claim_path(value).map_err(fail)?);
            }
            "scopes" => {
                once(&scopes)?;
                scopes = Some(claim_path(value).map_err(fail)?);
            }
            "typ" if value.eq_ignore_ascii_case("at+jwt") => require_access_token_type = true,
            "typ" => return Err(fail(format!("typ={value}: the one type that can be required is at+jwt"))),
            other => {
                return Err(fail(format!(
                    "unknown key {other:?} (issuer, audience, jwks, discovery, alg, token, subject, scopes, typ)"
                )))
            }
        }
    }
    let issuer = issuer.ok_or_else(|| fail("issuer= is required".into()))?;
    if audiences.is_empty() {
        return Err(fail(
            "audience= is required: without it any token the issuer signs for any application would be accepted".into(),
        ));
    }
    let source = match source {
        Some(source) => source,
        None => KeySourceSpec::Discovery(http_url(&issuer).expect("checked above")),
    };
    Ok(ProviderSpec {
        name: name.to_owned(),
        issuer,
        audiences,
        source,
        algorithms: if algorithms.is_empty() { vec![Algorithm::RS256] } else { algorithms },
        tokens: if tokens.is_empty() { vec![TokenSource::Header] } else { tokens },
        subject: subject.unwrap_or_else(|| "sub".into()),
        scopes: scopes.unwrap_or_else(|| "scope".into()),
        require_access_token_type,
    })
}

fn http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(format!("{value:?} is not an http(s) URL"));
    }
    Ok(url)
}

/// RFC 6265's cookie-name: a token, no separators.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn claim_path(value: &str) -> Result<String, String> {
    let ok = value.len() <= 128 && !value.starts_with('.') && !value.ends_with('.') && !value.contains("..");
    if !ok {
        return Err(format!("claim path {value:?}: dotted names, such as realm_access.roles"));
    }
    Ok(value.to_owned())
}

/// The timing settings every provider's verifier shares.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub leeway: std::time::Duration,
    pub refresh_interval: std::time::Duration,
    pub min_refresh: std::time::Duration,
}

impl Timing {
    pub fn apply(self, config: &mut VerifierConfig) {
        config.leeway = self.leeway;
        config.refresh_interval = self.refresh_interval;
        config.min_refresh = self.min_refresh;
    }
}

impl ProviderSpec {
    /// The provider, with a verifier that has no keys yet.
    pub fn build(&self, timing: Timing) -> Provider {
        let source = match &self.source {
            KeySourceSpec::Jwks(url) => KeySource::Jwks(url.clone()),
            KeySourceSpec::Discovery(url) => KeySource::OidcIssuer(url.clone()),
        };
        let mut config = VerifierConfig::new(source, &self.issuer, "");
        config.audiences = self.audiences.clone();
        config.algorithms = self.algorithms.clone();
        config.require_access_token_type = self.require_access_token_type;
        let name: Arc<str> = Arc::from(self.name.as_str());
        config.claims = ClaimRules::Mapped(ClaimMapping {
            provider: name.clone(),
            subject: ClaimPath::new(&self.subject),
            scopes: ClaimPath::new(&self.scopes),
        });
        timing.apply(&mut config);
        Provider { name, verifier: Verifier::new(config), sources: self.tokens.clone(), revocable: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_line_reads_and_prints_back() {
        let spec = parse(
            "keycloak issuer=https://sso.example.com/realms/acme audience=api audience=web \
             alg=PS256 alg=ES256 alg=PS256 token=header token=cookie:kc_at subject=preferred_username \
             scopes=realm_access.roles typ=at+jwt",
        )
        .unwrap();
        assert_eq!(spec.name, "keycloak");
        assert_eq!(spec.audiences, ["api", "web"]);
        assert_eq!(spec.algorithms, [Algorithm::PS256, Algorithm::ES256]);
        assert_eq!(spec.tokens, [TokenSource::Header, TokenSource::Cookie("kc_at".into())]);
        assert_eq!(spec.subject, "preferred_username");
        assert_eq!(spec.scopes, "realm_access.roles");
        assert!(spec.require_access_token_type);
        assert_eq!(spec.source, KeySourceSpec::Discovery(Url::parse("https://sso.example.com/realms/acme").unwrap()));
        assert_eq!(parse(&spec.to_string()).unwrap(), spec);
    }

    #[test]
    fn the_defaults_are_rs256_from_the_header_by_discovery() {
        let spec = parse("auth0 issuer=https://acme.eu.auth0.com/ audience=https://api.acme.com").unwrap();
        assert_eq!(spec.algorithms, [Algorithm::RS256]);
        assert_eq!(spec.tokens, [TokenSource::Header]);
        assert_eq!((spec.subject.as_str(), spec.scopes.as_str()), ("sub", "scope"));
        assert!(!spec.require_access_token_type);
        let jwks = parse("p issuer=https://id.example audience=a jwks=https://keys.example/jwks.json").unwrap();
        assert_eq!(jwks.source, KeySourceSpec::Jwks(Url::parse("https://keys.example/jwks.json").unwrap()));
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        for (line, reason) in [
            ("", "needs a name"),
            ("   ", "needs a name"),
            ("Keycloak issuer=https://a audience=b", "lower-case"),
            ("issuer=https://a audience=b", "starts with a name"),
            ("gatehouse issuer=https://a audience=b", "our own auth service"),
            ("p audience=b", "issuer= is required"),
            ("p issuer=https://a", "audience= is required"),
            ("p issuer=ftp://a audience=b", "not an http(s) URL"),
            ("p issuer=not-a-url audience=b", "not a URL"),
            ("p issuer=https://a issuer=https://b audience=b", "given twice"),
            ("p issuer=https://a audience=b alg=none", "never `none`"),
            ("p issuer=https://a audience=b alg=HS256", "not allowed"),
            ("p issuer=https://a audience=b alg=rs256", "not allowed"),
            ("p issuer=https://a audience=b jwks=https://k discovery=https://a", "one of jwks= or discovery="),
            ("p issuer=https://a audience=b token=query", "header` or `cookie:NAME"),
            ("p issuer=https://a audience=b token=cookie:", "header` or `cookie:NAME"),
            ("p issuer=https://a audience=b token=cookie:a;b", "header` or `cookie:NAME"),
            ("p issuer=https://a audience=b scopes=a..b", "claim path"),
            ("p issuer=https://a audience=b subject=.sub", "claim path"),
            ("p issuer=https://a audience=b typ=JWT", "at+jwt"),
            ("p issuer=https://a audience=b colour=blue", "unknown key"),
            ("p issuer=https://a audience=", "needs a value"),
            ("p issuer=https://a audience=b stray", "not `key=value`"),
        ] {
            let error = parse(line).expect_err(line);
            assert!(error.contains(reason), "{line:?}: {error}");
        }
    }
}
