//! GraphQL over HTTP: methods, media types, status codes, probes.

use crate::common;

use serde_json::{json, Value};

#[tokio::test]
async fn a_parse_error_is_a_400_with_graphql_response_json() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway.post_json(json!({"query": "{ me { "})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn a_validation_error_is_a_400_with_graphql_response_json_and_200_with_json() {
    let (_shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway.post_json(json!({"query": "{ nope }"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");

    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(json!({"query": "{ nope }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn the_response_media_type_follows_accept() {
    let (_shop, gateway) = common::shop::shop().await;
    for (accept, expected) in [
        ("application/graphql-response+json", "application/graphql-response+json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
    ] {
        let response = gateway
            .http
            .post(gateway.graphql_url())
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(json!({"query": "{ __typename }"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(expected), "{accept}");
    }
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("accept", "text/csv")
        .body(json!({"query": "{ __typename }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let (shop, gateway) = common::shop::shop().await;
    let response = gateway
        .http
        .get(gateway.graphql_url())
        .query(&[("query", "query($n: Int) { topProducts(first: $n) { upc } }"), ("variables", r#"{"n": 1}"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"data": {"topProducts": [{"upc": "p1"}]}}));

    let response = gateway
        .http
        .get(gateway.graphql_url())
        .query(&[("query", r#"mutation { addReview(upc: "p1", body: "x") { id } }"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(shop.reviews.recorder.requests(), 0);
}

#[tokio::test]
async fn a_non_json_content_type_is_refused() {
    let (_shop, gateway) = common::shop::shop().await;
    let response = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "text/plain")
        .body(json!({"query": "{ __typename }"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn batching_is_off_by_default_and_works_when_enabled() {
    let (shop, gateway) = common::shop::shop().await;
    let (status, body) = gateway.post_json(json!([{"query": "{ __typename }"}])).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");

    let batching = shop.gateway().config(|c| c.batching = true).start().await;
    let (status, body) = batching.post_json(json!([{"query": "{ __typename }"}, {"query": "{ me { id } }"}])).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!([{"data": {"__typename": "Query"}}, {"data": {"me": {"id": "u1"}}}]));
}

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let (_shop, gateway) = common::shop::shop().await;
    gateway.query("{ me { id } }").await;
    let health = gateway.http.get(format!("{}/health", gateway.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = gateway.http.get(format!("{}/ready", gateway.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = gateway.http.get(format!("{}/metrics", gateway.base)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("gateway_requests_total"), "{text}");
    // Latencies are histograms with buckets, which add up across instances.
    assert!(text.contains("gateway_request_duration_seconds_bucket{le=\"0.0005\"}"), "{text}");
    assert!(text.contains("gateway_request_duration_seconds_bucket{le=\"+Inf\"}"), "{text}");
    // Subgraph fetches are counted and timed per subgraph.
    assert!(text.contains("gateway_subgraph_requests_total{subgraph=\"accounts\",outcome=\"ok\"}"), "{text}");
    assert!(
        text.contains("gateway_subgraph_request_duration_seconds_bucket{subgraph=\"accounts\",le=\"10\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn ready_is_503_until_a_supergraph_loads() {
    let gateway = common::GatewayBuilder::new("this is not a supergraph").start().await;
    let ready = gateway.http.get(format!("{}/ready", gateway.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health = gateway.http.get(format!("{}/health", gateway.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (status, body) = gateway.post_json(json!({"query": "{ __typename }"})).await;
    assert_eq!(status, 503);
    assert_eq!(body["errors"][0]["extensions"]["code"], "SUPERGRAPH_NOT_READY");
}

#[tokio::test]
async fn graphiql_is_served_to_browsers_and_can_be_switched_off() {
    let (shop, gateway) = common::shop::shop().await;
    let page = gateway.http.get(gateway.graphql_url()).header("accept", "text/html").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("GraphiQL"));
    assert!(!html.contains("https://") && !html.contains("http://"), "nothing from another origin: {html}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // Absent only when the gateway was built without Node.js (that page says how to build GraphiQL).
    let script = html.split("src=\"graphiql/assets/").nth(1).and_then(|s| s.split('"').next());
    if let Some(script) = script {
        assert!(csp.contains("script-src 'self'"), "{csp}");
        let asset = gateway.http.get(format!("{}/graphiql/assets/{script}", gateway.base)).send().await.unwrap();
        assert_eq!(asset.status(), 200);
        assert!(asset.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(asset.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
        let missing = gateway.http.get(format!("{}/graphiql/assets/nope.js", gateway.base)).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    }

    let off = shop.gateway().config(|c| c.graphiql = Some(false)).start().await;
    let page = off.http.get(off.graphql_url()).header("accept", "text/html").send().await.unwrap();
    assert_ne!(page.status(), 200);
    if let Some(script) = script {
        let asset = off.http.get(format!("{}/graphiql/assets/{script}", off.base)).send().await.unwrap();
        assert_eq!(asset.status(), 404);
    }
}

#[tokio::test]
async fn an_admin_listener_takes_metrics_off_the_public_port() {
    let shop = common::shop::Shop::start().await;
    let gateway = shop.gateway().config(|c| c.admin_listen = Some("127.0.0.1:0".parse().unwrap())).start().await;
    let admin = gateway.admin_base.clone().expect("an admin listener");
    let get = |url: String| {
        let http = gateway.http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("{admin}/metrics")).await, 200);
    assert_eq!(get(format!("{admin}/health")).await, 200);
    assert_eq!(get(format!("{admin}/ready")).await, 200);
    // The public port keeps the probes a load balancer needs, not the metrics.
    assert_eq!(get(format!("{}/metrics", gateway.base)).await, 404);
    assert_eq!(get(format!("{}/health", gateway.base)).await, 200);
    assert_eq!(get(format!("{}/ready", gateway.base)).await, 200);
    // Nor does the admin port answer GraphQL.
    assert_eq!(get(format!("{admin}/graphql?query=%7B__typename%7D")).await, 404);
}
