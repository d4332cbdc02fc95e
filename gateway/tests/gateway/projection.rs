//! The response has the client's shape: its keys, its order, nothing extra.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn fields_come_back_in_the_clients_order_with_aliases() {
    let (_shop, gateway) = common::shop::shop().await;
    let text = gateway.query_text("{ b: topProducts(first: 1) { z: name upc inStock } a: me { name id } }").await;
    assert_eq!(text, r#"{"data":{"b":[{"z":"Table","upc":"p1","inStock":true}],"a":{"name":"Ada","id":"u1"}}}"#);
}

#[tokio::test]
async fn keys_and_typenames_the_plan_added_are_not_returned() {
    let (_shop, gateway) = common::shop::shop().await;
    let text = gateway.query_text("{ topProducts(first: 1) { shippingEstimate } }").await;
    assert_eq!(text, r#"{"data":{"topProducts":[{"shippingEstimate":0}]}}"#);
}

#[tokio::test]
async fn the_same_field_under_two_aliases_with_different_arguments() {
    let (_shop, gateway) = common::shop::shop().await;
    let response =
        gateway.query("{ one: topProducts(first: 1) { upc } two: topProducts(first: 2) { upc name } }").await;
    assert_eq!(
        response,
        json!({"data": {
            "one": [{"upc": "p1"}],
            "two": [{"upc": "p1", "name": "Table"}, {"upc": "p2", "name": "Chair"}]
        }})
    );
}

#[tokio::test]
async fn typename_is_answered_at_the_root_and_inside_objects() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ __typename t: __typename }").await;
    assert_eq!(response, json!({"data": {"__typename": "Query", "t": "Query"}}));
    assert_eq!(shop.requests(), 0, "a __typename-only query needs no subgraph");
    let response = gateway.query("{ me { __typename } }").await;
    assert_eq!(response, json!({"data": {"me": {"__typename": "User"}}}));
}

#[tokio::test]
async fn overlapping_selections_from_fragments_are_merged() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ me { id ...A } me { name } } fragment A on User { reviews { body } id }").await;
    assert_eq!(
        response,
        json!({"data": {"me": {"id": "u1", "reviews": [{"body": "Great table"}, {"body": "Comfy"}], "name": "Ada"}}})
    );
}
