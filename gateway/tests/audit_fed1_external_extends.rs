//! Audit scenario `fed1-external-extends`: a Federation 1 subgraph extends
//! `User` (`@extends`, `@external` key and `name`), so `name` must come from
//! the owning subgraph even for users returned by the extending one.

mod audit_support;
mod common;

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, nickname, rid
const USERS: [(&str, &str, &str, &str); 2] = [("u1", "Ola", "ola_o", "r-1"), ("u2", "Per", "per_p", "r-2")];

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let in_a = |u: &(&str, &str, &str, &str)| json!({"__typename": "User", "id": u.0, "rid": u.3});
    let a = JsonSubgraph::new("a")
        .query(json!({
            "randomUser": in_a(&USERS[0]),
            "providedRandomUser": {"__typename": "User", "id": USERS[0].0, "rid": USERS[0].3, "name": USERS[0].1}
        }))
        // `name` is external here: without a provided value this subgraph answers garbage.
        .fields(|parent, field, _| (field == "name").then(|| parent.get("name").cloned().unwrap_or(json!("never"))))
        .entities(move |rep| USERS.iter().find(|u| u.0 == rep["id"]).map_or(Value::Null, in_a));
    let in_b = |u: &(&str, &str, &str, &str)| json!({"__typename": "User", "id": u.0, "name": u.1, "nickname": u.2});
    let b = JsonSubgraph::new("b")
        .fields(move |parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "userById") => Some(USERS.iter().find(|u| u.0 == args["id"]).map_or(Value::Null, in_b)),
            _ => None,
        })
        .entities(move |rep| USERS.iter().find(|u| u.0 == rep["id"]).map_or(Value::Null, in_b));
    start("fed1-external-extends", vec![a, b]).await
}

#[tokio::test]
async fn external_field_comes_from_the_owner() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query(r#"{ randomUser { id name } userById(id: "u2") { id name nickname } }"#).await,
        json!({"data": {
            "randomUser": {"id": "u1", "name": "Ola"},
            "userById": {"id": "u2", "name": "Per", "nickname": "per_p"}
        }})
    );
}

#[tokio::test]
async fn own_field_of_the_extension() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ randomUser { id rid } }").await,
        json!({"data": {"randomUser": {"id": "u1", "rid": "r-1"}}})
    );
}
