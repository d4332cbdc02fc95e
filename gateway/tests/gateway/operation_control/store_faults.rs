//! The shared stores failing: a Redis of the test's own is killed while a
//! gateway uses it for APQ and rate limits. The gateway keeps serving from
//! its own copies and buckets, and says so in its metrics.

use gatehouse_common::settings::SharedSettings;
use gatehouse_common::testing::PrivateRedis;
use gatehouse_gateway::persisted::ApqStore;
use gatehouse_gateway::rate_limit::RateLimitStore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::shop::Shop;

#[tokio::test]
async fn apq_and_rate_limits_keep_serving_when_redis_dies() {
    let shop = Shop::start().await;
    let mut redis = PrivateRedis::start().await;
    let mut shared = SharedSettings::for_tests("gw-faults:", "unused", "unused");
    shared.redis_url = redis.url();
    let gateway = shop
        .gateway()
        .shared(shared)
        .config(|c| {
            c.documents.apq_store = ApqStore::Redis;
            c.rate_limits.store = RateLimitStore::Redis;
            c.rate_limits.per_caller = 1000;
        })
        .start()
        .await;
    let query = "query Me { me { id } }";
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hex::encode(Sha256::digest(query)) } });
    let (status, _) = gateway.post_json(json!({ "query": query, "extensions": extensions })).await;
    assert_eq!(status, 200);

    redis.kill();

    // The registered document is still served from this gateway's copy.
    let (status, body) = gateway.post_json(json!({ "extensions": extensions })).await;
    assert_eq!((status, &body["data"]["me"]["id"]), (200, &json!("u1")), "{body}");
    // A new one: a miss, then registered here.
    let other = "query Top { topProducts(first: 1) { upc } }";
    let other_ext = json!({ "persistedQuery": { "version": 1, "sha256Hash": hex::encode(Sha256::digest(other)) } });
    let (_, miss) = gateway.post_json(json!({ "extensions": other_ext })).await;
    assert_eq!(miss["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND", "{miss}");
    let (status, _) = gateway.post_json(json!({ "query": other, "extensions": other_ext })).await;
    assert_eq!(status, 200);
    let (status, _) = gateway.post_json(json!({ "extensions": other_ext })).await;
    assert_eq!(status, 200);

    let metrics = gateway.metrics().await;
    for counter in ["gateway_rate_limit_store_errors_total", "gateway_persisted_documents_store_errors_total"] {
        assert!(metrics.lines().any(|line| line.starts_with(counter)), "{counter} missing from /metrics");
    }
}
