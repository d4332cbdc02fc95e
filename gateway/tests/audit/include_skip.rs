//! Audit scenario `include-skip`: `@include`/`@skip` on fields behind a chain
//! of `@requires` hops, with the condition coming from a variable's default.
//! Excluded branches must not reach the subgraphs at all.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::json;

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a").query(json!({"product": {"__typename": "Product", "id": "p3", "price": 699.99}}));
    let b = JsonSubgraph::new("b").entities(|rep| match rep["price"].as_f64() {
        Some(price) => json!({"__typename": "Product", "id": rep["id"], "isExpensive": price > 100.0}),
        None => json!({"__error": "price is missing"}),
    });
    let c = JsonSubgraph::new("c").entities(|rep| {
        let has = rep["isExpensive"].is_boolean();
        let needs = |v: bool| if has { json!(v) } else { json!({"__error": "isExpensive is missing"}) };
        json!({
            "__typename": "Product", "id": rep["id"],
            "include": needs(true), "skip": needs(true),
            "neverCalledInclude": {"__error": "neverCalledInclude should not be called"},
            "neverCalledSkip": {"__error": "neverCalledSkip should not be called"}
        })
    });
    start("include-skip", vec![a, b, c]).await
}

fn entity_calls(subs: &[common::TestSubgraph]) -> Vec<usize> {
    request_counts(&subs[1..])
}

#[tokio::test]
async fn include_false_by_default_skips_the_chain() {
    let (subs, gateway) = suite().await;
    let response = gateway
        .query("query ($bool: Boolean = false) { product { price neverCalledInclude @include(if: $bool) } }")
        .await;
    assert_eq!(response, json!({"data": {"product": {"price": 699.99}}}));
    assert_eq!(entity_calls(&subs), vec![0, 0]);
}

#[tokio::test]
async fn skip_true_by_default_skips_the_chain() {
    let (subs, gateway) = suite().await;
    let response =
        gateway.query("query ($bool: Boolean = true) { product { price neverCalledSkip @skip(if: $bool) } }").await;
    assert_eq!(response, json!({"data": {"product": {"price": 699.99}}}));
    assert_eq!(entity_calls(&subs), vec![0, 0]);
}

#[tokio::test]
async fn include_true_by_default_runs_the_chain() {
    let (subs, gateway) = suite().await;
    let response =
        gateway.query("query ($bool: Boolean = true) { product { price include @include(if: $bool) } }").await;
    assert_eq!(response, json!({"data": {"product": {"price": 699.99, "include": true}}}));
    assert_eq!(entity_calls(&subs), vec![1, 1]);
}

#[tokio::test]
async fn skip_false_by_default_runs_the_chain() {
    let (subs, gateway) = suite().await;
    let response = gateway.query("query ($bool: Boolean = false) { product { price skip @skip(if: $bool) } }").await;
    assert_eq!(response, json!({"data": {"product": {"price": 699.99, "skip": true}}}));
    assert_eq!(entity_calls(&subs), vec![1, 1]);
}

#[tokio::test]
async fn an_explicit_variable_overrides_the_default() {
    let (_subs, gateway) = suite().await;
    let response = gateway
        .query_vars(
            "query ($bool: Boolean = false) { product { price include @include(if: $bool) } }",
            json!({"bool": true}),
        )
        .await;
    assert_eq!(response, json!({"data": {"product": {"price": 699.99, "include": true}}}));
}
