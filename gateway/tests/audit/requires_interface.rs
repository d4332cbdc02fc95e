//! Audit scenario `requires-interface`: `@requires` on an interface-typed
//! field (`address { id }`), once plainly and once through a type condition
//! (`address { ... on WorkAddress { id } }`) that the actual object may not
//! match, reached from both subgraphs' roots.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, address id; the first is `a`'s root user, the second `b`'s.
const USERS: [(&str, &str, &str); 2] = [("u1", "u1-name", "a1"), ("u2", "u2-name", "a2")];
/// id, type, city, country
const ADDRESSES: [(&str, &str, &str, &str); 2] =
    [("a1", "HomeAddress", "a1-city", "a1-country"), ("a2", "WorkAddress", "a2-city", "a2-country")];

fn address(id: &Value) -> Value {
    ADDRESSES.iter().find(|a| a.0 == id).map_or(Value::Null, |a| json!({"__typename": a.1, "id": a.0, "city": a.2}))
}

fn user_in_b(u: &(&str, &str, &str)) -> Value {
    json!({"__typename": "User", "id": u.0, "name": u.1, "address": address(&json!(u.2))})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    // `a` derives `city`/`country` only from the address the gateway sent.
    let a = JsonSubgraph::new("a")
        .query(json!({"a": {"__typename": "User", "id": USERS[0].0, "name": USERS[0].1}}))
        .possible("Address", &["HomeAddress", "WorkAddress"])
        .entities(|rep| match rep["__typename"].as_str() {
            Some("User") => {
                let Some(u) = USERS.iter().find(|u| u.0 == rep["id"]) else { return Value::Null };
                let sent = ADDRESSES.iter().find(|a| a.0 == rep["address"]["id"]);
                json!({"__typename": "User", "id": u.0, "name": u.1, "city": sent.map(|a| a.2), "country": sent.map(|a| a.3)})
            }
            Some(_) => address(&rep["id"]),
            None => Value::Null,
        });
    let b = JsonSubgraph::new("b")
        .query(json!({"b": user_in_b(&USERS[1])}))
        .possible("Address", &["HomeAddress", "WorkAddress", "SecondAddress"])
        .entities(|rep| match rep["__typename"].as_str() {
            Some("User") => USERS.iter().find(|u| u.0 == rep["id"]).map_or(Value::Null, user_in_b),
            Some(_) => address(&rep["id"]),
            None => Value::Null,
        });
    start("requires-interface", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn requirement_on_an_interface_field() {
    check("{ a { city } }", json!({"a": {"city": "a1-city"}})).await;
}

#[tokio::test]
async fn requirement_on_an_interface_field_from_the_other_root() {
    check("{ b { city } }", json!({"b": {"city": "a2-city"}})).await;
}

#[tokio::test]
async fn requirement_under_a_type_condition_the_object_does_not_match() {
    check("{ a { country } }", json!({"a": {"country": null}})).await;
}

#[tokio::test]
async fn interface_field_from_the_other_subgraph() {
    check("{ a { address { __typename id } } }", json!({"a": {"address": {"__typename": "HomeAddress", "id": "a1"}}}))
        .await;
}

#[tokio::test]
async fn interface_field_at_its_own_root() {
    check("{ b { address { __typename id } } }", json!({"b": {"address": {"__typename": "WorkAddress", "id": "a2"}}}))
        .await;
}
