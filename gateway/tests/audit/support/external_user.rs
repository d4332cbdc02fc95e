//! The scenario shared by the audit's `fed1-external-*` and `fed2-external-*`
//! suites: one subgraph extends `User` (by `@extends` or `extend type`) with
//! its key and `name` `@external`, the other owns it; the suites differ only
//! in how the extension is written.

use serde_json::{json, Value};

use super::{start, JsonSubgraph};
use crate::common::{TestGateway, TestSubgraph};

/// id, name, nickname, rid
const USERS: [(&str, &str, &str, &str); 2] =
    [("u1", "u1-name", "u1-nickname", "u1-rid"), ("u2", "u2-name", "u2-nickname", "u2-rid")];

type User = (&'static str, &'static str, &'static str, &'static str);

fn in_a(u: &User) -> Value {
    json!({"__typename": "User", "id": u.0, "rid": u.3})
}

fn in_b(u: &User) -> Value {
    json!({"__typename": "User", "id": u.0, "name": u.1, "nickname": u.2})
}

fn by_id(id: &Value) -> Option<&'static User> {
    USERS.iter().find(|u| u.0 == id)
}

/// Subgraph `a` (the extension) and `b` (the owner) over `fixtures/audit/<suite>`.
pub async fn suite(suite: &str) -> (Vec<TestSubgraph>, TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "randomUser": in_a(&USERS[0]),
            "providedRandomUser": {"__typename": "User", "id": USERS[0].0, "rid": USERS[0].3, "name": USERS[0].1}
        }))
        // `name` is external here: without a provided value this subgraph answers garbage.
        .fields(|parent, field, _| (field == "name").then(|| parent.get("name").cloned().unwrap_or(json!("never"))))
        .entities(|rep| by_id(&rep["id"]).map_or(Value::Null, in_a));
    let b = JsonSubgraph::new("b")
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Query", "userById") => Some(by_id(&args["id"]).map_or(Value::Null, in_b)),
            _ => None,
        })
        .entities(|rep| by_id(&rep["id"]).map_or(Value::Null, in_b));
    start(suite, vec![a, b]).await
}

/// `name` of a user from the extension comes from the owner.
pub async fn external_field_comes_from_the_owner(suite_name: &str) {
    let (_subs, gateway) = suite(suite_name).await;
    assert_eq!(
        gateway.query(r#"{ randomUser { id name } userById(id: "u2") { id name nickname } }"#).await,
        json!({"data": {
            "randomUser": {"id": "u1", "name": "u1-name"},
            "userById": {"id": "u2", "name": "u2-name", "nickname": "u2-nickname"}
        }})
    );
}

/// The extension's own field next to the external key.
pub async fn own_field_of_the_extension(suite_name: &str) {
    let (_subs, gateway) = suite(suite_name).await;
    assert_eq!(
        gateway.query("{ randomUser { id rid } }").await,
        json!({"data": {"randomUser": {"id": "u1", "rid": "u1-rid"}}})
    );
}

/// The extension's own field and the owner's field together.
pub async fn own_and_external_fields(suite_name: &str) {
    let (_subs, gateway) = suite(suite_name).await;
    assert_eq!(
        gateway.query("{ randomUser { id rid name } }").await,
        json!({"data": {"randomUser": {"id": "u1", "rid": "u1-rid", "name": "u1-name"}}})
    );
}

/// `@provides(fields: "name")` lets the extension answer `name` itself.
pub async fn provided_external_field(suite_name: &str) {
    let (_subs, gateway) = suite(suite_name).await;
    assert_eq!(
        gateway.query("{ providedRandomUser { id rid name } }").await,
        json!({"data": {"providedRandomUser": {"id": "u1", "rid": "u1-rid", "name": "u1-name"}}})
    );
}

/// The four cases of one `fed*-external-*` suite as tests, in the module
/// that invokes it.
macro_rules! external_user_cases {
    ($suite:literal) => {
        use crate::audit_support::external_user;

        #[tokio::test]
        async fn external_field_comes_from_the_owner() {
            external_user::external_field_comes_from_the_owner($suite).await;
        }

        #[tokio::test]
        async fn own_field_of_the_extension() {
            external_user::own_field_of_the_extension($suite).await;
        }

        #[tokio::test]
        async fn own_and_external_fields() {
            external_user::own_and_external_fields($suite).await;
        }

        #[tokio::test]
        async fn provided_external_field() {
            external_user::provided_external_field($suite).await;
        }
    };
}
pub(crate) use external_user_cases;
