//! Audit scenario `requires-with-argument`: `@requires` selects a field with
//! an argument (`price(currency: "USD") weight`), so the requirement fetch has
//! to pass that argument on to the subgraph that owns `price`.

mod audit_support;
mod common;

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// upc, name, price in USD, weight
const PRODUCTS: [(&str, &str, i64, i64); 2] = [("p1", "Lamp", 7, 3), ("p2", "Desk", 40, 5)];

fn product(upc: &str) -> Value {
    match PRODUCTS.iter().find(|p| p.0 == upc) {
        Some((upc, name, usd, weight)) => {
            json!({"__typename": "Product", "upc": upc, "name": name, "usd": usd, "weight": weight})
        }
        None => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = PRODUCTS.iter().map(|p| product(p.0)).collect();
    let b = JsonSubgraph::new("b")
        .query(json!({ "products": all }))
        .fields(|parent, field, args| match field {
            // Only dollars are known here; any other currency is an error.
            "price" if args["currency"] == "USD" => Some(parent["usd"].clone()),
            "price" => Some(json!({"__error": format!("unknown currency {}", args["currency"])})),
            _ => None,
        })
        .entities(|rep| product(rep["upc"].as_str().unwrap_or_default()));
    let a = JsonSubgraph::new("a").entities(|rep| {
        let estimate = match (rep["price"].as_i64(), rep["weight"].as_i64()) {
            (Some(price), Some(weight)) => json!(price * weight * 10),
            _ => json!({"__error": "price and weight are required"}),
        };
        json!({"__typename": "Product", "upc": rep["upc"], "shippingEstimate": estimate})
    });
    start("requires-with-argument", vec![a, b]).await
}

#[tokio::test]
async fn requirement_with_an_argument() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ products { upc name shippingEstimate } }").await,
        json!({"data": {"products": [
            {"upc": "p1", "name": "Lamp", "shippingEstimate": 210},
            {"upc": "p2", "name": "Desk", "shippingEstimate": 2000}
        ]}})
    );
}
