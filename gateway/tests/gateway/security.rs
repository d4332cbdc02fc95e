//! Security at the gateway: bearer tokens verified against a JWKS, directive
//! guards before planning, revocation, the signed identity sent to
//! subgraphs, cookies only for the cookie subgraph, CSRF and CORS. Runs our
//! own supergraph (schema/supergraph.graphql) over recording test subgraphs.

use crate::common;

use std::time::Duration;

use axum::response::IntoResponse;
use common::{GatewayBuilder, TestGateway, TestSubgraph};
use gatehouse_common::identity::{IdentityCodec, IDENTITY_HEADER};
use gatehouse_common::settings::SharedSettings;
use serde_json::{json, Value};
use uuid::Uuid;

use common::auth::{jwks_endpoint, now, token};

/// A raw subgraph answering every fetch with the same canned data.
async fn canned(name: &str, data: Value) -> TestSubgraph {
    TestSubgraph::raw(name, move |_body| {
        let data = data.clone();
        async move {
            let mut response = axum::Json(json!({ "data": data })).into_response();
            response.headers_mut().append("set-cookie", format!("from-{}=1; Path=/", "subgraph").parse().unwrap());
            response
        }
    })
    .await
}

pub(crate) struct Stack {
    pub(crate) gateway: TestGateway,
    pub(crate) auth: TestSubgraph,
    pub(crate) users: TestSubgraph,
    pub(crate) shared: SharedSettings,
}

async fn stack() -> Stack {
    stack_with(|_| {}).await
}

pub(crate) async fn stack_with(extra: impl FnOnce(&mut gatehouse_gateway::GatewayConfig) + 'static) -> Stack {
    let id = Uuid::new_v4().simple().to_string();
    let shared = SharedSettings::for_tests(&format!("gw-sec:{id}:"), &format!("GWSEC_{id}"), &format!("gwsec{id}"));
    let auth = canned(
        "auth",
        json!({ "logoutAll": 2, "refreshSession": { "accessToken": "a", "tokenType": "Bearer", "expiresIn": 900 }, "setUserActive": { "id": "u1" } }),
    )
    .await;
    let users =
        canned("users", json!({ "me": { "id": "u1", "displayName": "Ann" }, "users": { "totalCount": 3 } })).await;
    let jwks = jwks_endpoint().await;
    let gateway = GatewayBuilder::new(std::fs::read_to_string("../schema/supergraph.graphql").unwrap())
        .subgraph(&auth)
        .subgraph(&users)
        .shared(shared.clone())
        .config(move |c| {
            common::auth::verify_tokens(c, jwks);
            c.security.csrf = true;
            c.security.csrf_required_headers = vec!["apollo-require-preflight".into()];
            c.security.cors_origins = vec!["https://app.example.com".into()];
            c.security.cookie_subgraphs = vec!["auth".into()];
            extra(c);
        })
        .start()
        .await;
    Stack { gateway, auth, users, shared }
}

pub(crate) async fn post(gateway: &TestGateway, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = gateway.http.post(gateway.graphql_url()).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(body.to_string()).send().await.unwrap()
}

pub(crate) async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_anonymous_caller_gets_null_and_an_unauthorized_error_without_any_subgraph_call() {
    let s = stack().await;
    let body = json_of(post(&s.gateway, json!({ "query": "{ me { id displayName } }" }), &[]).await).await;
    assert_eq!(body["data"], json!({ "me": null }));
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE");
    assert_eq!(body["errors"][0]["path"], json!(["me"]));
    assert_eq!(s.users.recorder.requests(), 0);
}

#[tokio::test]
async fn a_denied_non_null_root_field_nulls_the_data_by_the_usual_rules() {
    let s = stack().await;
    let body = json_of(post(&s.gateway, json!({ "query": "mutation { logoutAll }" }), &[]).await).await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE");
    assert_eq!(s.auth.recorder.requests(), 0);
}

#[tokio::test]
async fn an_authenticated_caller_is_forwarded_as_a_signed_identity_and_never_as_its_token() {
    let s = stack().await;
    let (token, sid) = token("guest user");
    let auth = format!("Bearer {token}");
    let body =
        json_of(post(&s.gateway, json!({ "query": "{ me { id displayName } }" }), &[("authorization", &auth)]).await)
            .await;
    assert_eq!(body, json!({ "data": { "me": { "id": "u1", "displayName": "Ann" } } }));
    let headers = s.users.recorder.headers.lock().unwrap().clone();
    assert_eq!(headers.len(), 1);
    assert!(headers[0].get("authorization").is_none(), "the client's token must not reach subgraphs");
    let signed = headers[0].get(IDENTITY_HEADER).expect("identity forwarded").to_str().unwrap().to_owned();
    let identity = IdentityCodec::new(&s.shared.identity_secret, 30).verify(&signed, now()).unwrap();
    assert_eq!(identity.session_id, sid);
    assert_eq!(identity.scopes, vec!["guest".to_owned(), "user".to_owned()]);
}

#[tokio::test]
async fn requires_scopes_admits_the_right_scope_sets_only() {
    let s = stack().await;
    for (scope, allowed) in [("guest user", false), ("guest user admin", true)] {
        let (token, _) = token(scope);
        let auth = format!("Bearer {token}");
        let body = json_of(
            post(&s.gateway, json!({ "query": "{ users { totalCount } }" }), &[("authorization", &auth)]).await,
        )
        .await;
        if allowed {
            assert_eq!(body["data"]["users"]["totalCount"], 3, "{scope}: {body}");
        } else {
            assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{scope}: {body}");
        }
    }
    assert_eq!(s.users.recorder.requests(), 1, "only the admin's request reached the subgraph");
}

#[tokio::test]
async fn an_unauthorised_mutation_makes_zero_subgraph_calls() {
    let s = stack().await;
    let (token, _) = token("guest user");
    let auth = format!("Bearer {token}");
    let query = r#"mutation { setUserActive(userId: "u2", active: false) { id } }"#;
    let body = json_of(post(&s.gateway, json!({ "query": query }), &[("authorization", &auth)]).await).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{body}");
    assert_eq!(s.auth.recorder.requests() + s.users.recorder.requests(), 0);
}

#[tokio::test]
async fn an_invalid_token_is_a_401_with_a_challenge_and_no_subgraph_is_called() {
    let s = stack().await;
    let (token, _) = token("guest user");
    let tampered = format!("Bearer {}x", token);
    for auth in [tampered.as_str(), "Bearer not.a.jwt", "Basic YTpi"] {
        let response = post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("authorization", auth)]).await;
        assert_eq!(response.status(), 401, "{auth}");
        assert!(response.headers().get("www-authenticate").unwrap().to_str().unwrap().starts_with("Bearer"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    assert_eq!(s.users.recorder.requests(), 0);
}

#[tokio::test]
async fn a_revoked_session_is_refused_once_the_one_second_recheck_has_passed() {
    let s = stack().await;
    let (token, sid) = token("guest user");
    let auth = format!("Bearer {token}");
    let ok = post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("authorization", &auth)]).await;
    assert_eq!(ok.status(), 200, "live, and now remembered as live for up to a second");

    // What the auth service writes on logout; no notice is sent in this test.
    let mut redis = redis::Client::open(s.shared.redis_url.as_str()).unwrap().get_connection_manager().await.unwrap();
    let key = format!("{}revoked:sid:{{{sid}}}", s.shared.redis_key_prefix);
    let _: () = redis::cmd("SET").arg(&key).arg("logout").arg("EX").arg(120).query_async(&mut redis).await.unwrap();
    // Past the recheck interval the "live" answer has expired, so the very
    // next request must consult Redis and be refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let refused = post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("authorization", &auth)]).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(json_of(refused).await["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_revocation_notice_refuses_the_session_on_the_next_request() {
    // With an hour-long recheck, only the notice can end the session here.
    let s = stack_with(|c| c.security.revocation_recheck_ms = 3_600_000).await;
    let (token, sid) = token("guest user");
    let auth = format!("Bearer {token}");
    assert_eq!(post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("authorization", &auth)]).await.status(), 200);

    let nats = async_nats::connect(s.shared.nats.url.as_str()).await.unwrap();
    let subject = format!("{}.session.revoked", s.shared.events_subject_prefix);
    let notice = json!({ "sid": sid, "user_id": Uuid::new_v4(), "reason": "logout", "revoked_at": now() });
    // The gateway subscribes in the background; repeat the notice until it is heard.
    let mut refused = false;
    let payload = notice.to_string();
    let headers = s.shared.message_signer().headers(&subject, payload.as_bytes());
    for _ in 0..50 {
        nats.publish_with_headers(subject.clone(), headers.clone(), payload.clone().into()).await.unwrap();
        nats.flush().await.unwrap();
        if post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("authorization", &auth)]).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the notice never took effect");
}

#[tokio::test]
async fn cookies_reach_only_the_cookie_subgraph_and_its_set_cookie_comes_back() {
    let s = stack().await;
    let cookie = "__Host-gatehouse-refresh=opaque";
    let response = post(
        &s.gateway,
        json!({ "query": "mutation { refreshSession { accessToken tokenType expiresIn } }" }),
        &[("cookie", cookie)],
    )
    .await;
    assert_eq!(response.status(), 200);
    let set_cookies: Vec<_> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set_cookies, vec!["from-subgraph=1; Path=/".to_owned()]);
    let auth_headers = s.auth.recorder.headers.lock().unwrap().clone();
    assert_eq!(auth_headers[0].get("cookie").unwrap(), cookie);

    let (token, _) = token("guest user");
    let bearer = format!("Bearer {token}");
    let response =
        post(&s.gateway, json!({ "query": "{ me { id } }" }), &[("cookie", cookie), ("authorization", &bearer)]).await;
    assert!(response.headers().get("set-cookie").is_none(), "users may not set cookies");
    let users_headers = s.users.recorder.headers.lock().unwrap().clone();
    assert!(users_headers[0].get("cookie").is_none(), "users never sees the cookie");
}

#[tokio::test]
async fn a_cross_origin_simple_request_to_refresh_session_is_refused() {
    let s = stack().await;
    let query = "mutation { refreshSession { accessToken } }";
    // A form-style text/plain POST, as a page on another site could send it.
    let response = s
        .gateway
        .http
        .post(s.gateway.graphql_url())
        .header("content-type", "text/plain")
        .header("origin", "https://evil.example.net")
        .header("cookie", "__Host-gatehouse-refresh=opaque")
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    // A GET without a preflight header is refused by the CSRF rule too.
    let response = s
        .gateway
        .http
        .get(format!("{}?query={}", s.gateway.graphql_url(), "%7B__typename%7D"))
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(s.auth.recorder.requests(), 0);
}

#[tokio::test]
async fn credentialed_cors_is_granted_to_listed_origins_only() {
    let s = stack().await;
    let preflight = |origin: &'static str| {
        s.gateway
            .http
            .request(reqwest::Method::OPTIONS, s.gateway.graphql_url())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let listed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(listed.headers().get("access-control-allow-origin").unwrap(), "https://app.example.com");
    assert_eq!(listed.headers().get("access-control-allow-credentials").unwrap(), "true");
    let unlisted = preflight("https://evil.example.net").await.unwrap();
    assert!(unlisted.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_mutation_whose_answer_a_guard_would_null_is_not_run() {
    let s = stack().await;
    // `sessions` needs a signed-in caller; nulled, it nulls `user: User!` and
    // then `login: AuthPayload!`: the session would start and never reach
    // the caller. The gateway refuses before any subgraph call.
    let login = r#"mutation { login(login: "ann", password: "pw", refreshTokenIn: BODY) { accessToken user { sessions { id } } } }"#;
    let response = post(&s.gateway, json!({ "query": login }), &[]).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHORIZED_FIELD_OR_TYPE", "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["login", "user", "sessions"]), "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
    assert_eq!(s.auth.recorder.requests(), 0, "the mutation never reached auth");

    // A guard whose null stops at a nullable field leaves the mutation to run.
    let logout = "mutation { logout }";
    let response = post(&s.gateway, json!({ "query": logout }), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(s.auth.recorder.requests(), 1);
}
