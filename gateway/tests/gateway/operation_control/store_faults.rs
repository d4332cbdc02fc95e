//! The shared stores failing: a Redis of the test's own is killed while a
//! gateway uses it for APQ and rate limits. The gateway keeps serving from
//! its own copies and buckets, and says so in its metrics.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gatehouse_common::settings::SharedSettings;
use gatehouse_gateway::persisted::ApqStore;
use gatehouse_gateway::rate_limit::RateLimitStore;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::shop::Shop;

/// A `redis-server` of this test only, on a free port; killed when dropped.
struct PrivateRedis {
    child: Child,
    url: String,
}

impl PrivateRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (installed with Redis) starts");
        // Made at once, so that the server is killed however the wait ends.
        let redis = Self { child, url: format!("redis://127.0.0.1:{port}") };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return redis;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn apq_and_rate_limits_keep_serving_when_redis_dies() {
    let shop = Shop::start().await;
    let mut redis = PrivateRedis::start().await;
    let mut shared = SharedSettings::for_tests("gw-faults:", "unused", "unused");
    shared.redis_url = redis.url.clone();
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
