//! Several token providers side by side: the issuer chooses, each provider
//! checks only with its own keys, algorithms, places and claim rules.

mod support;

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use secrecy::SecretString;
use serde_json::{json, Value};

use gatehouse_access::verifier::derived_id;
use gatehouse_access::{
    Algorithm, ClaimMapping, ClaimPath, ClaimRules, Gatekeeper, KeySource, Provider, Providers, ProvidersError,
    Rejection, TokenSource, Verifier, VerifierConfig, VerifyError,
};
use gatehouse_common::identity::{ExternalSubject, IdentityCodec};
use support::*;

const IDP: &str = "https://sso.example.com/realms/acme";

/// An outside provider's keys: PS256, ES256 and EdDSA, plus an RS256 key the
/// provider's configuration does not allow.
struct Outside {
    ps: TestKey,
    ec: EcTestKey,
    ed: EdTestKey,
    rs: TestKey,
    endpoint: Endpoint,
}

impl Outside {
    async fn start() -> Self {
        let ps = TestKey::generate_for("ps", jsonwebtoken::Algorithm::PS256);
        let ec = EcTestKey::generate("ec");
        let ed = EdTestKey::generate("ed");
        let rs = TestKey::generate("rs");
        let keys = vec![ps.jwk.clone(), ec.jwk.clone(), ed.jwk.clone(), rs.jwk.clone()];
        let endpoint = Endpoint::start(Serve::Keys(keys, None)).await;
        Self { ps, ec, ed, rs, endpoint }
    }
}

fn outside_claims(subject: Value) -> Value {
    json!({
        "iss": IDP, "aud": ["account", "api"], "sub": subject, "iat": now(), "exp": now() + 300,
        "realm_access": {"roles": ["admin", "offline_access"]}, "sid": "kc-session-1",
    })
}

async fn provider(name: &str, config: VerifierConfig, sources: Vec<TokenSource>, revocable: bool) -> Provider {
    let verifier = Verifier::new(config);
    verifier.refresh().await.expect("the first fetch succeeds");
    Provider { name: Arc::from(name), verifier, sources, revocable }
}

fn outside_config(endpoint: &Endpoint) -> VerifierConfig {
    let mut config = VerifierConfig::new(KeySource::Jwks(endpoint.url.clone()), IDP, "api");
    config.audiences.push("web".into());
    config.algorithms = vec![Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];
    config.require_access_token_type = false;
    let mut mapping = ClaimMapping::new("keycloak");
    mapping.scopes = ClaimPath::new("realm_access.roles");
    config.claims = ClaimRules::Mapped(mapping);
    config
}

/// Ours (header only) and the outside provider (header and a cookie).
async fn gatekeeper(ours: &Endpoint, outside: &Outside, outside_sources: Vec<TokenSource>) -> Gatekeeper {
    let own = VerifierConfig::new(KeySource::Jwks(ours.url.clone()), ISSUER, AUDIENCE);
    let providers = Providers::new(vec![
        provider("gatehouse", own, vec![TokenSource::Header], true).await,
        provider("keycloak", outside_config(&outside.endpoint), outside_sources, false).await,
    ])
    .unwrap();
    let codec = IdentityCodec::new(&SecretString::from("providers-test-secret-0123456789".to_owned()), 30);
    Gatekeeper::new(providers, None, codec)
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    headers
}

fn cookies(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.append(header::COOKIE, value.parse().unwrap());
    headers
}

#[tokio::test]
async fn each_token_is_verified_by_the_provider_its_issuer_names() {
    let own_key = TestKey::generate("k1");
    let ours = Endpoint::start(Serve::Keys(vec![own_key.jwk.clone()], None)).await;
    let outside = Outside::start().await;
    let gatekeeper = gatekeeper(&ours, &outside, vec![TokenSource::Header]).await;

    let mine = claims();
    let who = gatekeeper.authenticate(&bearer(&own_key.sign(&mine))).await.unwrap().unwrap();
    assert_eq!(who.identity.user_id.to_string(), mine["sub"].as_str().unwrap());
    assert_eq!(who.identity.external, None);
    assert_eq!(who.identity.scopes, ["guest", "user"]);

    let theirs = outside_claims(json!("f:acme:alice"));
    for token in [outside.ps.sign(&theirs), outside.ec.sign(&theirs), outside.ed.sign(&theirs)] {
        let who = gatekeeper.authenticate(&bearer(&token)).await.unwrap().unwrap();
        assert_eq!(
            who.identity.external,
            Some(ExternalSubject { provider: "keycloak".into(), subject: "f:acme:alice".into() })
        );
        assert_eq!(who.identity.user_id, derived_id(IDP, "user", "f:acme:alice"));
        assert_eq!(who.identity.session_id, derived_id(IDP, "session", "kc-session-1"));
        assert_eq!(who.identity.scopes, ["admin", "offline_access"]);
        assert_eq!(who.expires_at, theirs["exp"].as_u64().unwrap());
    }
    // The derived ids are stable, apart per issuer and never one of ours (v7).
    assert_eq!(derived_id(IDP, "user", "a"), derived_id(IDP, "user", "a"));
    assert_ne!(derived_id(IDP, "user", "a"), derived_id("https://other.example", "user", "a"));
    assert_ne!(derived_id(IDP, "user", "a"), derived_id(IDP, "session", "a"));
    assert_eq!(derived_id(IDP, "user", "a").get_version_num(), 8);
}

#[tokio::test]
async fn one_providers_key_never_vouches_for_anothers_token() {
    let own_key = TestKey::generate("shared-kid");
    let own_ec = EcTestKey::generate("own-ec");
    let ours = Endpoint::start(Serve::Keys(vec![own_key.jwk.clone(), own_ec.jwk.clone()], None)).await;
    let outside = Outside::start().await;
    let gatekeeper = gatekeeper(&ours, &outside, vec![TokenSource::Header]).await;
    let refused = |token: String| {
        let gatekeeper = gatekeeper.clone();
        async move { gatekeeper.authenticate(&bearer(&token)).await.unwrap_err() }
    };

    // Our keys, claiming to be the outside issuer: an algorithm it does not
    // allow, or a kid that is not in its set.
    let forged = outside_claims(json!("mallory"));
    assert_eq!(refused(own_key.sign(&forged)).await, Rejection::Invalid(VerifyError::WrongAlgorithm));
    assert_eq!(refused(own_ec.sign(&forged)).await, Rejection::Invalid(VerifyError::UnknownKey));
    // An outside key claiming our issuer, with our kid: the signature fails.
    let as_ours = outside.ec.sign_raw(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "shared-kid"}), &claims());
    assert_eq!(refused(as_ours).await, Rejection::Invalid(VerifyError::WrongAlgorithm));
    // An issuer nobody configured, or none at all.
    let stranger = with(outside_claims(json!("x")), "iss", json!("https://evil.example"));
    assert_eq!(refused(outside.ec.sign(&stranger)).await, Rejection::Invalid(VerifyError::WrongIssuer));
    let anonymous = without(outside_claims(json!("x")), "iss");
    assert_eq!(refused(outside.ec.sign(&anonymous)).await, Rejection::Invalid(VerifyError::MissingClaims));
    // A key the provider publishes, with an algorithm its configuration does not allow.
    let rs256 = outside.rs.sign(&outside_claims(json!("x")));
    assert_eq!(refused(rs256).await, Rejection::Invalid(VerifyError::WrongAlgorithm));
    // `none` and HMAC stay refused for outside providers too.
    let none =
        format!("{}.{}.", base64_json(&json!({"alg": "none", "kid": "ec"})), base64_json(&outside_claims(json!("x"))));
    assert_eq!(refused(none).await, Rejection::Invalid(VerifyError::WrongAlgorithm));
    // Another audience of the same issuer (an ID token for some client).
    let other_app = with(outside_claims(json!("x")), "aud", json!("some-spa-client"));
    assert_eq!(refused(outside.ed.sign(&other_app)).await, Rejection::Invalid(VerifyError::WrongAudience));
    // Junk that is not even a JWT.
    for junk in ["a.b", "a.b.c.d", "!!.??.##", "e30.e30.e30"] {
        assert!(matches!(refused(junk.into()).await, Rejection::Invalid(_)), "{junk}");
    }
}

fn base64_json(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn tokens_are_accepted_only_from_where_their_provider_reads_them() {
    let own_key = TestKey::generate("k1");
    let ours = Endpoint::start(Serve::Keys(vec![own_key.jwk.clone()], None)).await;
    let outside = Outside::start().await;
    let gatekeeper = gatekeeper(&ours, &outside, vec![TokenSource::Cookie("kc_at".into())]).await;
    let theirs = outside.ec.sign(&outside_claims(json!("alice")));

    let who = gatekeeper.authenticate(&cookies(&format!("theme=dark; kc_at={theirs}"))).await.unwrap().unwrap();
    assert_eq!(who.identity.subject(), "alice");
    // The same token in the header: this provider reads cookies only.
    let in_header = gatekeeper.authenticate(&bearer(&theirs)).await.unwrap_err();
    assert_eq!(in_header, Rejection::Invalid(VerifyError::WrongPlace));
    // Our token planted in the outside provider's cookie.
    let planted = gatekeeper.authenticate(&cookies(&format!("kc_at={}", own_key.sign(&claims())))).await;
    assert_eq!(planted.unwrap_err(), Rejection::Invalid(VerifyError::WrongPlace));
    // Two cookies of that name: neither is trusted, the caller is anonymous.
    let doubled = cookies(&format!("kc_at={theirs}; kc_at=planted"));
    assert!(gatekeeper.authenticate(&doubled).await.unwrap().is_none());
    // The header wins over the cookie, and a broken header is refused.
    let mut both = cookies(&format!("kc_at={theirs}"));
    both.insert(header::AUTHORIZATION, format!("Bearer {}", own_key.sign(&claims())).parse().unwrap());
    assert_eq!(gatekeeper.authenticate(&both).await.unwrap().unwrap().identity.external, None);
    both.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
    assert_eq!(gatekeeper.authenticate(&both).await.unwrap_err(), Rejection::BadHeader);
    // A cookie that holds garbage is a bad token, not an anonymous caller.
    let garbage = gatekeeper.authenticate(&cookies("kc_at=not-a-token")).await.unwrap_err();
    assert_eq!(garbage, Rejection::Invalid(VerifyError::Malformed));
}

#[tokio::test]
async fn outside_claims_map_by_path_and_unusable_ones_are_refused() {
    let outside = Outside::start().await;
    let mut config = outside_config(&outside.endpoint);
    let mut mapping = ClaimMapping::new("auth0");
    mapping.subject = ClaimPath::new("uid");
    mapping.scopes = ClaimPath::new("https://acme.com/roles");
    config.claims = ClaimRules::Mapped(mapping);
    let verifier = Verifier::new(config);
    verifier.refresh().await.unwrap();
    let base = |subject: Value, roles: Value| json!({"iss": IDP, "aud": "web", "uid": subject, "exp": now() + 60, "https://acme.com/roles": roles});

    let numeric = verifier.verify(&outside.ed.sign(&base(json!(12345), json!(["a", 7, "b"])))).await.unwrap();
    assert_eq!(numeric.external.unwrap().subject, "12345");
    assert_eq!(numeric.scopes, ["a", "b"], "non-string roles are skipped");
    let spaced = verifier.verify(&outside.ed.sign(&base(json!("u"), json!("read write")))).await.unwrap();
    assert_eq!(spaced.scopes, ["read", "write"]);
    let roleless = outside.ed.sign(&without(base(json!("u"), json!(null)), "https://acme.com/roles"));
    assert!(verifier.verify(&roleless).await.unwrap().scopes.is_empty());
    // Without a sid or jti, the session is derived from the subject.
    let sessionless = verifier.verify(&outside.ed.sign(&base(json!("u"), json!([])))).await.unwrap();
    assert_eq!(sessionless.sid, derived_id(IDP, "session", "u"));

    for (claims, why) in [
        (without(base(json!("u"), json!([])), "uid"), "no subject"),
        (base(json!(""), json!([])), "an empty subject"),
        (base(json!({"id": 1}), json!([])), "an object subject"),
        (base(json!("x".repeat(257)), json!([])), "a subject too long"),
        (base(json!("u"), json!({"admin": true})), "roles as an object"),
        (base(json!("u"), json!(vec!["r"; 257])), "too many roles"),
        (base(json!("u"), json!(["r".repeat(257)])), "a role too long"),
    ] {
        let error = verifier.verify(&outside.ed.sign(&claims)).await.unwrap_err();
        assert_eq!(error, VerifyError::UnusableClaims, "{why}");
    }
    let expired = with(base(json!("u"), json!([])), "exp", json!(now() - 3600));
    assert_eq!(verifier.verify(&outside.ed.sign(&expired)).await.unwrap_err(), VerifyError::Expired);
    // typ is checked only when the provider asks for it.
    let mut strict = outside_config(&outside.endpoint);
    strict.require_access_token_type = true;
    let strict = Verifier::new(strict);
    strict.refresh().await.unwrap();
    let id_token = outside.ed.sign(&outside_claims(json!("u")));
    assert_eq!(strict.verify(&id_token).await.unwrap_err(), VerifyError::WrongType);
    let access =
        outside.ed.sign_raw(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "ed"}), &outside_claims(json!("u")));
    strict.verify(&access).await.expect("an at+jwt token");
}

#[tokio::test]
async fn a_provider_set_must_choose_one_provider_per_issuer() {
    let outside = Outside::start().await;
    let make = |name: &str, issuer: &str, sources: Vec<TokenSource>| {
        let mut config = outside_config(&outside.endpoint);
        config.issuer = issuer.into();
        Provider { name: Arc::from(name), verifier: Verifier::new(config), sources, revocable: false }
    };
    let header = || vec![TokenSource::Header];
    assert_eq!(Providers::new(Vec::new()).unwrap_err(), ProvidersError::Empty);
    assert_eq!(
        Providers::new(vec![make("a", IDP, header()), make("b", IDP, header())]).unwrap_err(),
        ProvidersError::DuplicateIssuer(IDP.into())
    );
    assert_eq!(
        Providers::new(vec![make("a", IDP, header()), make("a", "https://b", header())]).unwrap_err(),
        ProvidersError::DuplicateName("a".into())
    );
    assert_eq!(Providers::new(vec![make("a", IDP, Vec::new())]).unwrap_err(), ProvidersError::NoSource("a".into()));
    let set = Providers::new(vec![make("a", IDP, header()), make("b", "https://b", header())]).unwrap();
    assert_eq!(set.iter().count(), 2);
}
