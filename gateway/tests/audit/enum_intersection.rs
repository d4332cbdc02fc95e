//! Audit scenario `enum-intersection`: the enum `UserType` has `ANONYMOUS`
//! only in one subgraph, where it is `@inaccessible`, so the client-facing
//! enum is just `REGULAR`: an `ANONYMOUS` value coming back from a subgraph
//! must not reach the client, and the client cannot send it either.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, type
const USERS: [(&str, &str); 2] = [("u1", "REGULAR"), ("u2", "ANONYMOUS")];

fn user_in_b(u: &(&str, &str)) -> Value {
    json!({"__typename": "User", "id": u.0, "type": u.1})
}

/// In `a` the enum has no `ANONYMOUS`: serializing it fails there.
fn user_in_a(u: &(&str, &str)) -> Value {
    let ty = if u.1 == "REGULAR" { json!(u.1) } else { json!({"__error": "UserType cannot represent ANONYMOUS"}) };
    json!({"__typename": "User", "id": u.0, "type": ty})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({"users": USERS.iter().map(user_in_a).collect::<Value>()}))
        .entities(|rep| USERS.iter().find(|u| u.0 == rep["id"]).map_or(Value::Null, user_in_a));
    let b = JsonSubgraph::new("b")
        .query(json!({"usersB": USERS.iter().map(user_in_b).collect::<Value>()}))
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "usersByType") => Some(USERS.iter().filter(|u| args["type"] == u.1).map(user_in_b).collect()),
            _ => None,
        })
        .entities(|rep| USERS.iter().find(|u| u.0 == rep["id"]).map_or(Value::Null, user_in_b));
    start("enum-intersection", vec![a, b]).await
}

#[tokio::test]
async fn ids_only() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ users { id } }").await, json!({"data": {"users": [{"id": "u1"}, {"id": "u2"}]}}));
}

#[tokio::test]
async fn value_the_subgraph_cannot_serialize() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ users { id type } }").await;
    assert_eq!(
        response["data"],
        json!({"users": [{"id": "u1", "type": "REGULAR"}, {"id": "u2", "type": null}]}),
        "{response}"
    );
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
}

#[tokio::test]
async fn inaccessible_value_from_a_subgraph_becomes_null() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ usersB { id type } }").await,
        json!({"data": {"usersB": [{"id": "u1", "type": "REGULAR"}, {"id": "u2", "type": null}]}})
    );
}

#[tokio::test]
async fn accessible_value_as_argument() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ usersByType(type: REGULAR) { id type } }").await,
        json!({"data": {"usersByType": [{"id": "u1", "type": "REGULAR"}]}})
    );
}

#[tokio::test]
async fn inaccessible_value_as_argument_is_rejected() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ usersByType(type: ANONYMOUS) { id type } }").await;
    assert!(response["data"].is_null(), "{response}");
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
}
