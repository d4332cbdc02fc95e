//! Unions and interfaces whose members are completed by other subgraphs.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn union_members_are_completed_from_other_subgraphs() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway
        .query(
            r#"{ search(term: "x") {
                __typename
                ... on Product { name inStock reviews { body } }
                ... on Book { title }
            } }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"search": [
            {"__typename": "Product", "name": "Table", "inStock": true,
             "reviews": [{"body": "Great table"}, {"body": "Wobbly"}]},
            {"__typename": "Book", "title": "Dune"},
            {"__typename": "Product", "name": "Chair", "inStock": false,
             "reviews": [{"body": "Comfy"}, {"body": "Broken author"}]}
        ]}})
    );
    // Only products are sent to inventory and reviews.
    let reps = &shop.inventory.recorder.bodies()[0]["variables"]["representations"];
    assert_eq!(reps, &json!([{"__typename": "Product", "upc": "p1"}, {"__typename": "Product", "upc": "p2"}]));
}

#[tokio::test]
async fn typename_is_not_returned_unless_asked_for() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway.query(r#"{ search(term: "x") { ... on Book { title } } }"#).await;
    assert_eq!(response, json!({"data": {"search": [{}, {"title": "Dune"}, {}]}}));
}

#[tokio::test]
async fn named_fragments_on_union_members_are_applied_by_type() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway
        .query(
            r#"query { search(term: "x") { ...P ...B } }
               fragment P on Product { upc shippingEstimate }
               fragment B on Book { isbn }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"search": [
            {"upc": "p1", "shippingEstimate": 0},
            {"isbn": "b1"},
            {"upc": "p2", "shippingEstimate": 5}
        ]}})
    );
}
