//! Audit scenario `requires-with-argument-conflict`: two fields of one
//! subgraph require the same external field with different arguments
//! (`price(currency: "USD")` and `price(currency: "EUR")`), and a third
//! requires a nested field with an argument. The owner has to be asked for
//! both prices (one of them under an alias), and each requiring field has to
//! get the price with its own currency in a representation keyed `price`,
//! so the two estimates cannot share one representation.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// upc, name, price (in dollars), weight, category average price (in dollars)
const PRODUCTS: [(&str, &str, i64, i64, i64); 2] = [("p1", "p-name-1", 11, 1, 11), ("p2", "p-name-2", 22, 2, 22)];

fn product(upc: &Value) -> Value {
    match PRODUCTS.iter().find(|p| p.0 == *upc) {
        Some((upc, name, price, weight, average)) => json!({
            "__typename": "Product",
            "upc": upc,
            "name": name,
            "price": price,
            "weight": weight,
            "category": {"__typename": "Category", "averagePrice": average}
        }),
        None => Value::Null,
    }
}

/// A dollar amount in `currency` (a euro is worth half a dollar here).
fn in_currency(dollars: &Value, currency: &Value) -> Value {
    match (dollars.as_i64(), currency.as_str()) {
        (Some(amount), Some("USD")) => json!(amount),
        (Some(amount), Some("EUR")) => json!(amount * 2),
        _ => json!({"__error": format!("Unsupported currency {currency}")}),
    }
}

/// `price * weight * 10` from the representation the gateway sent.
fn estimate(parent: &Value) -> Value {
    match (parent.get("price").and_then(Value::as_i64), parent.get("weight").and_then(Value::as_i64)) {
        (Some(price), Some(weight)) => json!(price * weight * 10),
        _ => json!({"__error": "price and weight are required"}),
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = PRODUCTS.iter().map(|p| product(&json!(p.0))).collect();
    let b = JsonSubgraph::new("b")
        .query(json!({ "products": all }))
        .fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
            ("Product", "price") => Some(in_currency(&parent["price"], &args["currency"])),
            ("Category", "averagePrice") => Some(in_currency(&parent["averagePrice"], &args["currency"])),
            _ => None,
        })
        .entities(|rep| product(&rep["upc"]));
    // `a` knows the products but computes everything from the representation.
    let a = JsonSubgraph::new("a")
        .entities(|rep| if product(&rep["upc"]).is_null() { Value::Null } else { rep.clone() })
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            ("Product", "shippingEstimate") | ("Product", "shippingEstimateEUR") => Some(estimate(parent)),
            ("Product", "isExpensiveCategory") => {
                Some(match parent.get("category").and_then(|c| c.get("averagePrice")).and_then(Value::as_i64) {
                    Some(average) => json!(average > 11),
                    None => json!({"__error": "category.averagePrice is required"}),
                })
            }
            _ => None,
        });
    start("requires-with-argument-conflict", vec![a, b]).await
}

#[tokio::test]
async fn fields_requiring_one_field_with_different_arguments_each_get_their_own_value() {
    let (_subs, gateway) = suite().await;
    let query = "query { products { upc name shippingEstimate shippingEstimateEUR isExpensiveCategory } }";
    assert_eq!(
        gateway.query(query).await,
        json!({"data": {"products": [
            {
                "upc": "p1",
                "name": "p-name-1",
                "shippingEstimate": 110,
                "shippingEstimateEUR": 220,
                "isExpensiveCategory": false
            },
            {
                "upc": "p2",
                "name": "p-name-2",
                "shippingEstimate": 440,
                "shippingEstimateEUR": 880,
                "isExpensiveCategory": true
            }
        ]}})
    );
}
