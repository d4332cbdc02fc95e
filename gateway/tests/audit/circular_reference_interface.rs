//! Audit scenario `circular-reference-interface`: an interface field
//! (`Product.samePriceProduct: Product`) that the implementation narrows to
//! `Book` with `@provides(fields: "price")`, followed twice in a row, while
//! `price` at the root has to come from the other subgraph.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, price
const BOOKS: [(&str, f64); 3] = [("1", 10.99), ("2", 7.25), ("3", 10.99)];

fn book(id: &str) -> Value {
    match BOOKS.iter().find(|b| b.0 == id) {
        Some((id, price)) => json!({"__typename": "Book", "id": id, "price": price}),
        None => Value::Null,
    }
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({"product": book("1")}))
        .possible("Product", &["Book"])
        .fields(|parent, field, _| match field {
            // Another book with the same price as the parent (as `a` knows it).
            "samePriceProduct" => Some(
                BOOKS
                    .iter()
                    .find(|b| Some(b.1) == parent["price"].as_f64() && b.0 != parent["id"])
                    .map_or(Value::Null, |b| book(b.0)),
            ),
            _ => None,
        })
        // `a` has no reference resolver of its own: an entity is its representation.
        .entities(|rep| rep.clone());
    let b = JsonSubgraph::new("b").entities(|rep| book(rep["id"].as_str().unwrap_or_default()));
    start("circular-reference-interface", vec![a, b]).await
}

#[tokio::test]
async fn interface_field_followed_twice() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query("{ product { samePriceProduct { ... on Product { samePriceProduct { __typename } } } } }").await,
        json!({"data": {"product": {"samePriceProduct": {"samePriceProduct": {"__typename": "Book"}}}}})
    );
}

#[tokio::test]
async fn provided_and_fetched_price_along_the_cycle() {
    let (_subs, gateway) = suite().await;
    let query = "{ product { __typename samePriceProduct { __typename ... on Book { id } samePriceProduct { __typename ... on Book { id } } } ... on Book { __typename id price samePriceProduct { id price } } } }";
    assert_eq!(
        gateway.query(query).await,
        json!({"data": {"product": {
            "__typename": "Book",
            "samePriceProduct": {"__typename": "Book", "id": "3", "samePriceProduct": {"__typename": "Book", "id": "1"}, "price": 10.99},
            "id": "1",
            "price": 10.99
        }}})
    );
}
