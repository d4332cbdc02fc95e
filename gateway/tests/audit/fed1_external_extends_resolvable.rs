//! Audit scenario `fed1-external-extends-resolvable`: a Federation 1
//! extension keyed both by `id name` and by `upc` (all `@external`); reaching
//! it with the first key is enough to read `upc`, which no other subgraph has.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, pid, name, upc, price
const PRODUCT: (&str, &str, &str, &str, f64) = ("p1", "p1-pid", "p1-name", "upc1", 12.3);

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let in_a = json!({"__typename": "Product", "id": PRODUCT.0, "name": PRODUCT.2, "pid": PRODUCT.1});
    let a = JsonSubgraph::new("a").query(json!({ "productInA": in_a.clone() })).entities(move |rep| {
        if rep["id"] == PRODUCT.0 {
            in_a.clone()
        } else {
            Value::Null
        }
    });
    let in_b =
        json!({"__typename": "Product", "id": PRODUCT.0, "name": PRODUCT.2, "upc": PRODUCT.3, "price": PRODUCT.4});
    let b = JsonSubgraph::new("b").query(json!({ "productInB": in_b.clone() })).entities(move |rep| {
        let by_id_and_name = rep["id"] == PRODUCT.0 && rep["name"] == PRODUCT.2;
        if by_id_and_name || rep["upc"] == PRODUCT.3 {
            in_b.clone()
        } else {
            Value::Null
        }
    });
    start("fed1-external-extends-resolvable", vec![a, b]).await
}

#[tokio::test]
async fn external_key_field_of_another_key() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ productInA { id pid price upc name } }").await,
        json!({"data": {"productInA": {"id": "p1", "pid": "p1-pid", "price": 12.3, "upc": "upc1", "name": "p1-name"}}})
    );
}
