//! Audit scenario `shared-root`: three subgraphs share the same root fields
//! over a value type (no keys), each resolving one field; the gateway must
//! query all three in parallel and merge the results field by field.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// The product as upstream's `data.ts` has it; each subgraph serves `id`
/// and its own part.
fn product(part: &str) -> Value {
    let value = match part {
        "name" => json!({"__typename": "Name", "id": "1", "brand": "Brand 1", "model": "Model 1"}),
        "category" => json!({"__typename": "Category", "id": "1", "name": "Category 1"}),
        _ => json!({"__typename": "Price", "id": "1", "amount": 1000, "currency": "USD"}),
    };
    json!({"__typename": "Product", "id": "1", part: value})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let subs = ["name", "category", "price"]
        .into_iter()
        .map(|sub| {
            let p = product(sub);
            JsonSubgraph::new(sub).query(json!({"product": p, "products": [p]}))
        })
        .collect();
    start("shared-root", subs).await
}

fn expected_product() -> Value {
    json!({
        "id": "1",
        "name": {"id": "1", "brand": "Brand 1", "model": "Model 1"},
        "price": {"id": "1", "amount": 1000, "currency": "USD"},
        "category": {"id": "1", "name": "Category 1"}
    })
}

#[tokio::test]
async fn one_object_from_three_subgraphs() {
    let (subs, gateway) = suite().await;
    let response = gateway
        .query("{ product { id name { id brand model } category { id name } price { id amount currency } } }")
        .await;
    assert_eq!(response, json!({"data": {"product": expected_product()}}));
    assert!(subs.iter().all(|s| s.recorder.requests() == 1));
}

#[tokio::test]
async fn a_list_from_three_subgraphs() {
    let (subs, gateway) = suite().await;
    let response = gateway
        .query("{ products { id name { id brand model } category { id name } price { id amount currency } } }")
        .await;
    assert_eq!(response, json!({"data": {"products": [expected_product()]}}));
    assert!(subs.iter().all(|s| s.recorder.requests() == 1));
}
