//! Header propagation per subgraph and W3C trace context to subgraphs.

mod common;

use serde_json::json;

#[tokio::test]
async fn configured_headers_reach_only_their_subgraphs() {
    let shop = common::shop::Shop::start().await;
    let gateway = shop
        .gateway()
        .config(|c| {
            c.propagate_headers = vec!["x-tenant".into()];
            c.subgraph_propagate_headers = vec!["accounts=x-accounts-only".into()];
        })
        .start()
        .await;
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("x-tenant", "acme")
        .header("x-accounts-only", "secret")
        .header("x-not-forwarded", "nope")
        .body(json!({"query": "{ me { id } topProducts(first: 1) { upc } }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let accounts = shop.accounts.recorder.headers.lock().unwrap()[0].clone();
    let products = shop.products.recorder.headers.lock().unwrap()[0].clone();
    assert_eq!(accounts["x-tenant"], "acme");
    assert_eq!(accounts["x-accounts-only"], "secret");
    assert_eq!(products["x-tenant"], "acme");
    assert!(products.get("x-accounts-only").is_none());
    assert!(accounts.get("x-not-forwarded").is_none());
}

#[tokio::test]
async fn the_callers_trace_id_is_propagated_with_a_new_parent() {
    let (shop, gateway) = common::shop::shop().await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("traceparent", incoming)
        .body(json!({"query": "{ me { id } }"}).to_string())
        .send()
        .await
        .unwrap();
    let headers = shop.accounts.recorder.headers.lock().unwrap()[0].clone();
    let sent = headers["traceparent"].to_str().unwrap();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(parts[2], "00f067aa0ba902b7");
    assert_eq!(parts[3], "01");
}

#[tokio::test]
async fn a_trace_is_started_when_the_caller_has_none() {
    let (shop, gateway) = common::shop::shop().await;
    gateway.query("{ me { id } }").await;
    let headers = shop.accounts.recorder.headers.lock().unwrap()[0].clone();
    let sent = headers["traceparent"].to_str().unwrap();
    assert_eq!(sent.len(), 55, "{sent}");
    assert!(sent.starts_with("00-"));
}
