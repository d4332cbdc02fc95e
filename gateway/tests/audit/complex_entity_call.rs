//! Audit scenario `complex-entity-call`: entities whose keys are nested field
//! sets (`products{id pid category{id tag}} selected{id}`), so the gateway has
//! to gather key parts from several subgraphs before it can call the one that
//! owns a field, including a list entity keyed by its own list.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, pid, category, price
const PRODUCTS: [(&str, &str, &str, f64); 2] = [("1", "p1", "c1", 100.0), ("2", "p2", "c2", 200.0)];
/// id, tag, main product
const CATEGORIES: [(&str, &str, &str); 2] = [("c1", "t1", "1"), ("c2", "t2", "2")];

fn product(id: &str) -> Value {
    match PRODUCTS.iter().find(|p| p.0 == id) {
        Some((id, pid, cat, amount)) => {
            json!({"__typename": "Product", "id": id, "pid": pid, "categoryId": cat, "amount": amount})
        }
        None => Value::Null,
    }
}

fn category(id: &str) -> Value {
    match CATEGORIES.iter().find(|c| c.0 == id) {
        Some((id, tag, main)) => json!({"__typename": "Category", "id": id, "tag": tag, "mainId": main}),
        None => Value::Null,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// The product a representation names, when every key field it carries
/// (`id`, and `pid`/`category{id tag}` where present) matches.
fn product_matching(rep: &Value) -> Value {
    let p = product(str_of(rep, "id"));
    if p.is_null() {
        return p;
    }
    if rep.get("pid").is_some() && rep["pid"] != p["pid"] {
        return Value::Null;
    }
    if let Some(cat) = rep.get("category") {
        let c = category(str_of(&p, "categoryId"));
        if cat["id"] != c["id"] || cat["tag"] != c["tag"] {
            return Value::Null;
        }
    }
    p
}

/// Fields computed the same way in every subgraph that has them.
fn fields(parent: &Value, field: &str, _args: &Value) -> Option<Value> {
    match (parent["__typename"].as_str()?, field) {
        ("Product", "category") => Some(category(str_of(parent, "categoryId"))),
        ("Product", "price") => Some(json!({"__typename": "Price", "price": parent["amount"]})),
        ("Category", "mainProduct") => Some(product(str_of(parent, "mainId"))),
        _ => None,
    }
}

/// A `ProductList` answer from the products its representation lists.
fn list(rep: &Value, selected: impl Fn(&[Value]) -> Value) -> Value {
    let reps = rep["products"].as_array().cloned().unwrap_or_default();
    let found: Vec<Value> =
        PRODUCTS.iter().map(|p| product(p.0)).filter(|p| reps.iter().any(|r| product_matching(r) == *p)).collect();
    json!({"__typename": "ProductList", "first": found.first().cloned(), "selected": selected(&found), "products": found})
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let all: Value = PRODUCTS.iter().map(|p| product(p.0)).collect();
    let products = JsonSubgraph::new("products")
        .query(json!({"topProducts": {"__typename": "ProductList", "products": all}}))
        .fields(fields)
        .entities(|rep| match rep["__typename"].as_str() {
            Some("ProductList") => {
                let l = list(rep, |_| Value::Null);
                json!({"__typename": "ProductList", "products": l["products"]})
            }
            Some("Product") => product(str_of(rep, "id")),
            Some("Category") => category(str_of(rep, "id")),
            _ => Value::Null,
        });
    let link = JsonSubgraph::new("link").fields(fields).entities(product_matching);
    let list_sub = JsonSubgraph::new("list").fields(fields).entities(|rep| match rep["__typename"].as_str() {
        Some("ProductList") => list(rep, |found| found.get(1).cloned().unwrap_or(Value::Null)),
        Some("Product") if rep.get("pid").is_some() => product_matching(rep),
        _ => Value::Null,
    });
    let price = JsonSubgraph::new("price").fields(fields).entities(|rep| match rep["__typename"].as_str() {
        Some("ProductList") => list(rep, |_| product(str_of(&rep["selected"], "id"))),
        Some("Product") if rep.get("pid").is_some() && rep.get("category").is_some() => product_matching(rep),
        Some("Category") => category(str_of(rep, "id")),
        _ => Value::Null,
    });
    start("complex-entity-call", vec![products, link, list_sub, price]).await
}

#[tokio::test]
async fn nested_composite_keys_gathered_from_several_subgraphs() {
    let (_subs, gateway) = suite().await;
    let query = "{ topProducts { products { id pid price { price } category { mainProduct { id } id tag } } selected { id } first { id } } }";
    assert_eq!(
        gateway.query(query).await,
        json!({"data": {"topProducts": {
            "products": [
                {"id": "1", "pid": "p1", "price": {"price": 100.0}, "category": {"mainProduct": {"id": "1"}, "id": "c1", "tag": "t1"}},
                {"id": "2", "pid": "p2", "price": {"price": 200.0}, "category": {"mainProduct": {"id": "2"}, "id": "c2", "tag": "t2"}}
            ],
            "selected": {"id": "2"},
            "first": {"id": "1"}
        }}})
    );
}
