//! Audit scenario `non-resolvable-interface-object`: `Node` is an interface
//! with no implementation anywhere, extended by an `@interfaceObject` whose
//! key is `resolvable: false`; `Product` is an `@interfaceObject` at the root
//! subgraph whose only implementation lives in the other subgraph.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            // No object type of `a` implements `Node`: its server cannot answer.
            "a": {"__error": "Node has no implementation"},
            "product": {"__typename": "Product", "id": "p1"}
        }))
        .entities(|rep| if rep["id"] == "p1" { json!({"__typename": "Product", "id": "p1"}) } else { Value::Null });
    let b = JsonSubgraph::new("b")
        .query(json!({"b": {"__typename": "Node", "id": "n1", "field": "foo"}}))
        .possible("Product", &["Bread"])
        .entities(|rep| match (rep["__typename"].as_str(), rep["id"].as_str()) {
            (Some("Product" | "Bread"), Some("p1")) => {
                json!({"__typename": "Bread", "id": "p1", "name": "Rye"})
            }
            (Some("Node"), _) => json!({"__error": "Node is not resolvable here"}),
            _ => Value::Null,
        });
    start("non-resolvable-interface-object", vec![a, b]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

fn has_errors(response: &Value) -> bool {
    response["errors"].as_array().is_some_and(|e| !e.is_empty())
}

#[tokio::test]
async fn interface_object_fields_at_its_own_root() {
    check("{ b { id field } }", json!({"b": {"id": "n1", "field": "foo"}})).await;
}

#[tokio::test]
async fn interface_object_field_from_a_root_that_cannot_reach_it() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ a { field } }").await;
    assert!(response["data"].is_null() && has_errors(&response), "{response}");
}

#[tokio::test]
async fn interface_object_key_at_its_own_root() {
    check("{ b { id } }", json!({"b": {"id": "n1"}})).await;
}

#[tokio::test]
async fn interface_without_implementations() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ a { id } }").await;
    assert_eq!(response["data"], json!({"a": null}), "{response}");
    assert!(has_errors(&response), "{response}");
}

#[tokio::test]
async fn interface_object_root_key() {
    check("{ product { id } }", json!({"product": {"id": "p1"}})).await;
}

#[tokio::test]
async fn implementation_field_without_a_fragment_is_invalid() {
    let (_subs, gateway) = suite().await;
    let response = gateway.query("{ product { id name } }").await;
    assert!(response["data"].is_null() && has_errors(&response), "{response}");
}

#[tokio::test]
async fn implementation_fragment_on_an_interface_object() {
    check("{ product { ... on Bread { id } } }", json!({"product": {"id": "p1"}})).await;
}
