//! Audit scenario `parent-entity-call-complex`: `Product.category` is served
//! by two subgraphs that each know a different part of the `Category` value
//! (`details` in one, `id` in the other), and `Category.name` needs an entity
//! call keyed by the `id` only one of them has.

use crate::{audit_support, common};

use audit_support::{start, JsonSubgraph};
use serde_json::json;

const CATEGORY_ID: &str = "3";

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a").entities(|rep| {
        json!({"__typename": "Product", "id": rep["id"], "category": {"__typename": "Category", "details": format!("Details for Product#{}", rep["id"].as_str().unwrap_or_default())}})
    });
    let b = JsonSubgraph::new("b").entities(|rep| {
        json!({"__typename": "Product", "id": rep["id"], "category": {"__typename": "Category", "id": CATEGORY_ID}})
    });
    let c = JsonSubgraph::new("c").entities(|rep| {
        let id = rep["id"].as_str().unwrap_or_default();
        json!({"__typename": "Category", "id": id, "name": format!("Category#{id}")})
    });
    let d = JsonSubgraph::new("d").fields(|parent, field, args| match (parent["__typename"].as_str()?, field) {
        ("Query", "productFromD") => {
            let id = args["id"].as_str().unwrap_or_default();
            Some(json!({"__typename": "Product", "id": id, "name": format!("Product#{id}")}))
        }
        _ => None,
    });
    start("parent-entity-call-complex", vec![a, b, c, d]).await
}

#[tokio::test]
async fn one_value_assembled_from_two_subgraphs_and_an_entity_call() {
    let (_subs, gateway) = suite().await;
    assert_eq!(
        gateway.query(r#"{ productFromD(id: "1") { id name category { id name details } } }"#).await,
        json!({"data": {"productFromD": {
            "id": "1",
            "name": "Product#1",
            "category": {"id": "3", "name": "Category#3", "details": "Details for Product#1"}
        }}})
    );
}
