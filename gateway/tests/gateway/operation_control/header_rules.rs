//! Header rules end to end: propagate, rename, insert from a claim of the
//! verified token, remove, per subgraph and for all; response headers back
//! to the client.

use axum::response::IntoResponse;
use gatehouse_common::settings::SharedSettings;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::{GatewayBuilder, TestSubgraph};

/// A subgraph answering `data` and a response header `x-cache: <name>`.
async fn canned(name: &'static str, data: Value) -> TestSubgraph {
    TestSubgraph::raw(name, move |_body| {
        let data = data.clone();
        async move {
            let mut response = axum::Json(json!({ "data": data })).into_response();
            response.headers_mut().insert("x-cache", name.parse().unwrap());
            response.headers_mut().insert("x-secret", "internal".parse().unwrap());
            response
        }
    })
    .await
}

#[tokio::test]
async fn rules_shape_each_subgraphs_headers_and_claims_come_from_the_token() {
    let auth = canned("auth", json!({ "jwks": { "keys": [] } })).await;
    let users = canned("users", json!({ "me": { "id": "u1", "displayName": "Ann" } })).await;
    let jwks = crate::common::auth::jwks_endpoint().await;
    let gateway = GatewayBuilder::new(std::fs::read_to_string("../schema/supergraph.graphql").unwrap())
        .subgraph(&auth)
        .subgraph(&users)
        .shared(SharedSettings::for_tests(&format!("gw-hr:{}:", Uuid::new_v4().simple()), "unused", "unused"))
        .config(move |c| {
            crate::common::auth::verify_tokens(c, jwks);
            c.header_rules = vec![
                "propagate x-tenant as x-org".into(),
                "propagate x-client-*".into(),
                "insert x-user-id: claim sub".into(),
                "insert x-gateway: gatehouse".into(),
            ];
            c.subgraph_header_rules =
                vec!["users=remove x-client-debug".into(), "users=insert x-scopes: claim scope".into()];
            c.response_headers = vec!["x-cache".into()];
        })
        .start()
        .await;
    let (sub, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = crate::common::auth::token_for(sub, sid, "user");
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .bearer_auth(&token)
        .header("x-tenant", "acme")
        .header("x-client-name", "web")
        .header("x-client-debug", "1")
        .header("x-user-id", "forged")
        .body(json!({ "query": "{ me { id displayName } }" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get_all("x-cache").iter().collect::<Vec<_>>(), ["users"]);
    assert!(response.headers().get("x-secret").is_none(), "only the named response headers come back");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["id"], "u1", "{body}");

    let sent = users.recorder.headers.lock().unwrap()[0].clone();
    assert_eq!(sent["x-org"], "acme");
    assert!(sent.get("x-tenant").is_none(), "renamed, not copied");
    assert_eq!(sent["x-client-name"], "web");
    assert!(sent.get("x-client-debug").is_none(), "removed for users");
    assert_eq!(sent["x-user-id"], sub.to_string().as_str(), "the claim, not the client's header");
    assert_eq!(sent["x-scopes"], "user");
    assert_eq!(sent["x-gateway"], "gatehouse");
    assert!(sent.get("authorization").is_none(), "the client's token is never propagated unasked");
}

#[test]
fn bad_rules_stop_start_up_with_the_setting_named() {
    for (rules, subgraph_rules, response) in [
        (vec!["copy x-a".to_owned()], vec![], vec![]),
        (vec!["insert x-gatehouse-identity: forged".to_owned()], vec![], vec![]),
        (vec![], vec!["users".to_owned()], vec![]),
        (vec![], vec!["users=remove content-length".to_owned()], vec![]),
        (vec![], vec![], vec!["set-cookie".to_owned()]),
    ] {
        let mut config = gatehouse_gateway::GatewayConfig::new("x".into(), "127.0.0.1:0".parse().unwrap());
        config.header_rules = rules;
        config.subgraph_header_rules = subgraph_rules;
        config.response_headers = response;
        let error = format!("{:#}", gatehouse_gateway::config::RuntimeConfig::try_from(&config).unwrap_err());
        assert!(error.contains("GATEWAY_") || error.contains("--subgraph-header-rule"), "{error}");
    }
}
