//! Header propagation per subgraph and W3C trace context to subgraphs.

use crate::common;

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

#[tokio::test]
async fn subgraphs_see_the_client_address_appended_to_x_forwarded_for_unless_switched_off() {
    let shop = common::shop::Shop::start().await;
    let on = shop.gateway().start().await;
    let off = shop.gateway().config(|c| c.forwarded_for = false).start().await;
    let ask = |gateway: &common::TestGateway, forwarded: Option<&'static str>| {
        let mut request = gateway
            .http
            .post(gateway.graphql_url())
            .header("content-type", "application/json")
            .body(json!({"query": "{ me { id } }"}).to_string());
        if let Some(forwarded) = forwarded {
            request = request.header("x-forwarded-for", forwarded);
        }
        request.send()
    };
    let recorded = |index: usize| shop.accounts.recorder.headers.lock().unwrap()[index].get("x-forwarded-for").cloned();

    assert_eq!(ask(&on, None).await.unwrap().status(), 200);
    assert_eq!(recorded(0).unwrap(), "127.0.0.1");
    // A proxy before the gateway keeps its entries in front; the gateway's own
    // observation comes last, where the auth subgraph's hop count looks.
    assert_eq!(ask(&on, Some("203.0.113.7")).await.unwrap().status(), 200);
    assert_eq!(recorded(1).unwrap(), "203.0.113.7, 127.0.0.1");
    assert_eq!(ask(&off, Some("203.0.113.7")).await.unwrap().status(), 200);
    assert_eq!(recorded(2), None, "switched off, nothing is forwarded");
}
