//! Audit scenario `nested-provides`: a root field provides a nested selection
//! (categories and their sub-categories, two levels of the same entity type),
//! so one fetch answers everything and no entity call is needed.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

fn category(id: &str, with_subs: bool) -> Value {
    let (name, subs) = match id {
        "c1" => ("Category 1", vec!["c2"]),
        "c2" => ("Category 2", vec!["c3"]),
        _ => ("Category 3", vec!["c1"]),
    };
    let mut cat = json!({"__typename": "Category", "id": id, "name": name});
    if with_subs {
        cat["subCategories"] = subs.iter().map(|s| category(s, false)).collect();
    }
    cat
}

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let poor_plan = |_: &Value| json!({"__error": "a good plan answers from the category subgraph alone"});
    let products = json!([
        {"__typename": "Product", "id": "p1", "categories": [category("c1", true), category("c2", true)]},
        {"__typename": "Product", "id": "p2", "categories": [category("c3", true), category("c2", true)]}
    ]);
    let all = JsonSubgraph::new("all-products").entities(poor_plan);
    let cat = JsonSubgraph::new("category").query(json!({ "products": products })).entities(poor_plan);
    let sub = JsonSubgraph::new("subcategories").entities(poor_plan);
    start("nested-provides", vec![all, cat, sub]).await
}

#[tokio::test]
async fn provided_categories() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ products { id categories { id name } } }").await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"id": "p1", "categories": [{"id": "c1", "name": "Category 1"}, {"id": "c2", "name": "Category 2"}]},
            {"id": "p2", "categories": [{"id": "c3", "name": "Category 3"}, {"id": "c2", "name": "Category 2"}]}
        ]}})
    );
    assert_eq!(request_counts(&subs), vec![0, 1, 0]);
}

#[tokio::test]
async fn provided_sub_categories() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("{ products { id categories { id name subCategories { id name } } } }").await;
    assert_eq!(
        response,
        json!({"data": {"products": [
            {"id": "p1", "categories": [
                {"id": "c1", "name": "Category 1", "subCategories": [{"id": "c2", "name": "Category 2"}]},
                {"id": "c2", "name": "Category 2", "subCategories": [{"id": "c3", "name": "Category 3"}]}
            ]},
            {"id": "p2", "categories": [
                {"id": "c3", "name": "Category 3", "subCategories": [{"id": "c1", "name": "Category 1"}]},
                {"id": "c2", "name": "Category 2", "subCategories": [{"id": "c3", "name": "Category 3"}]}
            ]}
        ]}})
    );
    assert_eq!(request_counts(&subs), vec![0, 1, 0]);
}
