//! Audit scenario `union-overfetching`: both members of the union
//! `Query.review` have a `product`, at the same response path. The fields
//! asked under `AnonymousReview` live in subgraph `b`, those under
//! `UserReview` in `c` and `d`; the review is an `AnonymousReview`, so only
//! `b` may be asked for the product, and `c` and `d` (which fail every
//! entity call) must not be called at all.

use crate::{audit_support, common};

use audit_support::{request_counts, start, JsonSubgraph};
use serde_json::json;

async fn suite() -> (Vec<common::TestSubgraph>, common::TestGateway) {
    let a = JsonSubgraph::new("a")
        .query(json!({
            "review": {"__typename": "AnonymousReview", "product": {"__typename": "Product", "id": "1"}}
        }))
        .possible("Review", &["AnonymousReview", "UserReview"]);
    let b = JsonSubgraph::new("b").entities(|rep| {
        let id = rep["id"].as_str().unwrap_or_default();
        json!({"__typename": "Product", "id": id, "b": format!("A for {id}")})
    });
    let c = JsonSubgraph::new("c").entities(|_| json!({"__error": "Product.c is not needed"}));
    let d = JsonSubgraph::new("d").entities(|_| json!({"__error": "Product.d is not needed"}));
    start("union-overfetching", vec![a, b, c, d]).await
}

#[tokio::test]
async fn only_the_returned_members_product_fields_are_fetched() {
    let (subs, gateway) = suite().await;
    let response = gateway
        .query(
            "{ review { \
               ... on AnonymousReview { product { b } } \
               ... on UserReview { product { c d } } } }",
        )
        .await;
    assert_eq!(response, json!({"data": {"review": {"product": {"b": "A for 1"}}}}));
    assert_eq!(request_counts(&subs), vec![1, 1, 0, 0], "requests to a, b, c, d");
}
