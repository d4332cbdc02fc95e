//! Signing in with an outside OpenID provider, against a real one (panva's
//! certified `oidc-provider`, from the workspace's `tests/oidc-provider`):
//! the code flow with PKCE, state and nonce, accounts created or linked
//! (never by email alone), and every forged or replayed step refused.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use url::Url;

use gatehouse_common::testing::OpenIdProvider;

use crate::helpers::{access_claims, Gql, TestApp, PASSWORD};

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const CLIENT: (&str, &str) = ("gatehouse-auth", "gatehouse-auth-secret-0123456789");

async fn provider() -> OpenIdProvider {
    OpenIdProvider::start(&[
        ("OIDC_RP_CLIENT_ID", CLIENT.0),
        ("OIDC_RP_CLIENT_SECRET", CLIENT.1),
        ("OIDC_RP_REDIRECT_URI", REDIRECT),
    ])
    .await
}

/// Adds a person to the provider.
async fn person(provider: &OpenIdProvider, id: &str, email: &str, verified: bool) {
    let body = json!({ "id": id, "email": email, "email_verified": verified, "name": format!("{id} Example") });
    let response =
        reqwest::Client::new().post(format!("{}/test/accounts", provider.issuer)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 204);
}

async fn app_for(provider: &OpenIdProvider) -> TestApp {
    let line = format!(
        "corp issuer={} client_id={} client_secret={} redirect={REDIRECT}",
        provider.issuer, CLIENT.0, CLIENT.1
    );
    TestApp::spawn_with(move |config| config.oidc_providers = vec![line.parse().unwrap()]).await
}

async fn login_url(app: &TestApp, provider: &str, redirect: &str) -> Gql {
    app.gql(
        "mutation($p: String!, $r: String!) { externalLoginUrl(provider: $p, redirectUri: $r) }",
        json!({ "p": provider, "r": redirect }),
    )
    .await
}

async fn complete(app: &TestApp, provider: &str, code: &str, state: &str) -> Gql {
    app.gql(
        "mutation($p: String!, $c: String!, $s: String!) {
            completeExternalLogin(provider: $p, code: $c, state: $s, refreshTokenIn: BODY) {
                accessToken user { id username } } }",
        json!({ "p": provider, "c": code, "s": state }),
    )
    .await
}

/// What the browser does: follows the provider's redirects, keeping its
/// cookies, until it is sent to the app's redirect URI; answers the `code`
/// and `state` it carries.
async fn browse(url: &str) -> (String, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut cookies = BTreeMap::new();
    let mut next = Url::parse(url).unwrap();
    for _ in 0..10 {
        let cookie: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = http.get(next.clone()).header("cookie", cookie.join("; ")).send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let location = response.headers().get("location").unwrap_or_else(|| panic!("no redirect from {next}"));
        next = next.join(location.to_str().unwrap()).unwrap();
        if next.as_str().starts_with(REDIRECT) {
            let query: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
            let code = query.get("code").unwrap_or_else(|| panic!("no code: {next}"));
            return (code.clone(), query["state"].clone());
        }
    }
    panic!("the provider never sent the browser back");
}

/// Starts a sign-in as `who` and answers the code and state it ends with.
async fn sign_in_as(app: &TestApp, who: &str) -> (String, String) {
    let url = login_url(app, "corp", REDIRECT).await;
    let url = url.ok().data("externalLoginUrl").as_str().unwrap().to_owned();
    browse(&format!("{url}&login_hint={who}")).await
}

fn user_id(answer: &Gql) -> String {
    answer.ok().data("completeExternalLogin")["user"]["id"].as_str().unwrap().to_owned()
}

async fn identity_rows(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT provider, subject FROM external_identities ORDER BY subject")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_outside_sign_in_creates_an_account_and_the_next_finds_it() {
    let provider = provider().await;
    person(&provider, "alice", "alice@corp.example", true).await;
    let app = app_for(&provider).await;
    assert_eq!(
        app.gql("{ externalLoginProviders }", json!({})).await.ok().data("externalLoginProviders"),
        &json!(["corp"])
    );

    let url = login_url(&app, "corp", REDIRECT).await;
    let url = Url::parse(url.ok().data("externalLoginUrl").as_str().unwrap()).unwrap();
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert!(url.as_str().starts_with(&provider.issuer));
    assert_eq!(query["client_id"], CLIENT.0);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["scope"].split(' ').any(|s| s == "openid") && !query["nonce"].is_empty());

    let (code, state) = browse(&format!("{url}&login_hint=alice")).await;
    let first = complete(&app, "corp", &code, &state).await;
    let id = user_id(&first);
    assert_eq!(first.data("completeExternalLogin")["user"]["username"], "alice");
    let access = first.data("completeExternalLogin")["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(access_claims(&access)["amr"], json!(["fed"]));
    assert_eq!(identity_rows(&app).await, [("corp".to_owned(), "alice".to_owned())]);
    let usable: bool = sqlx::query_scalar("SELECT password_usable FROM accounts WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!usable, "nobody knows the new account's password");
    let linked =
        app.user_entity(Some(&access), id.parse().unwrap(), "linkedIdentities { provider subject email }").await;
    assert_eq!(
        linked.ok().data("_entities")[0]["linkedIdentities"],
        json!([{ "provider": "corp", "subject": "alice", "email": "alice@corp.example" }])
    );

    // The same code and state do not work twice.
    complete(&app, "corp", &code, &state).await.expect_code("INVALID_EXTERNAL_LOGIN");
    // The next sign-in finds the same account.
    let (code, state) = sign_in_as(&app, "alice").await;
    assert_eq!(user_id(&complete(&app, "corp", &code, &state).await), id);
    // Its only way in cannot be unlinked.
    let unlink = app.gql_as(&access, "mutation { unlinkIdentity(provider: \"corp\") }", json!({})).await;
    unlink.expect_code("FORBIDDEN");
    assert_eq!(identity_rows(&app).await.len(), 1);
}

#[tokio::test]
async fn forged_state_wrong_nonce_swapped_codes_and_bad_input_are_refused() {
    let provider = provider().await;
    person(&provider, "carol", "carol@corp.example", true).await;
    let app = app_for(&provider).await;

    // A forged state finds nothing, and costs the real one nothing.
    let (code, state) = sign_in_as(&app, "carol").await;
    complete(&app, "corp", &code, "forged-state").await.expect_code("INVALID_EXTERNAL_LOGIN");
    let long_state = "s".repeat(10_000);
    complete(&app, "corp", &code, &long_state).await.expect_code("INVALID_EXTERNAL_LOGIN");
    user_id(&complete(&app, "corp", &code, &state).await);

    // A code redeemed with another sign-in's state: its PKCE verifier does not match.
    let (code_a, _state_a) = sign_in_as(&app, "carol").await;
    let (_code_b, state_b) = sign_in_as(&app, "carol").await;
    complete(&app, "corp", &code_a, &state_b).await.expect_code("EXTERNAL_LOGIN_FAILED");

    // A state answered under another provider's name is spent, not used.
    let (code, state) = sign_in_as(&app, "carol").await;
    complete(&app, "other", &code, &state).await.expect_code("INVALID_EXTERNAL_LOGIN");
    complete(&app, "corp", &code, &state).await.expect_code("INVALID_EXTERNAL_LOGIN");

    // An ID token whose nonce is not the one this sign-in sent.
    let url = login_url(&app, "corp", REDIRECT).await;
    let url = Url::parse(url.ok().data("externalLoginUrl").as_str().unwrap()).unwrap();
    let mut tampered = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == "nonce" { "an-attackers-nonce".to_owned() } else { v.to_string() }))
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs).append_pair("login_hint", "carol");
    let (code, state) = browse(tampered.as_str()).await;
    complete(&app, "corp", &code, &state).await.expect_code("EXTERNAL_LOGIN_FAILED");

    // Only registered redirect URIs, only configured providers.
    let elsewhere = login_url(&app, "corp", "https://evil.example/steal").await;
    elsewhere.expect_code("BAD_USER_INPUT");
    assert_eq!(elsewhere.error()["extensions"]["field"], "redirectUri");
    let unknown = login_url(&app, "nosuch", REDIRECT).await;
    unknown.expect_code("BAD_USER_INPUT");
    assert_eq!(unknown.error()["extensions"]["field"], "provider");
    assert_eq!(identity_rows(&app).await.len(), 1, "only carol's first sign-in linked anything");
}

#[tokio::test]
async fn a_matching_email_links_only_after_the_password_and_an_unverified_one_never() {
    let provider = provider().await;
    let app = app_for(&provider).await;
    let bob = app.verified_user("bob").await;
    person(&provider, "bob-unverified", &bob.email, false).await;
    person(&provider, "bob-corp", &bob.email, true).await;

    let (code, state) = sign_in_as(&app, "bob-unverified").await;
    complete(&app, "corp", &code, &state).await.expect_code("EXTERNAL_EMAIL_NOT_VERIFIED");
    assert!(identity_rows(&app).await.is_empty(), "an unverified email never links");

    let (code, state) = sign_in_as(&app, "bob-corp").await;
    let asked = complete(&app, "corp", &code, &state).await;
    asked.expect_code("ACCOUNT_LINK_REQUIRED");
    assert_eq!(asked.body["data"], Value::Null);
    let link_token = asked.error()["extensions"]["linkToken"].as_str().unwrap().to_owned();
    assert!(identity_rows(&app).await.is_empty(), "nothing links before the password");

    let link = |token: String, password: &'static str| {
        let app = &app;
        async move {
            app.gql(
                "mutation($t: String!, $p: String!) { linkExternalIdentity(linkToken: $t, password: $p, refreshTokenIn: BODY) {
                    accessToken user { id } } }",
                json!({ "t": token, "p": password }),
            )
            .await
        }
    };
    link(link_token.clone(), "not-the-password").await.expect_code("INVALID_CREDENTIALS");
    link("link.e30.AAAA".into(), PASSWORD).await.expect_code("INVALID_LINK_TOKEN");
    let linked = link(link_token.clone(), PASSWORD).await;
    assert_eq!(linked.ok().data("linkExternalIdentity")["user"]["id"], bob.id.to_string());
    link(link_token, PASSWORD).await.expect_code("INVALID_LINK_TOKEN");
    assert_eq!(identity_rows(&app).await, [("corp".to_owned(), "bob-corp".to_owned())]);

    // From now on the outside sign-in is Bob's, directly.
    let (code, state) = sign_in_as(&app, "bob-corp").await;
    let direct = complete(&app, "corp", &code, &state).await;
    assert_eq!(user_id(&direct), bob.id.to_string());
    // Bob has a password, so he may unlink it.
    let access = direct.data("completeExternalLogin")["accessToken"].as_str().unwrap().to_owned();
    let unlink = app.gql_as(&access, "mutation { unlinkIdentity(provider: \"corp\") }", json!({})).await;
    assert_eq!(unlink.ok().data("unlinkIdentity"), true);
    assert!(identity_rows(&app).await.is_empty());
}
