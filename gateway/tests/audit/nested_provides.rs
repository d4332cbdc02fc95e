//! Audit scenario `nested-provides`: a root field provides a nested selection
//! (categories and their sub-categories, two levels of the same entity type),
//! so one fetch answers everything and no entity call is needed.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::{json, Value};

fn category(id: &str, with_subs: bool) -> Value {
    let (name, subs) = match id {
        "k1" => ("Kitchen", vec!["k2"]),
        "k2" => ("Garden", vec!["k3"]),
        _ => ("Garage", vec!["k1"]),
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
        {"__typename": "Product", "id": "p1", "categories": [category("k1", true), category("k2", true)]},
        {"__typename": "Product", "id": "p2", "categories": [category("k3", true), category("k2", true)]}
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
            {"id": "p1", "categories": [{"id": "k1", "name": "Kitchen"}, {"id": "k2", "name": "Garden"}]},
            {"id": "p2", "categories": [{"id": "k3", "name": "Garage"}, {"id": "k2", "name": "Garden"}]}
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
                {"id": "k1", "name": "Kitchen", "subCategories": [{"id": "k2", "name": "Garden"}]},
                {"id": "k2", "name": "Garden", "subCategories": [{"id": "k3", "name": "Garage"}]}
            ]},
            {"id": "p2", "categories": [
                {"id": "k3", "name": "Garage", "subCategories": [{"id": "k1", "name": "Kitchen"}]},
                {"id": "k2", "name": "Garden", "subCategories": [{"id": "k3", "name": "Garage"}]}
            ]}
        ]}})
    );
    assert_eq!(request_counts(&subs), vec![0, 1, 0]);
}
