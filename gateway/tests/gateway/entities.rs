//! Entity fetches: chains across subgraphs, @requires, duplicates and nulls.

use crate::common;

use axum::response::IntoResponse;
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

#[tokio::test]
async fn an_entity_chain_runs_three_subgraphs_deep() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway
        .query(
            r#"{ topReviews(first: 1) { body author { name reviews { product { name shippingEstimate inStock } } } } }"#,
        )
        .await;
    assert_eq!(
        response,
        json!({"data": {"topReviews": [{
            "body": "Great table",
            "author": {"name": "Ada", "reviews": [
                {"product": {"name": "Table", "shippingEstimate": 0, "inStock": true}},
                {"product": {"name": "Chair", "shippingEstimate": 5, "inStock": false}}
            ]}
        }]}})
    );
    assert_eq!(shop.reviews.recorder.requests(), 1);
    assert_eq!(shop.accounts.recorder.requests(), 1);
    assert_eq!(shop.products.recorder.requests(), 1);
    assert_eq!(shop.inventory.recorder.requests(), 1);
}

#[tokio::test]
async fn requires_with_nested_fields_sends_them_in_the_representation() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ topProducts { upc shippingEstimate } }").await;
    assert_eq!(
        response,
        json!({"data": {"topProducts": [
            {"upc": "p1", "shippingEstimate": 0},
            {"upc": "p2", "shippingEstimate": 5},
            {"upc": "p3", "shippingEstimate": 2}
        ]}})
    );
    let bodies = shop.inventory.recorder.bodies();
    assert_eq!(
        bodies[0]["variables"]["representations"],
        json!([
            {"__typename": "Product", "upc": "p1", "price": 100, "dimensions": {"weight": 10.0}},
            {"__typename": "Product", "upc": "p2", "price": 50, "dimensions": {"weight": 2.5}},
            {"__typename": "Product", "upc": "p3", "price": 20, "dimensions": {"weight": 1.0}}
        ])
    );
}

#[tokio::test]
async fn duplicate_entities_are_sent_once_and_nulls_are_skipped() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ topReviews(first: 4) { id author { id name } } }").await;
    assert_eq!(
        response,
        json!({"data": {"topReviews": [
            {"id": "r1", "author": {"id": "u1", "name": "Ada"}},
            {"id": "r2", "author": {"id": "u2", "name": "Grace"}},
            {"id": "r3", "author": {"id": "u1", "name": "Ada"}},
            {"id": "r4", "author": null}
        ]}})
    );
    let bodies = shop.accounts.recorder.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies[0]["variables"]["representations"],
        json!([{"__typename": "User", "id": "u1"}, {"__typename": "User", "id": "u2"}])
    );
}

/// An accounts subgraph answering `_entities` by hand, with errors carrying
/// the index of the failing entity as Apollo subgraphs do (async-graphql
/// leaves the index out of entity error paths).
async fn accounts_with_indexed_errors() -> common::TestSubgraph {
    common::TestSubgraph::raw("accounts", |body: serde_json::Value| async move {
        let reps = body["variables"]["representations"].as_array().cloned().unwrap_or_default();
        let mut entities = Vec::new();
        let mut errors = Vec::new();
        for (i, rep) in reps.iter().enumerate() {
            match rep["id"].as_str() {
                Some("u3") => {
                    entities.push(json!({"name": null}));
                    errors.push(json!({"message": "name service unavailable", "path": ["_entities", i, "name"]}));
                }
                Some(id) => entities.push(json!({"name": format!("name of {id}")})),
                None => entities.push(serde_json::Value::Null),
            }
        }
        axum::Json(json!({"data": {"_entities": entities}, "errors": errors})).into_response()
    })
    .await
}

#[tokio::test]
async fn a_subgraph_error_mid_list_lands_at_the_clients_path() {
    let shop = common::shop::Shop::start().await;
    let accounts = accounts_with_indexed_errors().await;
    let gateway = shop.gateway_with(&[&accounts]).start().await;
    let response = gateway.query("{ topReviews { id author { name } } }").await;
    assert_eq!(
        response,
        json!({
            "data": {"topReviews": [
                {"id": "r1", "author": {"name": "name of u1"}},
                {"id": "r2", "author": {"name": "name of u2"}},
                {"id": "r3", "author": {"name": "name of u1"}},
                {"id": "r4", "author": null},
                {"id": "r5", "author": {"name": null}}
            ]},
            "errors": [{"message": "name service unavailable", "path": ["topReviews", 4, "author", "name"],
                        "extensions": {"code": "DOWNSTREAM_SERVICE_ERROR", "serviceName": "accounts"}}]
        })
    );
}

#[tokio::test]
async fn a_failed_non_null_entity_field_nulls_the_nearest_nullable_parent() {
    let (_shop, gateway) = common::shop::shop().await;
    // `email: String!` fails for u3, so u3's author object becomes null.
    let response = gateway.query("{ topReviews { id author { email } } }").await;
    let reviews = response["data"]["topReviews"].as_array().unwrap();
    assert_eq!(reviews[0], json!({"id": "r1", "author": {"email": "ada@example.com"}}));
    assert_eq!(reviews[4], json!({"id": "r5", "author": null}));
    assert_eq!(response["errors"][0]["message"], "email is locked");
}

#[tokio::test]
async fn provides_lets_the_providing_subgraph_answer_without_an_entity_fetch() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway.query("{ topReviews(first: 2) { author { username } } }").await;
    assert_eq!(
        response,
        json!({"data": {"topReviews": [{"author": {"username": "ada"}}, {"author": {"username": "grace"}}]}})
    );
    assert_eq!(shop.accounts.recorder.requests(), 0);
}
