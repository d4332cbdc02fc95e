//! Tokens from outside providers: a real OpenID provider (panva's certified
//! `oidc-provider`, started from the workspace's `tests/oidc-provider`)
//! issues JWT access tokens by the client-credentials grant, and the gateway
//! verifies them beside our own, found by OIDC discovery, with guards and the
//! signed identity working as for our tokens.

use gatehouse_common::identity::{ExternalSubject, IdentityCodec, IDENTITY_HEADER};
use gatehouse_common::testing::OpenIdProvider;
use serde_json::{json, Value};

use crate::common::auth::{now, token};
use crate::security::{json_of, post, stack_with};

const AUDIENCE: &str = "https://api.gatehouse.test";
const CLIENT: (&str, &str) = ("reporting", "reporting-secret-0123456789");

/// A provider signing access tokens with `alg`.
async fn start_provider(alg: &str) -> OpenIdProvider {
    OpenIdProvider::start(&[
        ("OIDC_AUDIENCE", AUDIENCE),
        ("OIDC_ACCESS_TOKEN_ALG", alg),
        ("OIDC_CLIENT_ID", CLIENT.0),
        ("OIDC_CLIENT_SECRET", CLIENT.1),
    ])
    .await
}

/// An access token for the test client with `scope`, by the client-credentials grant.
async fn token_from(provider: &OpenIdProvider, scope: &str) -> String {
    let form = format!("grant_type=client_credentials&resource={}&scope={}", encode(AUDIENCE), encode(scope));
    let response = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(CLIENT.0, Some(CLIENT.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned()
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn spec(name: &str, provider: &OpenIdProvider, extra: &str) -> String {
    format!("{name} issuer={} audience={AUDIENCE} {extra}", provider.issuer)
}

const USERS: &str = "{ users { totalCount } }";

#[tokio::test]
async fn tokens_of_two_outside_providers_and_ours_are_verified_side_by_side() {
    let corp = start_provider("PS256").await;
    let partner = start_provider("EdDSA").await;
    let specs = vec![
        spec("corp", &corp, "alg=PS256 typ=at+jwt").parse().unwrap(),
        spec("partner", &partner, "alg=EdDSA alg=ES256").parse().unwrap(),
    ];
    let s = stack_with(move |c| c.security.jwt_providers = specs).await;
    let codec = IdentityCodec::new(&s.shared.identity_secret, 30);

    for (name, provider) in [("corp", &corp), ("partner", &partner)] {
        // `admin` is the scope `users` requires: granted by the provider.
        let bearer = format!("Bearer {}", token_from(provider, "read admin").await);
        let body = json_of(post(&s.gateway, json!({ "query": USERS }), &[("authorization", &bearer)]).await).await;
        assert_eq!(body, json!({ "data": { "users": { "totalCount": 3 } } }), "{name}");
        let headers = s.users.recorder.headers.lock().unwrap().last().cloned().unwrap();
        assert!(headers.get("authorization").is_none(), "the outside token never reaches a subgraph");
        let signed = headers.get(IDENTITY_HEADER).expect("the identity is forwarded").to_str().unwrap();
        let identity = codec.verify(signed, now()).unwrap();
        assert_eq!(identity.external, Some(ExternalSubject { provider: name.into(), subject: CLIENT.0.into() }));
        assert_eq!(identity.scopes, ["read", "admin"]);

        // Without `admin`, the guard removes the field as for our own tokens.
        let bearer = format!("Bearer {}", token_from(provider, "read").await);
        let body = json_of(post(&s.gateway, json!({ "query": USERS }), &[("authorization", &bearer)]).await).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{name}: {body}");
    }
    // Our own tokens still work beside them.
    let (own, _) = token("guest user admin");
    let bearer = format!("Bearer {own}");
    let body = json_of(post(&s.gateway, json!({ "query": USERS }), &[("authorization", &bearer)]).await).await;
    assert_eq!(body["data"]["users"]["totalCount"], 3, "{body}");
    assert_eq!(s.users.recorder.requests(), 3, "the two refused callers never reached the subgraph");
}

#[tokio::test]
async fn outside_tokens_the_configuration_does_not_allow_are_refused_with_a_401() {
    let corp = start_provider("PS256").await;
    let stranger = start_provider("PS256").await;
    // Only ES256 is allowed for corp, and only from a cookie.
    let specs = vec![spec("corp", &corp, "alg=ES256 token=cookie:corp_at").parse().unwrap()];
    let s = stack_with(move |c| c.security.jwt_providers = specs).await;

    let ps256 = token_from(&corp, "read admin").await;
    let cases = [
        ("authorization", format!("Bearer {ps256}"), "from the header"),
        ("cookie", format!("corp_at={ps256}"), "with an algorithm corp may not use"),
        (
            "authorization",
            format!("Bearer {}", token_from(&stranger, "read admin").await),
            "from an issuer nobody set up",
        ),
    ];
    for (header, value, why) in cases {
        let response =
            post(&s.gateway, json!({ "query": USERS }), &[(header, &value), ("apollo-require-preflight", "1")]).await;
        assert_eq!(response.status(), 401, "{why}");
        assert!(response.headers().contains_key("www-authenticate"), "{why}");
        let body = json_of(response).await;
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{why}: {body}");
    }
    assert_eq!(s.users.recorder.requests(), 0);
}
