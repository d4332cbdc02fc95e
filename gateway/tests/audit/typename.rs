//! Audit scenario `typename`: `__typename` under aliases, repeated, inside
//! type conditions, on unions and interfaces, and on an `@interfaceObject`
//! list whose concrete type only the interface's owning subgraph knows.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "union": {"__typename": "Oven", "id": "o1"},
            "interface": {"__typename": "Toaster", "id": "2"}
        }))
        .possible("Product", &["Oven", "Toaster"])
        .possible("Node", &["Oven", "Toaster"])
        .possible("User", &["Admin"])
        .entities(|rep| match rep["id"].as_str() {
            Some(id @ ("u1" | "u2")) => json!({"__typename": "Admin", "id": id, "isMain": id == "u1"}),
            _ => Value::Null,
        });
    // `b` sees users only as the interface object `User`.
    let b = JsonSubgraph::new("b").query(json!({"users": [
        {"__typename": "User", "id": "u1", "name": "Ann"},
        {"__typename": "User", "id": "u2", "name": "Bob"}
    ]}));
    start("typename", vec![a, b]).await
}

#[tokio::test]
async fn aliased_typename_on_a_union() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ union { __typename typename: __typename } }").await,
        json!({"data": {"union": {"__typename": "Oven", "typename": "Oven"}}})
    );
}

#[tokio::test]
async fn aliased_typename_on_an_interface() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ interface { id __typename typename: __typename t: __typename } }").await,
        json!({"data": {"interface": {"id": "2", "__typename": "Toaster", "typename": "Toaster", "t": "Toaster"}}})
    );
}

#[tokio::test]
async fn aliased_typename_inside_type_conditions_on_a_union() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway
            .query(
                "{ union { __typename ... on Oven { typename: __typename } ... on Toaster { typename: __typename } } }"
            )
            .await,
        json!({"data": {"union": {"__typename": "Oven", "typename": "Oven"}}})
    );
}

#[tokio::test]
async fn aliased_typename_inside_type_conditions_on_an_interface() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway
            .query(
                "{ interface { __typename ... on Oven { typename: __typename } ... on Toaster { typename: __typename } } }"
            )
            .await,
        json!({"data": {"interface": {"__typename": "Toaster", "typename": "Toaster"}}})
    );
}

#[tokio::test]
async fn an_interface_object_list() {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query("{ users { id } }").await, json!({"data": {"users": [{"id": "u1"}, {"id": "u2"}]}}));
}

#[tokio::test]
async fn the_concrete_typename_behind_an_interface_object() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ users { __typename } }").await,
        json!({"data": {"users": [{"__typename": "Admin"}, {"__typename": "Admin"}]}})
    );
}
