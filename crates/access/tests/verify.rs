//! Access-token verification against a real JWKS endpoint on port 0.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use url::Url;

use gatehouse_access::{KeySource, Verifier, VerifierConfig, VerifyError};
use support::*;

async fn verifier_for(endpoint: &Endpoint, min_refresh: Duration) -> Arc<Verifier> {
    let mut config = VerifierConfig::new(KeySource::Jwks(endpoint.url.clone()), ISSUER, AUDIENCE);
    config.min_refresh = min_refresh;
    let verifier = Verifier::new(config);
    verifier.refresh().await.expect("the first fetch succeeds");
    verifier
}

#[tokio::test]
async fn a_well_formed_token_verifies_and_exposes_its_claims() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    let c = claims();
    let verified = verifier.verify(&key.sign(&c)).await.expect("valid token");
    assert_eq!(verified.sub.to_string(), c["sub"].as_str().unwrap());
    assert_eq!(verified.sid.to_string(), c["sid"].as_str().unwrap());
    assert_eq!(verified.scopes().collect::<Vec<_>>(), vec!["guest", "user"]);
}

#[tokio::test]
async fn forged_algorithms_are_refused_before_any_key_is_used() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;

    // alg: none, with and without a signature part.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        let error = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(error, VerifyError::WrongAlgorithm | VerifyError::Malformed), "{error:?}");
    }

    // HS256 "signed" with the RSA public key (the classic key-confusion attack).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    hs.typ = Some("at+jwt".into());
    let public = key.jwk.to_string();
    let forged = jsonwebtoken::encode(&hs, &claims(), &EncodingKey::from_secret(public.as_bytes())).unwrap();
    assert_eq!(verifier.verify(&forged).await.unwrap_err(), VerifyError::WrongAlgorithm);
}

#[tokio::test]
async fn es256_tokens_verify_and_each_key_verifies_only_its_own_algorithm() {
    let rsa = TestKey::generate("rsa");
    let ec = EcTestKey::generate("ec");
    let endpoint = Endpoint::start(Serve::Keys(vec![rsa.jwk.clone(), ec.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    let c = claims();
    let verified = verifier.verify(&ec.sign(&c)).await.expect("a valid ES256 token");
    assert_eq!(verified.sub.to_string(), c["sub"].as_str().unwrap());
    verifier.verify(&rsa.sign(&claims())).await.expect("a valid RS256 token beside it");

    // A header that names the other algorithm than its key's is refused,
    // whatever the signature.
    let as_rs256 = ec.sign_raw(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "ec"}), &claims());
    assert_eq!(verifier.verify(&as_rs256).await.unwrap_err(), VerifyError::WrongAlgorithm);
    let as_es256 = rsa.sign_raw(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "rsa"}), &claims());
    assert_eq!(verifier.verify(&as_es256).await.unwrap_err(), VerifyError::WrongAlgorithm);
    for alg in ["ES384", "ES512", "PS256", "EdDSA", "HS256"] {
        let token = ec.sign_raw(&json!({"alg": alg, "typ": "at+jwt", "kid": "ec"}), &claims());
        assert_eq!(verifier.verify(&token).await.unwrap_err(), VerifyError::WrongAlgorithm, "{alg}");
    }

    // A changed claim, a truncated or a DER-encoded signature fail.
    let token = ec.sign(&claims());
    let (message, signature) = token.rsplit_once('.').unwrap();
    let (_, payload) = message.split_once('.').unwrap();
    let other = URL_SAFE_NO_PAD.encode(claims().to_string());
    let tampered = token.replace(payload, &other);
    assert_eq!(verifier.verify(&tampered).await.unwrap_err(), VerifyError::BadSignature);
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let truncated = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&raw[..63]));
    assert_eq!(verifier.verify(&truncated).await.unwrap_err(), VerifyError::BadSignature);
    let der = [&[0x30u8, 0x44, 0x02, 0x20][..], &raw[..32], &[0x02, 0x20], &raw[32..]].concat();
    let der = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&der));
    assert_eq!(verifier.verify(&der).await.unwrap_err(), VerifyError::BadSignature);
}

#[tokio::test]
async fn a_token_with_critical_extensions_is_refused() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    let plain = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1"});
    // The same header without `crit` verifies: the refusal below is about `crit` alone.
    verifier.verify(&key.sign_raw(&plain, &claims())).await.expect("no crit, valid");
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("b64")] {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k1", "crit": crit, "b64": false});
        let token = key.sign_raw(&header, &claims());
        assert_eq!(verifier.verify(&token).await.unwrap_err(), VerifyError::UnknownCritical, "crit {crit}");
    }
}

#[tokio::test]
async fn an_oversized_key_set_is_refused_and_the_last_good_keys_stay() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::ZERO).await;
    // Far above the bound, streamed without a length: the read stops at the bound.
    endpoint.set(Serve::Huge(64 * 1024 * 1024));
    let error = verifier.refresh().await.unwrap_err().to_string();
    assert!(error.contains("larger than"), "{error}");
    verifier.verify(&key.sign(&claims())).await.expect("the last good keys still verify");
    // Just under the bound is read (and refused as a key set for its content).
    endpoint.set(Serve::Huge(gatehouse_access::verifier::MAX_KEY_DOCUMENT_BYTES - 1));
    let error = verifier.refresh().await.unwrap_err().to_string();
    assert!(!error.contains("larger than"), "{error}");
}

#[tokio::test]
async fn each_claim_rule_is_enforced() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    let cases: Vec<(Value, VerifyError)> = vec![
        (with(claims(), "exp", json!(now() - 31)), VerifyError::Expired),
        (with(claims(), "nbf", json!(now() + 120)), VerifyError::NotYetValid),
        (with(claims(), "iss", json!("https://evil.test")), VerifyError::WrongIssuer),
        (without(claims(), "iss"), VerifyError::MissingClaims),
        (with(claims(), "aud", json!("someone-else")), VerifyError::WrongAudience),
        (without(claims(), "aud"), VerifyError::MissingClaims),
        (without(claims(), "sid"), VerifyError::MissingClaims),
        (with(claims(), "sub", json!("not-a-uuid")), VerifyError::MissingClaims),
    ];
    for (c, expected) in cases {
        assert_eq!(verifier.verify(&key.sign(&c)).await.unwrap_err(), expected, "{c}");
    }
    // Within the 30 s leeway, expiry and nbf are tolerated.
    let c = with(with(claims(), "exp", json!(now() - 10)), "nbf", json!(now() + 10));
    assert!(verifier.verify(&key.sign(&c)).await.is_ok());
    // An audience list that includes ours is fine.
    let c = with(claims(), "aud", json!(["other", AUDIENCE]));
    assert!(verifier.verify(&key.sign(&c)).await.is_ok());
}

#[tokio::test]
async fn the_token_type_must_be_an_access_token() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    for typ in [Some("JWT"), Some("refresh+jwt"), None] {
        let token = key.sign_with(&claims(), |h| h.typ = typ.map(str::to_owned));
        assert_eq!(verifier.verify(&token).await.unwrap_err(), VerifyError::WrongType, "{typ:?}");
    }
    let token = key.sign_with(&claims(), |h| h.typ = Some("application/at+jwt".into()));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_tampered_payload_fails_the_signature() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(60)).await;
    let token = key.sign(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged_payload =
        URL_SAFE_NO_PAD.encode(with(claims(), "scope", json!("guest user admin sys_admin")).to_string());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_eq!(verifier.verify(&forged).await.unwrap_err(), VerifyError::BadSignature);
    for junk in ["", "a.b", "a.b.c", "....", "\u{0}.\u{0}.\u{0}"] {
        assert!(verifier.verify(junk).await.is_err(), "{junk:?}");
    }
}

#[tokio::test]
async fn an_unknown_key_is_refused_and_refetches_at_most_once_per_interval() {
    let known = TestKey::generate("known");
    let stranger = TestKey::generate("stranger");
    let endpoint = Endpoint::start(Serve::Keys(vec![known.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(3600)).await;
    assert_eq!(endpoint.hits(), 1);
    // The first miss may refetch; the min-refresh interval has not elapsed since
    // the initial fetch, so even that one is skipped. Fifty misses: no refetch.
    for _ in 0..50 {
        assert_eq!(verifier.verify(&stranger.sign(&claims())).await.unwrap_err(), VerifyError::UnknownKey);
    }
    assert_eq!(endpoint.hits(), 1, "unknown kids must not hammer the JWKS endpoint");
}

#[tokio::test]
async fn a_key_published_as_next_verifies_the_moment_it_signs() {
    let current = TestKey::generate("current");
    let next = TestKey::generate("next");
    let endpoint = Endpoint::start(Serve::Keys(vec![current.jwk.clone(), next.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::from_secs(3600)).await;
    // The auth service rotates: "next" becomes current; the verifier already has it.
    assert!(verifier.verify(&next.sign(&claims())).await.is_ok());
    assert!(verifier.verify(&current.sign(&claims())).await.is_ok());
    assert_eq!(endpoint.hits(), 1, "no refetch was needed");
}

#[tokio::test]
async fn a_key_rotated_in_later_is_found_by_one_refetch() {
    let old = TestKey::generate("old");
    let new = TestKey::generate("new");
    let endpoint = Endpoint::start(Serve::Keys(vec![old.jwk.clone()], None)).await;
    let verifier = verifier_for(&endpoint, Duration::ZERO).await;
    endpoint.set(Serve::Keys(vec![old.jwk.clone(), new.jwk.clone()], None));
    assert!(verifier.verify(&new.sign(&claims())).await.is_ok());
    assert_eq!(endpoint.hits(), 2);
}

#[tokio::test]
async fn a_failing_or_junk_endpoint_never_costs_the_last_good_keys() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], Some("max-age=60"))).await;
    let verifier = verifier_for(&endpoint, Duration::ZERO).await;
    let token = key.sign(&claims());
    for bad in [
        Serve::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Serve::Body("<html>maintenance</html>"),
        Serve::Body(r#"{"keys": []}"#),
        Serve::Keys(vec![json!({"kty": "RSA", "kid": "k1", "n": "!!", "e": "AQAB"})], None),
    ] {
        endpoint.set(bad);
        assert!(verifier.refresh().await.is_err());
        assert!(verifier.verify(&token).await.is_ok(), "the last good key set must stay");
    }
    assert_eq!(verifier.kids(), vec!["k1".to_owned()]);
}

#[tokio::test]
async fn oidc_discovery_finds_the_jwks_uri() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let jwks_uri = endpoint.url.to_string();
    let app = axum::Router::new().route(
        "/tenant/.well-known/openid-configuration",
        get(move || {
            let jwks_uri = jwks_uri.clone();
            async move { axum::Json(json!({ "issuer": ISSUER, "jwks_uri": jwks_uri })) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = Url::parse(&format!("http://{}/tenant/", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let verifier = Verifier::new(VerifierConfig::new(KeySource::OidcIssuer(issuer), ISSUER, AUDIENCE));
    verifier.refresh().await.expect("discovery and JWKS fetch succeed");
    assert!(verifier.verify(&key.sign(&claims())).await.is_ok());
}

/// A token verified once is remembered, but only for what cannot change:
/// the clock is checked on every use and a withdrawn key ends it at once.
#[tokio::test]
async fn a_remembered_token_still_expires_and_dies_with_its_key() {
    let key = TestKey::generate("k1");
    let other = TestKey::generate("k2");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone(), other.jwk.clone()], None)).await;
    let mut config = VerifierConfig::new(KeySource::Jwks(endpoint.url.clone()), ISSUER, AUDIENCE);
    config.leeway = Duration::ZERO;
    config.min_refresh = Duration::ZERO;
    let verifier = Verifier::new(config);
    verifier.refresh().await.unwrap();

    let short_lived = key.sign(&with(claims(), "exp", json!(now() + 1)));
    assert!(verifier.verify(&short_lived).await.is_ok());
    assert!(verifier.verify(&short_lived).await.is_ok(), "the second use is answered from memory");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(verifier.verify(&short_lived).await, Err(VerifyError::Expired));

    let token = key.sign(&claims());
    assert!(verifier.verify(&token).await.is_ok());
    endpoint.set(Serve::Keys(vec![other.jwk.clone()], None));
    verifier.refresh().await.unwrap();
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey), "k1 was withdrawn");
    assert!(verifier.verify(&other.sign(&claims())).await.is_ok());
}
