//! The gateway's edge: authenticating a request end to end (token, JWKS,
//! revocation in Redis, signed identity) and CORS for browsers.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http::HeaderMap;
use secrecy::SecretString;
use tower::ServiceExt;
use uuid::Uuid;

use gatehouse_access::cors::CorsPolicy;
use gatehouse_access::revocation::revoked_key;
use gatehouse_access::{
    Gatekeeper, KeySource, Providers, Rejection, RevocationConfig, Revocations, Verifier, VerifierConfig, VerifyError,
};
use gatehouse_common::identity::IdentityCodec;
use gatehouse_common::signing::MessageSigner;
use support::*;

fn codec() -> IdentityCodec {
    IdentityCodec::new(&SecretString::from("edge-test-secret-0123456789abcdef".to_owned()), 30)
}

fn signer() -> MessageSigner {
    MessageSigner::from_identity_secret(&SecretString::from("edge-test-secret-0123456789abcdef".to_owned()))
}

async fn gatekeeper(endpoint: &Endpoint, prefix: &str) -> Gatekeeper {
    let verifier = Verifier::new(VerifierConfig::new(KeySource::Jwks(endpoint.url.clone()), ISSUER, AUDIENCE));
    verifier.refresh().await.unwrap();
    let redis = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection_manager().await.unwrap();
    let subject = format!("t.{}", Uuid::new_v4().simple());
    let revocations = Revocations::new(RevocationConfig::new(prefix, subject, signer()), redis);
    Gatekeeper::new(Providers::single(verifier), Some(revocations), codec())
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    headers
}

#[tokio::test]
async fn no_header_is_anonymous_and_a_valid_token_becomes_a_signed_identity() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let gate = gatekeeper(&endpoint, &format!("edge:{}:", Uuid::new_v4().simple())).await;

    assert!(gate.authenticate(&HeaderMap::new()).await.unwrap().is_none());

    let c = claims();
    let who = gate.authenticate(&bearer(&key.sign(&c))).await.unwrap().expect("authenticated");
    assert_eq!(who.identity.user_id.to_string(), c["sub"].as_str().unwrap());
    assert_eq!(who.identity.scopes, vec!["guest".to_owned(), "user".to_owned()]);
    assert!(who.caller().authenticated);

    // What the subgraphs receive verifies with the shared secret.
    let header = gate.identity_header(&who.identity);
    assert_eq!(codec().verify(header.to_str().unwrap(), now()).unwrap(), who.identity);
}

#[tokio::test]
async fn malformed_headers_and_invalid_tokens_are_refused_with_a_challenge() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let gate = gatekeeper(&endpoint, &format!("edge:{}:", Uuid::new_v4().simple())).await;
    for raw in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "token-without-scheme"] {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, raw.parse().unwrap());
        assert_eq!(gate.authenticate(&headers).await.unwrap_err(), Rejection::BadHeader, "{raw}");
    }
    let expired = key.sign(&with(claims(), "exp", serde_json::json!(now() - 3600)));
    let rejection = gate.authenticate(&bearer(&expired)).await.unwrap_err();
    assert_eq!(rejection, Rejection::Invalid(VerifyError::Expired));
    assert_eq!(rejection.status(), 401);
    assert!(rejection.challenge().unwrap().to_str().unwrap().contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn a_token_of_a_revoked_session_is_refused() {
    let key = TestKey::generate("k1");
    let endpoint = Endpoint::start(Serve::Keys(vec![key.jwk.clone()], None)).await;
    let prefix = format!("edge:{}:", Uuid::new_v4().simple());
    let gate = gatekeeper(&endpoint, &prefix).await;
    let c = claims();
    let token = key.sign(&c);
    assert!(gate.authenticate(&bearer(&token)).await.is_ok());

    let sid = Uuid::parse_str(c["sid"].as_str().unwrap()).unwrap();
    let mut redis = redis::Client::open("redis://127.0.0.1:6379").unwrap().get_connection_manager().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(revoked_key(&prefix, &sid))
        .arg("logout")
        .arg("EX")
        .arg(60)
        .query_async(&mut redis)
        .await
        .unwrap();

    // Within the one-second recheck interval the revocation must take hold.
    let mut refused = false;
    for _ in 0..100 {
        if matches!(gate.authenticate(&bearer(&token)).await, Err(Rejection::Revoked)) {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the revoked session's token was still accepted after 5 s");
}

fn cors_app(origins: &[&str]) -> axum::Router {
    let policy = CorsPolicy::new(origins).unwrap();
    axum::Router::new().route("/graphql", axum::routing::post(|| async { "{}" })).layer(policy.layer())
}

async fn preflight(app: axum::Router, origin: &str) -> axum::response::Response {
    let request = Request::builder()
        .method("OPTIONS")
        .uri("/graphql")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        .body(Body::empty())
        .unwrap();
    app.oneshot(request).await.unwrap()
}

#[tokio::test]
async fn a_listed_origin_may_send_credentials() {
    let response = preflight(cors_app(&["https://app.example.com"]), "https://app.example.com").await;
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://app.example.com");
    assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(), "true");
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_grant_at_all() {
    let response = preflight(cors_app(&["https://app.example.com"]), "https://evil.example.net").await;
    let h = response.headers();
    assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{h:?}");

    let request = Request::builder()
        .method("POST")
        .uri("/graphql")
        .header(header::ORIGIN, "https://evil.example.net")
        .header(header::COOKIE, "__Host-gatehouse-refresh=x")
        .body(Body::empty())
        .unwrap();
    let response = cors_app(&["https://app.example.com"]).oneshot(request).await.unwrap();
    // Without an Access-Control-Allow-Origin naming it, the browser refuses the
    // response to the page whatever else is sent; the request itself is
    // stopped by the CSRF rule (its content type is not JSON).
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn with_no_origins_listed_nothing_cross_origin_is_allowed() {
    let response = preflight(cors_app(&[]), "https://app.example.com").await;
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}
