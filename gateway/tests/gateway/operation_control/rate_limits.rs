//! Gateway rate limits: per caller and per operation, in memory and shared
//! by two gateways through Redis; 429 with `Retry-After` before any
//! subgraph call.

use gatehouse_common::settings::SharedSettings;
use gatehouse_gateway::rate_limit::RateLimitStore;
use serde_json::{json, Value};

use crate::common::shop::Shop;
use crate::common::TestGateway;

/// POSTs `query` and returns the status, `Retry-After` and body.
async fn send(gateway: &TestGateway, query: &str, token: Option<&str>) -> (u16, Option<u64>, Value) {
    let mut request = gateway
        .http
        .post(gateway.graphql_url())
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(json!({ "query": query }).to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    (status, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn a_caller_over_its_limit_gets_429_with_retry_after_and_no_subgraph_call() {
    let shop = Shop::start().await;
    let gateway = shop
        .gateway()
        .config(|c| {
            c.rate_limits.per_caller = 3;
            c.rate_limits.window_secs = 30;
        })
        .start()
        .await;
    for _ in 0..3 {
        let (status, _, body) = send(&gateway, "{ me { id } }", None).await;
        assert_eq!(status, 200, "{body}");
    }
    let calls = shop.requests();
    let (status, retry_after, body) = send(&gateway, "{ me { id } }", None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // One request every 10 s: the next one is allowed within that.
    let seconds = retry_after.expect("a Retry-After header");
    assert!((1..=10).contains(&seconds), "Retry-After: {seconds}");
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], seconds);
    assert_eq!(shop.requests(), calls, "a refused request calls no subgraph");
}

#[tokio::test]
async fn operation_limits_count_the_operation_that_runs() {
    let shop = Shop::start().await;
    let gateway = shop.gateway().config(|c| c.rate_limits.per_operation = vec!["Me=2".into()]).start().await;
    for _ in 0..2 {
        assert_eq!(send(&gateway, "query Me { me { id } }", None).await.0, 200);
    }
    // The same operation, whether or not the request names it.
    let (status, _, body) = send(&gateway, "query Me { me { id } }", None).await;
    assert_eq!((status, &body["errors"][0]["extensions"]["code"]), (429, &json!("RATE_LIMITED")));
    let two = "query Other { me { id } } query Me { me { name } }";
    let (status, body) = gateway.post_json(json!({ "query": two, "operationName": "Other" })).await;
    assert_eq!(status, 200, "Other runs, not Me: {body}");
    let (status, body) = gateway.post_json(json!({ "query": two, "operationName": "Me" })).await;
    assert_eq!(status, 429, "Me runs: {body}");
    let (status, ..) = send(&gateway, "query Top { topProducts(first: 1) { upc } }", None).await;
    assert_eq!(status, 200, "other operations have no limit");
}

#[tokio::test]
async fn authenticated_callers_have_a_budget_each() {
    let shop = Shop::start().await;
    let jwks = crate::common::auth::jwks_endpoint().await;
    let gateway = shop
        .gateway()
        .shared(SharedSettings::for_tests(&format!("gw-rl:{}:", uuid::Uuid::new_v4().simple()), "unused", "unused"))
        .config(move |c| {
            crate::common::auth::verify_tokens(c, jwks);
            c.rate_limits.per_caller = 2;
        })
        .start()
        .await;
    let (ann, _) = crate::common::auth::token("user");
    let (bob, _) = crate::common::auth::token("user");
    for _ in 0..2 {
        assert_eq!(send(&gateway, "{ topProducts { upc } }", Some(&ann)).await.0, 200);
    }
    assert_eq!(send(&gateway, "{ topProducts { upc } }", Some(&ann)).await.0, 429);
    assert_eq!(send(&gateway, "{ topProducts { upc } }", Some(&bob)).await.0, 200, "another user has a budget");
    assert_eq!(send(&gateway, "{ topProducts { upc } }", None).await.0, 200, "so has an anonymous address");
}

#[tokio::test]
async fn two_gateways_on_one_redis_share_a_callers_budget() {
    let shop = Shop::start().await;
    let shared = SharedSettings::for_tests(&format!("gw-rl:{}:", uuid::Uuid::new_v4().simple()), "unused", "unused");
    let start = || {
        shop.gateway()
            .shared(shared.clone())
            .config(|c| {
                c.rate_limits.per_caller = 5;
                c.rate_limits.store = RateLimitStore::Redis;
            })
            .start()
    };
    let (first, second) = (start().await, start().await);
    let mut allowed = 0;
    for i in 0..8 {
        let gateway = if i % 2 == 0 { &first } else { &second };
        let (status, retry_after, _) = send(gateway, "{ me { id } }", None).await;
        match status {
            200 => allowed += 1,
            429 => assert!(retry_after.is_some()),
            other => panic!("status {other}"),
        }
    }
    assert_eq!(allowed, 5, "five in all across both gateways");
}

#[tokio::test]
async fn batches_count_every_item() {
    let shop = Shop::start().await;
    let gateway = shop
        .gateway()
        .config(|c| {
            c.batching = true;
            c.rate_limits.per_caller = 2;
        })
        .start()
        .await;
    let (status, body) = gateway
        .post_json(json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }, { "query": "{ me { id } }" }]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["data"]["me"]["id"], "u1");
    assert_eq!(body[1]["data"]["me"]["id"], "u1");
    assert_eq!(body[2]["errors"][0]["extensions"]["code"], "RATE_LIMITED");
}

#[test]
fn malformed_limits_stop_start_up() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (per_operation, window) in
        [(vec!["Me".to_owned()], 60), (vec!["Me=0".to_owned()], 60), (vec!["Me=x".to_owned()], 60), (vec![], 0)]
    {
        let config = gatehouse_gateway::rate_limit::RateLimitConfig {
            per_caller: 1,
            per_operation,
            window_secs: window,
            ..Default::default()
        };
        let built = runtime.block_on(gatehouse_gateway::rate_limit::RateLimits::build(&config, None));
        let error = format!("{:#}", built.err().expect("refused"));
        assert!(error.contains("GATEWAY_RATE_LIMIT"), "{error}");
    }
}
