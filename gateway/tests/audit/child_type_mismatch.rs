//! Audit scenario `child-type-mismatch`: `User.id` is `ID` in one subgraph
//! and `ID!` in the other, and union members select `id` side by side, so
//! the planner has to alias the conflicting fields inside subgraph queries;
//! the client must still see plain `id`.

use crate::{audit_support, common};

use audit_support::{find_by, start, JsonSubgraph};
use serde_json::{json, Value};

fn users() -> Value {
    json!([{"__typename": "User", "id": "u1", "name": "u1-name"}])
}

fn accounts() -> Value {
    json!([
        {"__typename": "User", "id": "u1", "name": "u1-name"},
        {"__typename": "Admin", "id": "a1", "name": "a1-name"}
    ])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a").query(json!({"users": [{"__typename": "User", "id": "u1"}]}));
    let b = JsonSubgraph::new("b")
        .query(json!({"accounts": accounts()}))
        .possible("Account", &["User", "Admin"])
        .entities(|rep| find_by(&users(), "id", rep))
        .fields(|_, field, _| (field == "similarAccounts").then(accounts));
    start("child-type-mismatch", vec![a, b]).await
}

#[tokio::test]
async fn union_members_with_mismatched_id_types() {
    let (_subs, gateway) = suite().await;
    let response =
        gateway.query("{ users { id name } accounts { ... on User { id name } ... on Admin { id name } } }").await;
    assert_eq!(
        response,
        json!({"data": {
            "users": [{"id": "u1", "name": "u1-name"}],
            "accounts": [{"id": "u1", "name": "u1-name"}, {"id": "a1", "name": "a1-name"}]
        }})
    );
}

#[tokio::test]
async fn nested_internal_aliases_are_removed() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query(
            "query NestedInternalAlias { users { id name } accounts {
               ... on User { id name similarAccounts { ... on User { id name } ... on Admin { id name } } }
               ... on Admin { id name similarAccounts { ... on User { id name } ... on Admin { id name } } } } }",
        )
        .await;
    let similar = json!([{"id": "u1", "name": "u1-name"}, {"id": "a1", "name": "a1-name"}]);
    assert_eq!(
        response,
        json!({"data": {
            "users": [{"id": "u1", "name": "u1-name"}],
            "accounts": [
                {"id": "u1", "name": "u1-name", "similarAccounts": similar},
                {"id": "a1", "name": "a1-name", "similarAccounts": similar}
            ]
        }})
    );
}

#[tokio::test]
async fn deeply_nested_internal_aliases_are_removed() {
    let (_subs, gateway) = suite().await;
    let inner = "similarAccounts { ... on User { id name } ... on Admin { id name } }";
    let middle = format!("similarAccounts {{ ... on User {{ id name {inner} }} ... on Admin {{ id name {inner} }} }}");
    let query = format!(
        "query DeeplyNestedInternalAlias {{ users {{ id name }} accounts {{ ... on User {{ id name {middle} }} ... on Admin {{ id name {middle} }} }} }}"
    );
    let response = gateway.query(&query).await;
    let leaf = json!([{"id": "u1", "name": "u1-name"}, {"id": "a1", "name": "a1-name"}]);
    let mid = json!([
        {"id": "u1", "name": "u1-name", "similarAccounts": leaf},
        {"id": "a1", "name": "a1-name", "similarAccounts": leaf}
    ]);
    assert_eq!(
        response,
        json!({"data": {
            "users": [{"id": "u1", "name": "u1-name"}],
            "accounts": [
                {"id": "u1", "name": "u1-name", "similarAccounts": mid},
                {"id": "a1", "name": "a1-name", "similarAccounts": mid}
            ]
        }})
    );
}

#[tokio::test]
async fn deeply_nested_names_only() {
    let (_subs, gateway) = suite().await;
    let inner = "similarAccounts { ... on User { name } ... on Admin { name } }";
    let middle = format!("similarAccounts {{ ... on User {{ name {inner} }} ... on Admin {{ name {inner} }} }}");
    let query = format!(
        "query DeeplyNested {{ accounts {{ ... on User {{ name {middle} }} ... on Admin {{ name {middle} }} }} }}"
    );
    let response = gateway.query(&query).await;
    let leaf = json!([{"name": "u1-name"}, {"name": "a1-name"}]);
    let mid = json!([{"name": "u1-name", "similarAccounts": leaf}, {"name": "a1-name", "similarAccounts": leaf}]);
    assert_eq!(
        response,
        json!({"data": {"accounts": [
            {"name": "u1-name", "similarAccounts": mid},
            {"name": "a1-name", "similarAccounts": mid}
        ]}})
    );
}
