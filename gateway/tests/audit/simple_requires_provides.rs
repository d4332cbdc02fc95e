//! Audit scenario `simple-requires-provides`: the classic four-subgraph shop,
//! with `@requires(fields: "price weight")` for shipping estimates and
//! `@provides(fields: "username")` on review authors, reached from both
//! root fields and through review/product cycles.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

const ME: (&str, &str, &str) = ("u1", "u-name-1", "u-username-1");
/// upc, name, price, weight, in stock
const PRODUCTS: [(&str, &str, i64, i64, bool); 2] = [("p1", "p-name-1", 11, 1, true), ("p2", "p-name-2", 22, 2, false)];
/// review id, product upc (all written by ME)
const REVIEWS: [(&str, &str); 2] = [("r1", "p1"), ("r2", "p2")];

fn review(id: &str) -> Value {
    match REVIEWS.iter().find(|r| r.0 == id) {
        Some((id, upc)) => json!({
            "__typename": "Review", "id": id, "body": format!("r-body-{}", &id[1..]),
            "author": {"__typename": "User", "id": ME.0, "username": ME.2},
            "product": {"__typename": "Product", "upc": upc}
        }),
        None => Value::Null,
    }
}

fn reviews_where(pred: impl Fn(&(&str, &str)) -> bool) -> Value {
    REVIEWS.iter().filter(|r| pred(r)).map(|r| review(r.0)).collect()
}

fn product(upc: &Value) -> Option<&'static (&'static str, &'static str, i64, i64, bool)> {
    PRODUCTS.iter().find(|p| p.0 == upc)
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let me = json!({"__typename": "User", "id": ME.0, "name": ME.1, "username": ME.2});
    let accounts = JsonSubgraph::new("accounts").query(json!({ "me": me.clone() })).entities(move |rep| {
        if rep["id"] == ME.0 {
            me.clone()
        } else {
            Value::Null
        }
    });
    let full = |p: &(&str, &str, i64, i64, bool)| json!({"__typename": "Product", "upc": p.0, "name": p.1, "price": p.2, "weight": p.3});
    let all: Value = PRODUCTS.iter().map(full).collect();
    let products = JsonSubgraph::new("products")
        .query(json!({ "products": all }))
        .entities(move |rep| product(&rep["upc"]).map_or(Value::Null, full));
    // Estimates only from the price and weight the gateway sent.
    let inventory = JsonSubgraph::new("inventory").entities(|rep| {
        let Some(p) = product(&rep["upc"]) else { return Value::Null };
        let mut out = json!({"__typename": "Product", "upc": p.0, "inStock": p.4});
        if let (Some(price), Some(weight)) = (rep["price"].as_i64(), rep["weight"].as_i64()) {
            let estimate = price * weight * 10;
            out["shippingEstimate"] = json!(estimate);
            out["shippingEstimateTag"] = json!(format!("#{}#{estimate}#", p.0));
        } else {
            out["shippingEstimate"] = json!({"__error": "price and weight are required"});
            out["shippingEstimateTag"] = json!({"__error": "price and weight are required"});
        }
        out
    });
    let reviews = JsonSubgraph::new("reviews")
        .fields(|parent, field, _| match (parent["__typename"].as_str()?, field) {
            ("User", "reviews") => Some(reviews_where(|_| parent["id"] == ME.0)),
            ("Product", "reviews") => Some(reviews_where(|r| parent["upc"] == r.1)),
            _ => None,
        })
        .entities(|rep| match rep["__typename"].as_str() {
            Some("Review") => review(rep["id"].as_str().unwrap_or_default()),
            Some("User") if rep["id"] == ME.0 => json!({"__typename": "User", "id": ME.0, "username": ME.2}),
            Some("Product") => json!({"__typename": "Product", "upc": rep["upc"]}),
            _ => Value::Null,
        });
    start("simple-requires-provides", vec![accounts, inventory, products, reviews]).await
}

async fn check(query: &str, expected: Value) {
    let (_subs, gateway) = suite().await;
    assert_eq!(gateway.query(query).await, json!({ "data": expected }), "{query}");
}

#[tokio::test]
async fn root_entity_key() {
    check("{ me { id } }", json!({"me": {"id": "u1"}})).await;
}

#[tokio::test]
async fn entity_list_from_another_subgraph() {
    check("{ me { id reviews { id } } }", json!({"me": {"id": "u1", "reviews": [{"id": "r1"}, {"id": "r2"}]}})).await;
}

#[tokio::test]
async fn provided_username_and_stock() {
    check(
        "{ me { reviews { id author { id username } product { inStock } } } }",
        json!({"me": {"reviews": [
            {"id": "r1", "author": {"id": "u1", "username": "u-username-1"}, "product": {"inStock": true}},
            {"id": "r2", "author": {"id": "u1", "username": "u-username-1"}, "product": {"inStock": false}}
        ]}}),
    )
    .await;
}

#[tokio::test]
async fn root_list_field() {
    check("{ products { name } }", json!({"products": [{"name": "p-name-1"}, {"name": "p-name-2"}]})).await;
}

#[tokio::test]
async fn root_list_required_field_input() {
    check("{ products { price } }", json!({"products": [{"price": 11}, {"price": 22}]})).await;
}

#[tokio::test]
async fn requires_from_the_root_list() {
    check(
        "{ products { shippingEstimate } }",
        json!({"products": [{"shippingEstimate": 110}, {"shippingEstimate": 440}]}),
    )
    .await;
}

#[tokio::test]
async fn requires_next_to_its_own_inputs() {
    check(
        "{ products { shippingEstimate weight price } }",
        json!({"products": [
            {"shippingEstimate": 110, "weight": 1, "price": 11},
            {"shippingEstimate": 440, "weight": 2, "price": 22}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn requires_after_a_cycle_through_reviews() {
    check(
        "{ products { reviews { id author { username } product { name shippingEstimate } } } }",
        json!({"products": [
            {"reviews": [{"id": "r1", "author": {"username": "u-username-1"}, "product": {"name": "p-name-1", "shippingEstimate": 110}}]},
            {"reviews": [{"id": "r2", "author": {"username": "u-username-1"}, "product": {"name": "p-name-2", "shippingEstimate": 440}}]}
        ]}),
    )
    .await;
}

#[tokio::test]
async fn back_into_the_same_subgraph() {
    check(
        "{ me { reviews { product { reviews { id } } } } }",
        json!({"me": {"reviews": [
            {"product": {"reviews": [{"id": "r1"}]}},
            {"product": {"reviews": [{"id": "r2"}]}}
        ]}}),
    )
    .await;
}

#[tokio::test]
async fn stock_through_reviews() {
    check(
        "{ me { reviews { product { inStock } } } }",
        json!({"me": {"reviews": [{"product": {"inStock": true}}, {"product": {"inStock": false}}]}}),
    )
    .await;
}

#[tokio::test]
async fn requires_through_reviews() {
    check(
        "{ me { reviews { product { shippingEstimate } } } }",
        json!({"me": {"reviews": [{"product": {"shippingEstimate": 110}}, {"product": {"shippingEstimate": 440}}]}}),
    )
    .await;
}

#[tokio::test]
async fn two_fields_with_the_same_requirement() {
    check(
        "{ me { reviews { product { shippingEstimate shippingEstimateTag } } } }",
        json!({"me": {"reviews": [
            {"product": {"shippingEstimate": 110, "shippingEstimateTag": "#p1#110#"}},
            {"product": {"shippingEstimate": 440, "shippingEstimateTag": "#p2#440#"}}
        ]}}),
    )
    .await;
}
