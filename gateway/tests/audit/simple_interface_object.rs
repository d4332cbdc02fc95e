//! Audit scenario `simple-interface-object`: interfaces (`NodeWithName`,
//! `Account`) owned by one subgraph and extended by others as
//! `@interfaceObject`s, which cannot tell the concrete type of an object: the
//! gateway has to ask the owner for `__typename` whenever a type condition or
//! `__typename` depends on it, and must never trust the interface object's.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, username, age
const USERS: [(&str, &str, &str, i64); 2] =
    [("u1", "u1-name", "u1-username", 11), ("u2", "u2-name", "u2-username", 22)];
/// id, type, name, isMain, isActive (in the owner subgraph)
const ACCOUNTS: [(&str, &str, &str, bool, bool); 3] = [
    ("u1", "Admin", "Alice", false, true),
    ("u2", "Admin", "Bob", true, true),
    ("u3", "Regular", "Charlie", false, true),
];

fn user(id: &Value) -> Value {
    match USERS.iter().find(|u| u.0 == id) {
        Some((id, name, _, age)) => json!({"__typename": "User", "id": id, "name": name, "age": age}),
        None => Value::Null,
    }
}

fn account(id: &Value) -> Value {
    match ACCOUNTS.iter().find(|a| a.0 == id) {
        Some((id, "Admin", _, main, active)) => {
            json!({"__typename": "Admin", "id": id, "isMain": main, "isActive": active})
        }
        Some((id, ty, _, main, _)) => json!({"__typename": ty, "id": id, "isMain": main}),
        None => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let users: Value = USERS.iter().map(|u| user(&json!(u.0))).collect();
    let a = JsonSubgraph::new("a")
        .query(json!({ "users": users }))
        .possible("NodeWithName", &["User"])
        .possible("Account", &["Admin", "Regular"])
        .entities(|rep| match rep["__typename"].as_str().unwrap_or_default() {
            "NodeWithName" | "User" => user(&rep["id"]),
            ty @ ("Admin" | "Regular") => {
                let found = account(&rep["id"]);
                if found["__typename"] == ty {
                    found
                } else {
                    Value::Null
                }
            }
            "Account" => account(&rep["id"]),
            _ => Value::Null,
        });
    // The interface objects answer with the interface's name as `__typename`.
    let named = |ty: &str, id: &str, extra: (&str, Value)| -> Value {
        let mut out = json!({"__typename": ty, "id": id});
        out[extra.0] = extra.1;
        out
    };
    let another: Value = USERS.iter().map(|u| named("NodeWithName", u.0, ("username", json!(u.2)))).collect();
    let accounts: Value = ACCOUNTS.iter().map(|a| named("Account", a.0, ("name", json!(a.2)))).collect();
    let b = JsonSubgraph::new("b").query(json!({"anotherUsers": another, "accounts": accounts})).entities(move |rep| {
        let found = match rep["__typename"].as_str() {
            Some("NodeWithName") => {
                USERS.iter().find(|u| u.0 == rep["id"]).map(|u| named("NodeWithName", u.0, ("username", json!(u.2))))
            }
            Some("Account") => {
                ACCOUNTS.iter().find(|a| a.0 == rep["id"]).map(|a| named("Account", a.0, ("name", json!(a.2))))
            }
            _ => None,
        };
        found.unwrap_or(Value::Null)
    });
    // `c` says every account is inactive, unlike the owner says for admins.
    let c = JsonSubgraph::new("c").entities(|rep| match ACCOUNTS.iter().find(|a| a.0 == rep["id"]) {
        Some(a) => json!({"__typename": "Account", "id": a.0, "isActive": false}),
        None => Value::Null,
    });
    start("simple-interface-object", vec![a, b, c]).await
}

/// The users with the named fields (`id`, `name`, `username`, `age`).
fn users_with(fields: &[&str]) -> Value {
    USERS
        .iter()
        .map(|(id, name, username, age)| {
            let all = json!({"id": id, "name": name, "username": username, "age": age});
            fields.iter().map(|f| (f.to_string(), all[*f].clone())).collect::<serde_json::Map<_, _>>().into()
        })
        .collect::<Vec<Value>>()
        .into()
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn interface_object_root_with_owner_field() {
    check("{ anotherUsers { id name username } }", json!({"anotherUsers": users_with(&["id", "name", "username"])}))
        .await;
}

#[tokio::test]
async fn owner_root_with_interface_object_field() {
    check("{ users { id name username } }", json!({"users": users_with(&["id", "name", "username"])})).await;
}

#[tokio::test]
async fn interface_object_root_with_type_condition() {
    check("{ anotherUsers { ... on User { age } } }", json!({"anotherUsers": users_with(&["age"])})).await;
}

#[tokio::test]
async fn owner_root_with_type_condition() {
    check("{ users { ... on User { age } } }", json!({"users": users_with(&["age"])})).await;
}

#[tokio::test]
async fn interface_object_root_with_fields_in_and_out_of_a_fragment() {
    check(
        "{ anotherUsers { ... on User { age id name username } id name } }",
        json!({"anotherUsers": users_with(&["age", "id", "name", "username"])}),
    )
    .await;
}

#[tokio::test]
async fn owner_root_with_fields_in_and_out_of_a_fragment() {
    check(
        "{ users { ... on User { age id name username } id name } }",
        json!({"users": users_with(&["age", "id", "name", "username"])}),
    )
    .await;
}

/// Upstream lists this case twice (its cases 5 and 6); the second copy.
#[tokio::test]
async fn owner_root_with_fields_in_and_out_of_a_fragment_listed_again() {
    check(
        "{ users { ... on User { age id name username } id name } }",
        json!({"users": users_with(&["age", "id", "name", "username"])}),
    )
    .await;
}

#[tokio::test]
async fn interface_object_field_alone() {
    check("{ accounts { name } }", json!({"accounts": [{"name": "Alice"}, {"name": "Bob"}, {"name": "Charlie"}]}))
        .await;
}

#[tokio::test]
async fn interface_object_field_under_a_type_condition() {
    check("{ accounts { ... on Admin { name } } }", json!({"accounts": [{"name": "Alice"}, {"name": "Bob"}, {}]}))
        .await;
}

#[tokio::test]
async fn typename_of_interface_object_items() {
    check(
        "{ accounts { name __typename } }",
        json!({"accounts": [
            {"name": "Alice", "__typename": "Admin"},
            {"name": "Bob", "__typename": "Admin"},
            {"name": "Charlie", "__typename": "Regular"}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn typename_under_a_type_condition() {
    check(
        "{ accounts { ... on Admin { __typename } } }",
        json!({"accounts": [{"__typename": "Admin"}, {"__typename": "Admin"}, {}]}),
    )
    .await;
}

#[tokio::test]
async fn shareable_field_on_the_interface_object() {
    check(
        "{ accounts { id isActive } }",
        json!({"accounts": [
            {"id": "u1", "isActive": false},
            {"id": "u2", "isActive": false},
            {"id": "u3", "isActive": false}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn shareable_field_on_the_implementation() {
    check(
        "{ accounts { id ... on Admin { isActive } } }",
        json!({"accounts": [{"id": "u1", "isActive": true}, {"id": "u2", "isActive": true}, {"id": "u3"}]}),
    )
    .await;
}
