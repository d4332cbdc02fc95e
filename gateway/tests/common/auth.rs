//! Authentication for gateway tests: access tokens signed with the test key
//! (`fixtures/security-test-key.pem`), its JWKS served over HTTP, and the
//! gateway settings that verify them.

use axum::response::IntoResponse;
use gatehouse_gateway::GatewayConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use uuid::Uuid;

pub const ISSUER: &str = "https://auth.test";
pub const AUDIENCE: &str = "gatehouse";

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An access token from the test key, for a fresh session with `scope`;
/// returns the token and the session id.
pub fn token(scope: &str) -> (String, Uuid) {
    let sid = Uuid::new_v4();
    (token_for(Uuid::new_v4(), sid, scope), sid)
}

/// An access token for user `sub` in session `sid` with `scope`.
pub fn token_for(sub: Uuid, sid: Uuid, scope: &str) -> String {
    token_until(sub, sid, scope, now() + 900)
}

/// An access token for user `sub` in session `sid` expiring at `exp`.
pub fn token_until(sub: Uuid, sid: Uuid, scope: &str, exp: i64) -> String {
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "sid": sid, "jti": Uuid::new_v4().to_string(),
        "iat": now(), "exp": exp, "scope": scope,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("security-test".into());
    header.typ = Some("at+jwt".into());
    let key = EncodingKey::from_rsa_pem(super::fixture("security-test-key.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Serves the test key's JWKS; returns its URL.
pub async fn jwks_endpoint() -> String {
    let jwks = super::fixture("security-test-jwks.json");
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// Turns on token verification against `jwks` (the test issuer and audience).
pub fn verify_tokens(config: &mut GatewayConfig, jwks: String) {
    config.security.auth = true;
    config.security.jwks_url = jwks;
    config.security.token_issuer = ISSUER.into();
    config.security.token_audience = AUDIENCE.into();
}
