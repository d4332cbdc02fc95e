//! Snapshots of the plans the gateway runs, and of responses, for the shop supergraph.

use crate::common;

async fn gateway() -> (common::shop::Shop, common::TestGateway) {
    common::shop::shop().await
}

#[tokio::test]
async fn plan_snapshots() {
    let (_shop, gateway) = gateway().await;
    let cases = [
        ("root_fetch", "{ me { id name } }"),
        ("entity_chain", "{ topReviews { body author { name reviews { product { name shippingEstimate } } } } }"),
        ("requires_nested", "{ topProducts { upc shippingEstimate } }"),
        (
            "union_across_subgraphs",
            r#"{ search(term: "x") { ... on Product { name inStock } ... on Book { title } } }"#,
        ),
        ("provides", "{ topReviews { author { username } } }"),
        ("condition", "query($s: Boolean!) { topProducts { upc inStock @include(if: $s) } }"),
        ("mutation", r#"mutation { addReview(upc: "p1", body: "b") { id product { name } } }"#),
    ];
    for (name, query) in cases {
        insta::assert_snapshot!(name, gateway.plan(query), query);
    }
}

#[tokio::test]
async fn response_snapshots() {
    let (_shop, gateway) = gateway().await;
    let cases = [
        (
            "three_deep",
            "{ topReviews(first: 2) { body author { name reviews { product { name shippingEstimate inStock } } } } }",
        ),
        ("errors_and_nulls", "{ topReviews { id author { name email } } }"),
        (
            "union",
            r#"{ search(term: "x") { __typename ... on Product { upc reviews { author { username } } } ... on Book { title } } }"#,
        ),
    ];
    for (name, query) in cases {
        let response = gateway.query(query).await;
        insta::assert_json_snapshot!(name, response, query);
    }
}
