//! Audit scenario `simple-inaccessible`: an `@inaccessible` argument
//! (`friends(type:)`, defaulting to an `@inaccessible` enum value) and an
//! enum value that the subgraph returns but clients cannot see.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, age, friend ids
const USERS: [(&str, i64, &[&str]); 2] = [("u1", 31, &["u2"]), ("u2", 27, &["u1"])];

fn by_id(id: &Value) -> Option<&'static (&'static str, i64, &'static [&'static str])> {
    USERS.iter().find(|u| u.0 == id)
}

fn in_age(u: &(&str, i64, &[&str])) -> Value {
    json!({"__typename": "User", "id": u.0, "age": u.1})
}

/// Every user of `friends` has the (inaccessible) type `FAMILY`.
fn in_friends(u: &(&str, i64, &[&str])) -> Value {
    json!({"__typename": "User", "id": u.0, "type": "FAMILY"})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let age = JsonSubgraph::new("age")
        .query(json!({"usersInAge": USERS.iter().map(in_age).collect::<Value>()}))
        .entities(|rep| by_id(&rep["id"]).map_or(Value::Null, in_age));
    let friends = JsonSubgraph::new("friends")
        .query(json!({"usersInFriends": USERS.iter().map(in_friends).collect::<Value>()}))
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            ("User", "friends") => Some(
                by_id(&parent["id"])
                    .map_or(json!([]), |u| u.2.iter().filter_map(|f| by_id(&json!(f))).map(in_friends).collect()),
            ),
            _ => None,
        })
        .entities(|rep| by_id(&rep["id"]).map_or(Value::Null, in_friends));
    start("simple-inaccessible", vec![age, friends]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn field_with_an_inaccessible_argument_from_another_root() {
    check(
        "{ usersInAge { id friends { id } } }",
        json!({"usersInAge": [{"id": "u1", "friends": [{"id": "u2"}]}, {"id": "u2", "friends": [{"id": "u1"}]}]}),
    )
    .await;
}

#[tokio::test]
async fn field_with_an_inaccessible_argument() {
    check(
        "{ usersInFriends { id friends { id } } }",
        json!({"usersInFriends": [{"id": "u1", "friends": [{"id": "u2"}]}, {"id": "u2", "friends": [{"id": "u1"}]}]}),
    )
    .await;
}

#[tokio::test]
async fn inaccessible_argument_is_rejected() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ usersInFriends { id friends(type: FRIEND) { id } } }").await;
    assert!(response["data"].is_null(), "{response}");
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
    assert!(subs.iter().all(|s| s.recorder.requests() == 0), "no subgraph is called");
}

#[tokio::test]
async fn inaccessible_enum_value_becomes_null() {
    check(
        "{ usersInFriends { id friends { id type } } }",
        json!({"usersInFriends": [
            {"id": "u1", "friends": [{"id": "u2", "type": null}]},
            {"id": "u2", "friends": [{"id": "u1", "type": null}]}
        ]}),
    )
    .await;
}
