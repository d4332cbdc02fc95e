//! Entity fetches: chains across subgraphs, @requires, duplicates and nulls.

mod common;

use serde_json::json;

#[tokio::test]
async fn a_root_field_from_one_subgraph_is_answered() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ users { id name } }").await;
    assert_eq!(
        response,
        json!({"data": {"users": [{"id": "u1", "name": "Ada"}, {"id": "u2", "name": "Grace"}, {"id": "u3", "name": null}]},
               "errors": [{"message": "name service unavailable", "path": ["users", 2, "name"],
                           "extensions": {"code": "DOWNSTREAM_SERVICE_ERROR", "serviceName": "accounts"}}]})
    );
}

#[tokio::test]
async fn entities_are_fetched_from_a_second_subgraph() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ topProducts(first: 2) { name reviews { body } } }").await;
    assert_eq!(
        response,
        json!({"data": {"topProducts": [
            {"name": "Table", "reviews": [{"body": "Great table"}, {"body": "Wobbly"}]},
            {"name": "Chair", "reviews": [{"body": "Comfy"}, {"body": "Broken author"}]}
        ]}})
    );
}
