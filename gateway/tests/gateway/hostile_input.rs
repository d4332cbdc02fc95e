//! Hostile input gets a clear error, never a crash or a hang.

use crate::common;

use serde_json::json;

#[tokio::test]
async fn a_deeply_nested_query_is_refused() {
    let (shop, gateway) = common::shop::shop().await;
    let query = format!("{}{}", "{ me { reviews { author ".repeat(2_000), "} } }".repeat(2_000));
    let (status, body) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
    // Depth within the bracket budget but over the selection limit.
    let query = format!("{{ me {} id {} }}", "{ reviews { author ".repeat(12), "} } ".repeat(12));
    let (status, body) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn a_ten_megabyte_body_is_refused() {
    let (_shop, gateway) = common::shop::shop().await;
    let body = format!(r#"{{"query": "{{ me {{ id }} }}", "pad": "{}"}}"#, "x".repeat(10 * 1024 * 1024));
    let response =
        gateway.http.post(gateway.graphql_url()).header("content-type", "application/json").body(body).send().await;
    // The gateway may answer 413 or close the connection mid-upload; both
    // refuse. A 413 ends its connection, and says so, so the same pooled
    // client is served again on a new one.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()["connection"], "close");
    }
    assert_eq!(gateway.query("{ __typename }").await, json!({"data": {"__typename": "Query"}}));
}

#[tokio::test]
async fn thousands_of_aliases_are_refused() {
    let (shop, gateway) = common::shop::shop().await;
    let fields: String = (0..5_000).map(|i| format!("a{i}: __typename ")).collect();
    let (status, body) = gateway.post_json(json!({ "query": format!("{{ {fields} }}") })).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "LIMIT_EXCEEDED");
    assert_eq!(shop.requests(), 0);
}

#[tokio::test]
async fn thousands_of_repeated_fields_stay_within_the_token_limit_or_are_refused() {
    let (_shop, gateway) = common::shop::shop().await;
    let fields = "me { id } ".repeat(5_000);
    let (status, body) = gateway.post_json(json!({ "query": format!("{{ {fields} }}") })).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let (_shop, gateway) = common::shop::shop().await;
    let mut body = br#"{"query": "{ me { id } }", "x": ""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    body.extend_from_slice(br#""}"#);
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn wrong_json_types_are_400s() {
    let (_shop, gateway) = common::shop::shop().await;
    for body in [
        json!({"query": 42}),
        json!({"query": "{ me { id } }", "variables": [1, 2]}),
        json!({"query": "{ me { id } }", "operationName": 7}),
        json!({"query": "{ me { id } }", "extensions": "x"}),
        json!("just a string"),
        json!({}),
    ] {
        let (status, response) = gateway.post_json(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {response}");
        assert_eq!(response["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    }
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_unknown_operation_name_is_a_clear_error() {
    let (shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway
        .post_json(json!({"query": "query A { me { id } } query B { me { name } }", "operationName": "C"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "OPERATION_NOT_FOUND");
    let (status, body) = gateway.post_json(json!({"query": "query A { me { id } } query B { me { name } }"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "OPERATION_NOT_FOUND");
    assert_eq!(shop.requests(), 0);
    let (status, body) = gateway
        .post_json(json!({"query": "query A { me { id } } query B { me { name } }", "operationName": "B"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"data": {"me": {"name": "Ada"}}}));
}

#[tokio::test]
async fn fragment_cycles_are_validation_errors() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway
        .post_json(json!({"query": "{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn a_self_spreading_fragment_found_by_the_fuzzer_is_refused() {
    let (_shop, gateway) = common::shop::shop().await;
    let query = include_str!("../../../fuzz/seeds/prepare/regression-fragment-cycle-stack-overflow.graphql");
    let (status, body) = gateway.post_json(json!({ "query": query })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        gateway.post_json(json!({"query": "{ me { ...F } } fragment F on User { reviews { author { ...F } } }"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
}

/// The gateway with tight listener limits, and its address.
async fn gateway_with_short_timeouts() -> (common::shop::Shop, common::TestGateway, std::net::SocketAddr) {
    let shop = common::shop::Shop::start().await;
    let gateway = shop
        .gateway()
        .config(|c| {
            c.listener.header_read_timeout_ms = 300;
            c.listener.body_read_timeout_ms = 300;
            c.listener.idle_timeout_ms = 400;
        })
        .start()
        .await;
    let address = gateway.graphql_url().trim_start_matches("http://").split('/').next().unwrap().parse().unwrap();
    (shop, gateway, address)
}

#[tokio::test]
async fn slow_and_idle_clients_are_let_go_and_others_are_served_meanwhile() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_shop, gateway, address) = gateway_with_short_timeouts().await;
    let patience = std::time::Duration::from_secs(10);

    // Half a head: closed without an answer.
    let mut half_head = tokio::net::TcpStream::connect(address).await.unwrap();
    half_head.write_all(b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-ty").await.unwrap();
    // Half a body: answered 408 with REQUEST_TIMEOUT.
    let mut half_body = tokio::net::TcpStream::connect(address).await.unwrap();
    half_body
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":")
        .await
        .unwrap();
    // Connected, silent: closed once idle.
    let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();

    // Meanwhile everyone else is served.
    assert_eq!(gateway.query("{ __typename }").await, json!({"data": {"__typename": "Query"}}));

    let mut out = Vec::new();
    tokio::time::timeout(patience, half_head.read_to_end(&mut out)).await.expect("the half head was cut off").ok();
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    let mut out = vec![0u8; 4096];
    let n =
        tokio::time::timeout(patience, half_body.read(&mut out)).await.expect("the half body was answered").unwrap();
    let answer = String::from_utf8_lossy(&out[..n]);
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("REQUEST_TIMEOUT"), "{answer}");
    let mut out = Vec::new();
    tokio::time::timeout(patience, silent.read_to_end(&mut out)).await.expect("the silent connection was closed").ok();
    assert!(out.is_empty());
}

#[tokio::test]
async fn large_distinct_documents_stay_within_the_operation_cache_bytes() {
    const BOUND: u64 = 2 * 1024 * 1024;
    let shop = common::shop::Shop::start().await;
    let gateway = shop.gateway().config(|c| c.plan_cache_bytes = BOUND).start().await;
    let padding = "#".repeat(1_500_000);
    for i in 0..40 {
        // 1.5 MB of comment: nothing of it is kept.
        let query = format!("{padding}\n{{ topProducts(first: {i}) {{ upc }} }}");
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 200, "{body}");
        // 1.5 MB of literal: kept in the parsed operation, so it weighs that
        // much and cannot push the cache past its bound.
        let query = format!(
            "{{ __typename a{i}: topProducts(first: 1) {{ upc }} b: __type(name: \"{}\") {{ name }} }}",
            "x".repeat(1_500_000)
        );
        let (status, body) = gateway.post_json(json!({ "query": query })).await;
        assert_eq!(status, 200, "{body}");
    }
    let supergraph = gateway.gateway.store.current().expect("loaded");
    supergraph.operations.run_pending_tasks();
    supergraph.plans.run_pending_tasks();
    assert!(supergraph.operations.weighted_size() <= BOUND, "{} bytes", supergraph.operations.weighted_size());
    assert!(supergraph.plans.weighted_size() <= BOUND);
    // The comment-padded documents are all cached, at a kilobyte or two each,
    // and the heavy ones did not flush them out.
    assert_eq!(supergraph.operations.entry_count(), 40);
}

#[tokio::test]
async fn a_request_larger_than_its_subgraph_takes_is_refused_at_the_gateway_by_name() {
    let shop = common::shop::Shop::start().await;
    let gateway = shop.gateway().config(|c| c.subgraph_max_request_bytes = vec!["products=400".into()]).start().await;
    let (status, body) =
        gateway.post_json(json!({ "query": "query($u: String!) { product(upc: $u) { name } }", "variables": { "u": "x".repeat(1_000) } })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!({ "product": null }));
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "LIMIT_EXCEEDED", "{body}");
    assert_eq!(error["extensions"]["serviceName"], "products");
    assert!(error["message"].as_str().unwrap().contains("more than the 400 it accepts"), "{body}");
    assert_eq!(shop.products.recorder.requests(), 0, "nothing was sent");
    // Under the limit the same query goes through.
    let (_, body) = gateway.post_json(json!({ "query": "{ product(upc: \"p1\") { name } }" })).await;
    assert_eq!(body["data"]["product"]["name"], "Table", "{body}");
}
