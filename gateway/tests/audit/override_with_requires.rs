//! Audit scenario `override-with-requires`: `User.name` is owned by one
//! subgraph (via `@override`) and `@external` in two others that compute
//! fields from it with `@requires`, starting from each subgraph's root.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name; the first is the root user of `a`, then `b`, then `c`.
const USERS: [(&str, &str); 3] = [("u1", "u1-name"), ("u2", "u2-name"), ("u3", "u3-name")];

fn by_id(id: &Value) -> Option<&'static (&'static str, &'static str)> {
    USERS.iter().find(|u| u.0 == id)
}

/// A subgraph where `name` is external and `field` is computed from the
/// `name` the gateway sent (`<prefix>:<name>`); its own `name` is garbage.
fn requiring(subgraph: &'static str, root: &str, user: usize, field: &'static str) -> JsonSubgraph {
    JsonSubgraph::new(subgraph)
        .query(json!({ root: {"__typename": "User", "id": USERS[user].0, "name": "wrong"} }))
        .entities(move |rep| {
            let Some(u) = by_id(&rep["id"]) else { return Value::Null };
            let computed = match rep["name"].as_str() {
                Some(name) => json!(format!("{subgraph}__{name}")),
                None => json!({"__error": "name was not sent"}),
            };
            json!({"__typename": "User", "id": u.0, "name": "wrong", field: computed})
        })
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = requiring("a", "userInA", 0, "aName");
    let c = requiring("c", "userInC", 2, "cName");
    let named = |u: &(&str, &str)| json!({"__typename": "User", "id": u.0, "name": u.1});
    let b = JsonSubgraph::new("b")
        .query(json!({"userInB": named(&USERS[1])}))
        .entities(move |rep| by_id(&rep["id"]).map_or(Value::Null, named));
    start("override-with-requires", vec![a, b, c]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn every_field_from_every_root() {
    check(
        "{ userInA { id name aName cName } userInB { id name aName cName } userInC { id name aName cName } }",
        json!({
            "userInA": {"id": "u1", "name": "u1-name", "aName": "a__u1-name", "cName": "c__u1-name"},
            "userInB": {"id": "u2", "name": "u2-name", "aName": "a__u2-name", "cName": "c__u2-name"},
            "userInC": {"id": "u3", "name": "u3-name", "aName": "a__u3-name", "cName": "c__u3-name"}
        }),
    )
    .await;
}

#[tokio::test]
async fn requirement_back_into_the_root_subgraph() {
    check("{ userInC { cName } }", json!({"userInC": {"cName": "c__u3-name"}})).await;
}

#[tokio::test]
async fn requirement_in_a_third_subgraph() {
    check("{ userInA { cName } }", json!({"userInA": {"cName": "c__u1-name"}})).await;
}

#[tokio::test]
async fn requirement_of_the_root_subgraphs_own_field() {
    check("{ userInA { aName } }", json!({"userInA": {"aName": "a__u1-name"}})).await;
}
