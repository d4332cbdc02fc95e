//! Audit scenario `node`: a `Node`-typed root field in one subgraph, the
//! object's fields in another, and a third subgraph that knows the same
//! entities but has none of the fields asked for (it must not get in the way).

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, price
const PRODUCTS: [(&str, &str, i64); 2] = [("p-1", "Product 1", 10), ("p-2", "Product 2", 20)];
/// id, name
const CATEGORIES: [(&str, &str); 2] = [("c-1", "Seating"), ("c-2", "Tables")];

/// An entity by key; `full` adds the fields only subgraph `types` has.
fn entity(rep: &Value, full: bool) -> Value {
    let id = &rep["id"];
    match rep["__typename"].as_str() {
        Some("Product") => PRODUCTS.iter().find(|p| p.0 == id).map_or(Value::Null, |p| {
            if full {
                json!({"__typename": "Product", "id": p.0, "name": p.1, "price": p.2})
            } else {
                json!({"__typename": "Product", "id": p.0})
            }
        }),
        Some("Category") => CATEGORIES.iter().find(|c| c.0 == id).map_or(Value::Null, |c| {
            if full {
                json!({"__typename": "Category", "id": c.0, "name": c.1})
            } else {
                json!({"__typename": "Category", "id": c.0})
            }
        }),
        _ => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let node = JsonSubgraph::new("node")
        .query(json!({
            "productNode": {"__typename": "Product", "id": PRODUCTS[0].0},
            "categoryNode": {"__typename": "Category", "id": CATEGORIES[0].0}
        }))
        .possible("Node", &["Product", "Category"])
        .entities(|rep| entity(rep, false));
    let node_two =
        JsonSubgraph::new("node-two").possible("Node", &["Product", "Category"]).entities(|rep| entity(rep, false));
    let types = JsonSubgraph::new("types").possible("Node", &["Product", "Category"]).entities(|rep| entity(rep, true));
    start("node", vec![node, node_two, types]).await
}

#[tokio::test]
async fn node_root_with_fields_from_another_subgraph() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ productNode { ... on Product { id name __typename price } } }").await,
        json!({"data": {"productNode": {"id": "p-1", "name": "Product 1", "__typename": "Product", "price": 10}}})
    );
}
