//! Audit scenario `mysterious-external`: a subgraph extends `Product` with
//! its key `id` marked `@external`, yet it serves a root field returning
//! products; the key it returns there is usable for the entity hop.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, name, price
const PRODUCTS: [(&str, &str, i64); 2] = [("1", "name-1", 100), ("2", "name-2", 200)];

fn find(rep: &Value) -> Option<&'static (&'static str, &'static str, i64)> {
    PRODUCTS.iter().find(|p| p.0 == rep["id"])
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let priced = |p: &(&str, &str, i64)| json!({"__typename": "Product", "id": p.0, "price": p.2});
    let named = |p: &(&str, &str, i64)| json!({"__typename": "Product", "id": p.0, "name": p.1});
    let price = JsonSubgraph::new("price")
        .query(json!({"cheapestProduct": priced(&PRODUCTS[0])}))
        .entities(move |rep| find(rep).map_or(Value::Null, priced));
    let product = JsonSubgraph::new("product")
        .query(json!({"products": PRODUCTS.iter().map(named).collect::<Value>()}))
        .entities(move |rep| find(rep).map_or(Value::Null, named));
    start("mysterious-external", vec![price, product]).await
}

#[tokio::test]
async fn root_in_the_subgraph_with_the_external_key() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ cheapestProduct { id price name } }").await,
        json!({"data": {"cheapestProduct": {"id": "1", "price": 100, "name": "name-1"}}})
    );
}

#[tokio::test]
async fn entity_hop_into_the_subgraph_with_the_external_key() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ products { name price id } }").await,
        json!({"data": {"products": [
            {"name": "name-1", "price": 100, "id": "1"},
            {"name": "name-2", "price": 200, "id": "2"}
        ]}})
    );
}
