//! One failing subgraph yields partial data plus errors, not a failed request.

use crate::common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/graphql")
}

#[tokio::test]
async fn an_unreachable_subgraph_leaves_the_rest_of_the_data() {
    let shop = common::shop::Shop::start().await;
    let gateway = common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph(&shop.accounts)
        .subgraph(&shop.products)
        .subgraph_url("inventory", &closed_port_url().await)
        .subgraph(&shop.reviews)
        .start()
        .await;
    let (status, body) = gateway.post_json(json!({"query": "{ topProducts(first: 2) { name inStock } }"})).await;
    assert_eq!(status, 200);
    // `inStock: Boolean!` nulls each product, `[Product!]!` nulls the list, and
    // the non-null root field nulls `data` itself.
    assert_eq!(body["data"], json!(null));
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
    assert_eq!(error["extensions"]["serviceName"], "inventory");
}

#[tokio::test]
async fn nullable_fields_from_a_failed_subgraph_are_null_and_siblings_survive() {
    let shop = common::shop::Shop::start().await;
    let gateway = common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph_url("accounts", &closed_port_url().await)
        .subgraph(&shop.products)
        .subgraph(&shop.inventory)
        .subgraph(&shop.reviews)
        .start()
        .await;
    let body = gateway.query("{ topReviews(first: 2) { body author { name } } topProducts(first: 1) { name } }").await;
    assert_eq!(
        body["data"],
        json!({
            "topReviews": [{"body": "Great table", "author": {"name": null}}, {"body": "Wobbly", "author": {"name": null}}],
            "topProducts": [{"name": "Table"}]
        })
    );
    assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
    assert!(!body["errors"][0]["message"].as_str().unwrap().contains("127.0.0.1"), "internal details leaked");
}

#[tokio::test]
async fn a_subgraph_answering_500_or_junk_is_reported_per_subgraph() {
    let shop = common::shop::Shop::start().await;
    let broken = common::TestSubgraph::raw("inventory", |_| async {
        (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
    })
    .await;
    let junk = common::TestSubgraph::raw("accounts", |_| async { "not json at all".into_response() }).await;
    let gateway = shop.gateway_with(&[&junk, &broken]).start().await;
    let body = gateway.query("{ me { id } topProducts(first: 1) { name } }").await;
    assert_eq!(body["data"], json!({"me": null, "topProducts": [{"name": "Table"}]}));
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUBGRAPH_RESPONSE_INVALID");

    let body = gateway.query("{ product(upc: \"p1\") { name shippingEstimate } }").await;
    assert_eq!(body["data"], json!({"product": null}));
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUBGRAPH_REQUEST_FAILED");
}

#[tokio::test]
async fn hostile_subgraph_bodies_are_reported_as_invalid_answers() {
    let shop = common::shop::Shop::start().await;
    const INVALID: &str = "SUBGRAPH_RESPONSE_INVALID";
    let bodies: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unbalanced nesting", "[".repeat(100_000).into_bytes(), INVALID),
        (
            "deep nesting",
            format!(r#"{{"data":{{"me":{}1{}}}}}"#, "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            INVALID,
        ),
        ("invalid UTF-8", b"{\"data\":{\"me\":{\"id\":\"\xff\xfe\"}}}".to_vec(), INVALID),
        ("trailing garbage", br#"{"data":{"me":{"id":"1"}}} and more"#.to_vec(), INVALID),
        ("data of the wrong type", br#"{"data":"not an object"}"#.to_vec(), INVALID),
        ("errors of the wrong type", br#"{"data":null,"errors":"boom"}"#.to_vec(), INVALID),
        ("an unterminated string", br#"{"data":{"me":{"id":"1"#.to_vec(), INVALID),
        (
            "errors nested past any limit",
            format!(r#"{{"data":null,"errors":{}"#, "[".repeat(100_000)).into_bytes(),
            INVALID,
        ),
        // As deep as the parser allows: a well-formed answer whose error
        // is not an object, reported as the subgraph's error.
        (
            "deeply nested errors",
            format!(r#"{{"data":null,"errors":{}{}}}"#, "[".repeat(250), "]".repeat(250)).into_bytes(),
            "DOWNSTREAM_SERVICE_ERROR",
        ),
    ];
    for (what, body, code) in bodies {
        let hostile = common::TestSubgraph::raw("accounts", move |_| {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response() }
        })
        .await;
        let gateway = shop.gateway_with(&[&hostile]).start().await;
        let body = gateway.query("{ me { id } topProducts(first: 1) { name } }").await;
        assert_eq!(body["data"], json!({"me": null, "topProducts": [{"name": "Table"}]}), "{what}");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{what}: {body}");
    }
}

#[tokio::test]
async fn a_slow_subgraph_times_out_by_its_own_timeout() {
    let shop = common::shop::Shop::start().await;
    let slow = common::TestSubgraph::raw("accounts", |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "never".into_response()
    })
    .await;
    let gateway = common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph(&slow)
        .subgraph(&shop.products)
        .subgraph(&shop.inventory)
        .subgraph(&shop.reviews)
        .config(|c| c.subgraph_timeouts = vec!["accounts=100".into()])
        .start()
        .await;
    let body = gateway.query("{ me { id } topProducts(first: 1) { upc } }").await;
    assert_eq!(body["data"], json!({"me": null, "topProducts": [{"upc": "p1"}]}));
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUBGRAPH_TIMEOUT");
}

#[tokio::test]
async fn a_null_for_a_non_null_root_field_nulls_data_with_an_error() {
    let broken = common::TestSubgraph::raw("products", |_| async {
        axum::Json(json!({"data": {"topProducts": null}})).into_response()
    })
    .await;
    let shop = common::shop::Shop::start().await;
    let gateway = common::GatewayBuilder::new(common::fixture("shop/supergraph.graphql"))
        .subgraph(&shop.accounts)
        .subgraph(&broken)
        .subgraph(&shop.inventory)
        .subgraph(&shop.reviews)
        .start()
        .await;
    let body = gateway.query("{ topProducts { upc } }").await;
    assert_eq!(body["data"], json!(null));
    assert_eq!(body["errors"][0]["path"], json!(["topProducts"]));
    assert_eq!(body["errors"][0]["extensions"]["code"], "NON_NULL_VIOLATION");
}

#[tokio::test]
async fn a_subgraphs_rate_limit_reaches_the_client_as_retry_after() {
    let shop = common::shop::Shop::start().await;
    let limited = common::TestSubgraph::raw("accounts", |_| async {
        axum::Json(json!({
            "data": { "me": null },
            "errors": [
                { "message": "too many attempts", "path": ["me"], "extensions": { "code": "RATE_LIMITED", "retryAfter": 42 } },
                { "message": "and another", "extensions": { "code": "RATE_LIMITED", "retryAfter": 7 } }
            ]
        }))
        .into_response()
    })
    .await;
    let gateway = shop.gateway_with(&[&limited]).start().await;
    let response =
        gateway.http.post(gateway.graphql_url()).json(&json!({ "query": "{ me { id } }" })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["retry-after"], "42", "the longest wait");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // An answer without such an error has no header.
    let plain = gateway
        .http
        .post(gateway.graphql_url())
        .json(&json!({ "query": "{ topProducts(first: 1) { name } }" }))
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("retry-after").is_none());
}
