//! The prepared-operation cache under concurrent misses. It counts builds
//! with the process-wide `gateway_operation_cache_misses_total` counter, so
//! nothing else may move the counter meanwhile.

use crate::common;

use std::sync::Arc;

use futures::future::join_all;
use serde_json::{json, Value};

async fn misses(gateway: &common::TestGateway) -> u64 {
    let text = gateway.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix("gateway_operation_cache_misses_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn all_at_once(gateway: &Arc<common::TestGateway>, n: usize, body: Value) -> Vec<(u16, Value)> {
    join_all((0..n).map(|_| {
        let (gateway, body) = (gateway.clone(), body.clone());
        tokio::spawn(async move { gateway.post_json(body).await })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect()
}

#[tokio::test]
async fn concurrent_misses_on_one_operation_build_it_once_and_failures_are_not_kept() {
    let _alone = crate::ALONE.lock().await;
    let (_shop, gateway) = common::shop::shop().await;
    let gateway = Arc::new(gateway);

    // 32 requests with an operation the gateway has not seen: one build.
    let before = misses(&gateway).await;
    let query = json!({"query": "query Herd { me { id name } topProducts(first: 2) { upc name } }"});
    let answers = all_at_once(&gateway, 32, query.clone()).await;
    assert_eq!(misses(&gateway).await - before, 1, "one build for 32 concurrent misses");
    let (status, first) = &answers[0];
    assert_eq!(*status, 200);
    assert_eq!(first["data"]["me"]["id"], "u1", "{first}");
    assert!(answers.iter().all(|answer| answer == &answers[0]), "every request got the same answer");

    // Warm: no build at all.
    let before = misses(&gateway).await;
    all_at_once(&gateway, 8, query).await;
    assert_eq!(misses(&gateway).await, before);

    // An invalid operation fails for every request, and its failure is not
    // cached: asking again builds again (and fails the same way).
    let invalid = json!({"query": "{ me { id noSuchField } }"});
    let answers = all_at_once(&gateway, 8, invalid.clone()).await;
    for (status, body) in &answers {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED", "{body}");
    }
    let before = misses(&gateway).await;
    let (status, _) = gateway.post_json(invalid).await;
    assert_eq!(status, 400);
    assert_eq!(misses(&gateway).await - before, 1, "a failed build leaves nothing cached");

    // The same text under another operation name is another operation.
    let before = misses(&gateway).await;
    let named = json!({"query": "query A { me { id } } query B { me { name } }", "operationName": "A"});
    let (_, a) = gateway.post_json(named.clone()).await;
    let (_, b) = gateway.post_json(json!({"query": named["query"], "operationName": "B"})).await;
    assert_eq!(a, json!({"data": {"me": {"id": "u1"}}}));
    assert_eq!(b["data"]["me"]["name"], first["data"]["me"]["name"]);
    assert_eq!(misses(&gateway).await - before, 2);
}
