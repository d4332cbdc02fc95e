//! Audit scenario `interface-object-with-requires`: a subgraph sees the
//! `NodeWithName` interface as an `@interfaceObject` and computes `username`
//! with `@requires(fields: "name")`, where `name` lives in the subgraph that
//! owns the interface and its `User` implementation.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, username, age
const USERS: [(&str, &str, &str, i64); 2] =
    [("u1", "u1-name", "u1-username", 11), ("u2", "u2-name", "u2-username", 22)];

fn user(id: &str) -> Value {
    match USERS.iter().find(|u| u.0 == id) {
        Some((id, name, _, age)) => json!({"__typename": "User", "id": id, "name": name, "age": age}),
        None => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = USERS.iter().map(|u| user(u.0)).collect();
    let a = JsonSubgraph::new("a")
        .query(json!({ "users": all }))
        .possible("NodeWithName", &["User"])
        .entities(|rep| user(rep["id"].as_str().unwrap_or_default()));
    let objects: Value = USERS.iter().map(|u| json!({"__typename": "NodeWithName", "id": u.0})).collect();
    let b = JsonSubgraph::new("b")
        .query(json!({ "anotherUsers": objects }))
        .fields(|parent, field, _| match field {
            // Only answerable when the gateway sent the required `name`.
            "username" => Some(match USERS.iter().find(|u| u.0 == parent["id"]) {
                Some(u) if parent["name"] == u.1 => json!(u.2),
                Some(_) => json!({"__error": "the required name was not provided"}),
                None => Value::Null,
            }),
            _ => None,
        })
        .entities(|rep| match USERS.iter().find(|u| u.0 == rep["id"]) {
            Some(u) => json!({"__typename": "NodeWithName", "id": u.0, "name": rep.get("name")}),
            None => Value::Null,
        });
    start("interface-object-with-requires", vec![a, b]).await
}

fn expected(root: &str, fields: &[&str]) -> Value {
    let items: Vec<Value> = USERS
        .iter()
        .map(|(id, name, username, age)| {
            let all = json!({"id": id, "name": name, "username": username, "age": age});
            fields.iter().map(|f| (f.to_string(), all[*f].clone())).collect()
        })
        .collect();
    json!({ "data": { root: items } })
}

#[tokio::test]
async fn required_field_from_the_interface_object_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ anotherUsers { id name username } }").await,
        expected("anotherUsers", &["id", "name", "username"])
    );
}

#[tokio::test]
async fn required_field_from_the_interface_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ users { id name username } }").await, expected("users", &["id", "name", "username"]));
}

#[tokio::test]
async fn implementation_field_from_the_interface_object_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ anotherUsers { ... on User { age } } }").await, expected("anotherUsers", &["age"]));
}

#[tokio::test]
async fn implementation_field_from_the_interface_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ users { ... on User { age } } }").await, expected("users", &["age"]));
}

#[tokio::test]
async fn fragment_and_interface_fields_from_the_interface_object_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ anotherUsers { ... on User { age id name username } id name } }").await,
        expected("anotherUsers", &["age", "id", "name", "username"])
    );
}

#[tokio::test]
async fn fragment_and_interface_fields_from_the_interface_root() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ users { ... on User { age id name username } id name } }").await,
        expected("users", &["age", "id", "name", "username"])
    );
}

/// Upstream lists this case twice (its cases 5 and 6); the second copy.
#[tokio::test]
async fn fragment_and_interface_fields_from_the_interface_root_listed_again() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ users { ... on User { age id name username } id name } }").await,
        expected("users", &["age", "id", "name", "username"])
    );
}
