//! Audit scenario `shared-root`: three subgraphs share the same root fields
//! over a value type (no keys), each resolving one field; the gateway must
//! query all three in parallel and merge the results field by field.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

fn product(field: &str, value: Value) -> Value {
    json!({"__typename": "Product", "id": "9", field: value})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let subs = [("name", json!("Lamp")), ("category", json!("Lighting")), ("price", json!(25.5))]
        .into_iter()
        .map(|(sub, value)| {
            let p = product(sub, value);
            JsonSubgraph::new(sub).query(json!({"product": p, "products": [p]}))
        })
        .collect();
    start("shared-root", subs).await
}

#[tokio::test]
async fn one_object_from_three_subgraphs() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ product { id name category price } }").await;
    assert_eq!(
        response,
        json!({"data": {"product": {"id": "9", "name": "Lamp", "category": "Lighting", "price": 25.5}}})
    );
    assert!(subs.iter().all(|s| s.recorder.requests() == 1));
}

#[tokio::test]
async fn a_list_from_three_subgraphs() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ products { id name category price } }").await;
    assert_eq!(
        response,
        json!({"data": {"products": [{"id": "9", "name": "Lamp", "category": "Lighting", "price": 25.5}]}})
    );
    assert!(subs.iter().all(|s| s.recorder.requests() == 1));
}
