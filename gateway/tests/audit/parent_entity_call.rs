//! Audit scenario `parent-entity-call`: a field of a non-entity type
//! (`Category.details`) lives in a subgraph where `Category` has no key, so
//! the gateway reaches it through the parent entity (`Product`, by its
//! composite key) and merges the nested result into each product's category.

use crate::audit_support;

use audit_support::{start, JsonSubgraph};
use serde_json::{json, Value};

/// id, pid, category
const PRODUCTS: [(&str, &str, &str); 3] = [("p1", "x1", "c1"), ("p2", "x2", "c2"), ("p3", "x3", "c1")];

fn category_of(rep: &Value) -> Option<&'static str> {
    PRODUCTS.iter().find(|p| rep["id"] == p.0 && rep["pid"].as_str().is_none_or(|pid| pid == p.1)).map(|p| p.2)
}

fn count(category: &str) -> usize {
    PRODUCTS.iter().filter(|p| p.2 == category).count()
}

#[tokio::test]
async fn a_nested_field_through_the_parent_entity() {
    let products: Vec<Value> = PRODUCTS
        .iter()
        .map(|(id, pid, cat)| {
            json!({"__typename": "Product", "id": id, "pid": pid,
                   "category": {"__typename": "Category", "id": cat, "name": format!("name-{cat}")}})
        })
        .collect();
    let a = JsonSubgraph::new("a").query(json!({ "products": products }));
    let b = JsonSubgraph::new("b").entities(|_| json!({"__error": "subgraph b is not needed"}));
    let c = JsonSubgraph::new("c").entities(|rep| match category_of(rep) {
        Some(cat) => json!({"__typename": "Product", "id": rep["id"], "pid": rep["pid"],
                            "category": {"__typename": "Category", "details": {"__typename": "CategoryDetails", "products": count(cat)}}}),
        None => Value::Null,
    });
    let (subs, gateway) = start("parent-entity-call", vec![a, b, c]).await;
    let response = gateway.query("{ products { id category { id details { products } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"id": "p1", "category": {"id": "c1", "details": {"products": 2}}},
            {"id": "p2", "category": {"id": "c2", "details": {"products": 1}}},
            {"id": "p3", "category": {"id": "c1", "details": {"products": 2}}}
        ]}})
    );
    assert_eq!(subs[1].recorder.requests(), 0);
}
