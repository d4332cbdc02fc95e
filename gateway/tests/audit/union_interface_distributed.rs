//! Audit scenario `union-interface-distributed`: `Oven` implements `Node` only
//! in the subgraph that does not serve the root fields, so a `... on Node`
//! selection must still reach ovens, and an oven handed out as a `Node` by the
//! subgraph that does not know it is one is an error, not data. Both
//! subgraphs also declare `WithWarranty`, implemented by `Toaster` in `a` and
//! by `Oven` in `b`.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, type, warranty
const PRODUCTS: [(&str, &str, i64); 4] =
    [("oven1", "Oven", 1), ("oven2", "Oven", 2), ("toaster1", "Toaster", 3), ("toaster2", "Toaster", 4)];

/// A product as subgraph `a` knows it (ovens have no warranty there).
fn in_a(id: &str) -> Value {
    match PRODUCTS.iter().find(|p| p.0 == id) {
        Some((id, "Oven", _)) => json!({"__typename": "Oven", "id": id}),
        Some((id, ty, warranty)) => json!({"__typename": ty, "id": id, "warranty": warranty}),
        None => Value::Null,
    }
}

fn toasters() -> Value {
    PRODUCTS.iter().filter(|p| p.1 == "Toaster").map(|p| in_a(p.0)).collect()
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = PRODUCTS.iter().map(|p| in_a(p.0)).collect();
    let a = JsonSubgraph::new("a")
        .query(json!({"products": all, "nodes": toasters(), "toasters": toasters()}))
        .possible("Product", &["Oven", "Toaster"])
        .possible("Node", &["Toaster"])
        .possible("WithWarranty", &["Toaster"])
        .fields(|parent, field, args| match (parent["__typename"].as_str(), field) {
            (Some("Query"), "node") => Some(match in_a(args["id"].as_str().unwrap_or_default()) {
                // `a` does not declare `Oven implements Node`: its server rejects the value.
                oven if oven["__typename"] == "Oven" => json!({"__error": "Oven is not a possible type of Node"}),
                other => other,
            }),
            _ => None,
        })
        .entities(|rep| {
            let found = in_a(rep["id"].as_str().unwrap_or_default());
            if found["__typename"] == rep["__typename"] {
                found
            } else {
                Value::Null
            }
        });
    let b = JsonSubgraph::new("b").possible("Node", &["Oven"]).possible("WithWarranty", &["Oven"]).entities(|rep| {
        match PRODUCTS.iter().find(|p| p.0 == rep["id"] && p.1 == "Oven") {
            Some((id, ty, warranty)) => json!({"__typename": ty, "id": id, "warranty": warranty}),
            None => Value::Null,
        }
    });
    start("union-interface-distributed", vec![a, b]).await
}

#[tokio::test]
async fn node_fragment_on_union_members_implementing_it_elsewhere() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ products { ... on Node { id } } }").await,
        json!({"data": {"products": [{"id": "oven1"}, {"id": "oven2"}, {"id": "toaster1"}, {"id": "toaster2"}]}})
    );
}

#[tokio::test]
async fn interface_list_with_fragments_on_both_types() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ nodes { ... on Toaster { warranty } ... on Oven { id } } }").await,
        json!({"data": {"nodes": [{"warranty": 3}, {"warranty": 4}]}})
    );
}

#[tokio::test]
async fn interface_list_with_interface_field() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ nodes { id } }").await,
        json!({"data": {"nodes": [{"id": "toaster1"}, {"id": "toaster2"}]}})
    );
}

#[tokio::test]
async fn interface_list_with_a_fragment_on_the_interface() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ nodes { ... on Node { id } } }").await,
        json!({"data": {"nodes": [{"id": "toaster1"}, {"id": "toaster2"}]}})
    );
}

#[tokio::test]
async fn interface_list_with_a_fragment_on_another_interface() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ nodes { ... on Node { ... on WithWarranty { warranty } } } }").await,
        json!({"data": {"nodes": [{"warranty": 3}, {"warranty": 4}]}})
    );
}

#[tokio::test]
async fn interface_list_with_nested_interface_fragments() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ nodes { ... on Node { id ... on Node { id ... on WithWarranty { warranty } } } } }").await,
        json!({"data": {"nodes": [{"id": "toaster1", "warranty": 3}, {"id": "toaster2", "warranty": 4}]}})
    );
}

#[tokio::test]
async fn object_list_with_object_and_interface_fragments() {
    let (_subs, gateway) = suite().await;
    let query = "{ toasters { ...ToasterFragment ...NodeFragment } } \
        fragment ToasterFragment on Toaster { id } fragment NodeFragment on Node { id __typename }";
    assert_eq!(
        gateway.query(query).await,
        json!({"data": {"toasters": [
            {"id": "toaster1", "__typename": "Toaster"},
            {"id": "toaster2", "__typename": "Toaster"}
        ]}})
    );
}

/// The root subgraph fails on an oven returned as `Node`: null plus an error.
async fn assert_node_fails(query: &str) {
    let (_subs, gateway) = suite().await;
    let response = gateway.query(query).await;
    assert_eq!(response["data"], json!({"node": null}), "{response}");
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
}

#[tokio::test]
async fn oven_as_node_with_oven_fragment() {
    assert_node_fails(r#"{ node(id: "oven1") { ... on Oven { warranty } } }"#).await;
}

#[tokio::test]
async fn oven_as_node_with_toaster_fragment() {
    assert_node_fails(r#"{ node(id: "oven1") { ... on Toaster { warranty } } }"#).await;
}

#[tokio::test]
async fn toaster_as_node() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query(r#"{ node(id: "toaster1") { ... on Toaster { warranty } } }"#).await,
        json!({"data": {"node": {"warranty": 3}}})
    );
}
