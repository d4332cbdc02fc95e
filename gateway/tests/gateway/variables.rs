//! Variables: coerced against their declared types, defaults applied, and
//! sent to a subgraph only when its fetch uses them.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn variables_are_sent_only_to_the_fetches_that_use_them() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway
        .query_vars(
            "query($n: Int, $id: ID!) { topProducts(first: $n) { upc } user(id: $id) { name } }",
            json!({"n": 1, "id": "u2"}),
        )
        .await;
    assert_eq!(response, json!({"data": {"topProducts": [{"upc": "p1"}], "user": {"name": "Grace"}}}));
    assert_eq!(shop.products.recorder.bodies()[0]["variables"], json!({"n": 1}));
    assert_eq!(shop.accounts.recorder.bodies()[0]["variables"], json!({"id": "u2"}));
}

#[tokio::test]
async fn a_missing_required_variable_is_bad_user_input() {
    let (shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway.post_json(json!({"query": "query($id: ID!) { user(id: $id) { name } }"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn a_variable_of_the_wrong_type_is_bad_user_input() {
    let (_shop, gateway) = common::shop::shop().await;
    for variables in [json!({"n": "one"}), json!({"n": 1.5}), json!({"n": 9_999_999_999_i64}), json!({"n": {}})] {
        let (status, body) = gateway
            .post_json(json!({"query": "query($n: Int) { topProducts(first: $n) { upc } }", "variables": variables}))
            .await;
        assert_eq!(status, 400, "{variables}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn default_values_apply_when_a_variable_is_absent() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway.query("query($n: Int = 2) { topProducts(first: $n) { upc } }").await;
    assert_eq!(response, json!({"data": {"topProducts": [{"upc": "p1"}, {"upc": "p2"}]}}));
}

#[tokio::test]
async fn skip_and_include_with_variables_choose_fetches() {
    let (shop, gateway) = common::shop::shop().await;
    let query = "query($withStock: Boolean!, $noName: Boolean!) {
        topProducts(first: 1) { upc name @skip(if: $noName) inStock @include(if: $withStock) }
    }";
    let response = gateway.query_vars(query, json!({"withStock": false, "noName": true})).await;
    assert_eq!(response, json!({"data": {"topProducts": [{"upc": "p1"}]}}));
    assert_eq!(shop.inventory.recorder.requests(), 0, "the condition skipped the inventory fetch");

    let response = gateway.query_vars(query, json!({"withStock": true, "noName": false})).await;
    assert_eq!(response, json!({"data": {"topProducts": [{"upc": "p1", "name": "Table", "inStock": true}]}}));
    assert_eq!(shop.inventory.recorder.requests(), 1);
}
